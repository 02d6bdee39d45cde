"""The datasets table: one row per dataset, its manifest as JSON."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any


def add_dataset(
    conn: sqlite3.Connection, id: str, name: str, owner: str | None, source: str, manifest: dict
) -> None:
    try:
        conn.execute(
            "INSERT INTO datasets (id, name, owner, source, created, manifest)"
            " VALUES (?,?,?,?,?,?)",
            (id, name, owner, source, time.time(), json.dumps(manifest)),
        )
    except sqlite3.IntegrityError as e:
        raise ValueError(f"a dataset named {name!r} already exists") from e


def _dataset_row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["manifest"] = json.loads(d["manifest"])
    return d


def get_dataset(conn: sqlite3.Connection, id_or_name: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT * FROM datasets WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1",
        (id_or_name, id_or_name, id_or_name),
    ).fetchone()
    return _dataset_row(row) if row else None


def list_datasets(conn: sqlite3.Connection, owner: str | None = None) -> list[dict[str, Any]]:
    if owner is None:
        rows = conn.execute("SELECT * FROM datasets ORDER BY created DESC").fetchall()
    else:
        rows = conn.execute(
            "SELECT * FROM datasets WHERE owner = ? ORDER BY created DESC", (owner,)
        ).fetchall()
    return [_dataset_row(r) for r in rows]


def delete_dataset(conn: sqlite3.Connection, id: str) -> bool:
    return conn.execute("DELETE FROM datasets WHERE id = ?", (id,)).rowcount > 0


def set_dataset_flags(conn: sqlite3.Connection, id: str, *, shared: bool | None = None,
                      locked: bool | None = None) -> None:
    """Share a dataset with the class and/or lock it read-only; None leaves a flag as it is."""
    if shared is not None:
        conn.execute("UPDATE datasets SET shared = ? WHERE id = ?", (int(shared), id))
    if locked is not None:
        conn.execute("UPDATE datasets SET locked = ? WHERE id = ?", (int(locked), id))


def dataset_names(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM datasets")]
