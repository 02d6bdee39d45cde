"""The class's queries (engine/hosting/classroom): leaderboard entries (class_entries), the
hidden probe board, and who owns jobs and lab runs."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter


def job_owners(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT DISTINCT owner FROM jobs WHERE owner IS NOT NULL")}


def training_status_counts(conn: sqlite3.Connection, owner: str) -> Counter:
    """status -> how many of the owner's training jobs have it (0 for a status none has)."""
    return Counter(dict(conn.execute(
        "SELECT status, COUNT(*) FROM jobs WHERE owner = ? AND kind = 'train' "
        "GROUP BY status", (owner,)).fetchall()))


def lab_users(conn: sqlite3.Connection) -> list[str]:
    """Users who have started a lab step, by name."""
    return [r[0] for r in conn.execute("SELECT DISTINCT owner FROM lab_runs ORDER BY owner")]


def hidden_board_id(conn: sqlite3.Connection) -> str | None:
    """The class's hidden probe board (the oldest, should there be several)."""
    row = conn.execute("SELECT id FROM probe_boards WHERE hidden = 1 ORDER BY created, "
                       "rowid LIMIT 1").fetchone()
    return row[0] if row else None


def hide_board(conn: sqlite3.Connection, board_id: str) -> None:
    """Make a board the class's hidden one: not shared, not listed to students."""
    conn.execute("UPDATE probe_boards SET hidden = 1, shared = 0 WHERE id = ?", (board_id,))


def board_with_count(conn: sqlite3.Connection, board_id: str) -> dict | None:
    """A board's row with its image count as `probes`."""
    row = conn.execute("SELECT b.*, (SELECT COUNT(*) FROM probes p WHERE p.board = b.id) "
                       "AS probes FROM probe_boards b WHERE b.id = ?", (board_id,)).fetchone()
    return dict(row) if row else None


def board_version(conn: sqlite3.Connection, board_id: str) -> tuple[int, int | None]:
    """(image count, newest image id) of a board: changes whenever its images do."""
    return tuple(conn.execute("SELECT COUNT(*), MAX(id) FROM probes WHERE board = ?",
                              (board_id,)).fetchone())


def set_entry(conn: sqlite3.Connection, owner: str, job_id: str) -> None:
    conn.execute("INSERT OR REPLACE INTO class_entries (owner, job, chosen) VALUES (?, ?, ?)",
                 (owner, job_id, time.time()))


def entry_job(conn: sqlite3.Connection, owner: str) -> str | None:
    """The job `owner` chose as their leaderboard entry, if any."""
    row = conn.execute("SELECT job FROM class_entries WHERE owner = ?", (owner,)).fetchone()
    return row[0] if row else None


def entries(conn: sqlite3.Connection) -> dict[str, str]:
    """owner -> chosen job, for every entry."""
    return dict(conn.execute("SELECT owner, job FROM class_entries").fetchall())
