"""Probe boards (a user's own test images, scored by every experiment) and their probes."""

from __future__ import annotations

import sqlite3
import time
from typing import Any


def _board_row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["shared"] = bool(d["shared"])
    d["hidden"] = bool(d.get("hidden"))
    return d


def add_board(conn: sqlite3.Connection, board_id: str, name: str, owner: str,
              shared: bool) -> None:
    """A new board; sqlite3.IntegrityError when the owner has one of that name."""
    conn.execute("INSERT INTO probe_boards (id, name, owner, shared, created) "
                 "VALUES (?, ?, ?, ?, ?)", (board_id, name, owner, int(shared), time.time()))


def boards_for(conn: sqlite3.Connection, user: str | None, every: bool) -> list[dict[str, Any]]:
    """The user's boards, then the shared ones (every board with `every`), newest first, each
    with its image count as `probes`."""
    rows = conn.execute(
        "SELECT b.*, (SELECT COUNT(*) FROM probes p WHERE p.board = b.id) AS probes "
        "FROM probe_boards b WHERE b.owner = ? OR (b.shared AND NOT b.hidden) OR ? "
        "ORDER BY b.owner = ? DESC, b.created DESC, b.rowid DESC", (user, int(every), user))
    return [_board_row(r) for r in rows]


def get_board(conn: sqlite3.Connection, board_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM probe_boards WHERE id = ?", (board_id,)).fetchone()
    return _board_row(row) if row else None


def set_board_shared(conn: sqlite3.Connection, board_id: str, shared: bool) -> None:
    conn.execute("UPDATE probe_boards SET shared = ? WHERE id = ?", (int(shared), board_id))


def delete_board(conn: sqlite3.Connection, board_id: str) -> None:
    conn.execute("DELETE FROM probe_boards WHERE id = ?", (board_id,))


def add_probe(conn: sqlite3.Connection, board_id: str, image_png: bytes, label: str,
              polarity: str, digit: bool, source: str) -> int:
    """Store one probe; its id."""
    cur = conn.execute(
        "INSERT INTO probes (board, image, label, polarity, digit, source, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (board_id, image_png, label, polarity, int(digit), source, time.time()))
    return int(cur.lastrowid)


def board_probes(conn: sqlite3.Connection, board_id: str) -> list[dict[str, Any]]:
    """The board's probes, oldest first, with their PNG bytes under "image"."""
    rows = conn.execute("SELECT * FROM probes WHERE board = ? ORDER BY id", (board_id,))
    return [{**dict(r), "digit": bool(r["digit"])} for r in rows]


def probe_board_of(conn: sqlite3.Connection, probe_id: int) -> str | None:
    row = conn.execute("SELECT board FROM probes WHERE id = ?", (probe_id,)).fetchone()
    return row["board"] if row else None


def delete_probe(conn: sqlite3.Connection, probe_id: int) -> None:
    conn.execute("DELETE FROM probes WHERE id = ?", (probe_id,))
