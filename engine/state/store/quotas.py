"""The quotas table (engine/hosting/quotas: per-user limits, '*' the class default) and the
usage queries that quotas are checked against."""

from __future__ import annotations

import sqlite3


def set_quota(conn: sqlite3.Connection, user: str, name: str, value: float | None) -> None:
    """Set `user`'s limit `name`; value None removes it."""
    if value is None:
        conn.execute("DELETE FROM quotas WHERE user = ? AND name = ?", (user, name))
    else:
        conn.execute("INSERT OR REPLACE INTO quotas (user, name, value) VALUES (?, ?, ?)",
                     (user, name, value))


def quotas_of(conn: sqlite3.Connection, default: str, user: str) -> list[sqlite3.Row]:
    """The rows (user, name, value) of `default` and then of `user`, so the user's win."""
    return conn.execute("SELECT user, name, value FROM quotas WHERE user IN (?, ?) "
                        "ORDER BY user = ?", (default, user, user)).fetchall()


def all_quotas(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT user, name, value FROM quotas ORDER BY user, name").fetchall()


def training_runs_since(conn: sqlite3.Connection, owner: str | None, since: float
                        ) -> list[sqlite3.Row]:
    """(assigned_device, started, finished, status) of the owner's training jobs that ran
    after `since` (finished later, or not finished)."""
    return conn.execute(
        "SELECT assigned_device, started, finished, status FROM jobs WHERE owner IS ? AND "
        "kind = 'train' AND started IS NOT NULL AND (finished IS NULL OR finished > ?)",
        (owner, since)).fetchall()


def owned_ids(conn: sqlite3.Connection, owner: str) -> tuple[list[str], list[str]]:
    """(job ids, dataset ids) that `owner` owns."""
    jobs = [r[0] for r in conn.execute("SELECT id FROM jobs WHERE owner = ?", (owner,))]
    datasets = [r[0] for r in conn.execute("SELECT id FROM datasets WHERE owner = ?", (owner,))]
    return jobs, datasets


def active_training_counts(conn: sqlite3.Connection, owner: str | None) -> dict[str, int]:
    """{status: count} of the owner's queued and running training jobs."""
    return dict(conn.execute(
        "SELECT status, COUNT(*) FROM jobs WHERE owner IS ? AND kind = 'train' AND status IN "
        "('queued', 'running') GROUP BY status", (owner,)).fetchall())
