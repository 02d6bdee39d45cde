"""The lab_runs table: which job ran which of a user's lab steps (engine/lab)."""

from __future__ import annotations

import sqlite3
import time


def add_lab_run(conn: sqlite3.Connection, owner: str, step: str, job_id: str) -> None:
    conn.execute("INSERT INTO lab_runs (owner, step, job, created) VALUES (?, ?, ?, ?)",
                 (owner, step, job_id, time.time()))


def lab_runs(conn: sqlite3.Connection, owner: str) -> list[sqlite3.Row]:
    """The owner's (step, job) rows, oldest first."""
    return conn.execute("SELECT step, job FROM lab_runs WHERE owner = ? ORDER BY id",
                        (owner,)).fetchall()
