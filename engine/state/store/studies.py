"""Hyperparameter studies (engine/jobs/studies): the study's record (its spec: base config,
search space, objective, budget) and one row per trial naming the training job that runs it."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from engine.state.store.schema import where


def _study(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {**dict(row), "spec": json.loads(row["spec"])}


def _trial(row: sqlite3.Row) -> dict[str, Any]:
    return {**dict(row), "params": json.loads(row["params"])}


def add_study(conn: sqlite3.Connection, study_id: str, name: str, owner: str | None,
              spec: dict[str, Any]) -> None:
    conn.execute("INSERT INTO studies (id, name, owner, status, created, spec) "
                 "VALUES (?, ?, ?, 'running', ?, ?)",
                 (study_id, name, owner, time.time(), json.dumps(spec)))


def get_study(conn: sqlite3.Connection, study_id: str) -> dict[str, Any] | None:
    return _study(conn.execute("SELECT * FROM studies WHERE id = ?", (study_id,)).fetchone())


def study_ids_starting(conn: sqlite3.Connection, prefix: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM studies WHERE id LIKE ? ESCAPE '\\'",
                                       (prefix.replace("_", "\\_").replace("%", "\\%") + "%",))]


def list_studies(conn: sqlite3.Connection, owner: str | None = None,
                 statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Studies, newest first, of one owner and/or in some statuses."""
    clause, args = where({"owner": owner}, statuses)
    return [_study(r) for r in conn.execute(f"SELECT * FROM studies{clause} ORDER BY created DESC",
                                            args)]


def active_study_ids(conn: sqlite3.Connection) -> list[str]:
    """Ids of the studies a driver still has to advance (cheap: the scheduler asks each tick)."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM studies WHERE status = 'running' ORDER BY created")]


def set_study_status(conn: sqlite3.Connection, study_id: str, status: str,
                     message: str | None = None, *, only_if_status: str | None = None) -> bool:
    """Move a study to a status (an ended one gets its finish time); False if it was not in
    only_if_status (someone else moved it first)."""
    finished = None if status == "running" else time.time()
    sql = "UPDATE studies SET status = ?, message = ?, finished = ? WHERE id = ?"
    args: list[Any] = [status, message, finished, study_id]
    if only_if_status is not None:
        sql += " AND status = ?"
        args.append(only_if_status)
    return conn.execute(sql, args).rowcount > 0


def set_study_message(conn: sqlite3.Connection, study_id: str, message: str | None) -> None:
    conn.execute("UPDATE studies SET message = ? WHERE id = ?", (message, study_id))


def set_study_driver(conn: sqlite3.Connection, study_id: str, job_id: str) -> None:
    """The task job that drives the study (engine.study): stopping the study cancels it."""
    conn.execute("UPDATE studies SET driver = ? WHERE id = ?", (job_id, study_id))


def delete_study(conn: sqlite3.Connection, study_id: str) -> None:
    conn.execute("DELETE FROM studies WHERE id = ?", (study_id,))


def put_trial(conn: sqlite3.Connection, study_id: str, number: int, *, state: str,
              params: dict[str, Any], job: str | None = None, value: float | None = None,
              steps: int = 0, message: str | None = None) -> None:
    """A trial's row; writing the same trial number again replaces it."""
    conn.execute(
        "INSERT OR REPLACE INTO study_trials (study, number, job, state, value, params, steps,"
        " message, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (study_id, int(number), job, state, value, json.dumps(params), int(steps), message,
         time.time()))


def update_trial(conn: sqlite3.Connection, study_id: str, number: int, **fields: Any) -> None:
    """Change some of a trial's columns (state, value, steps, message)."""
    allowed = {"state", "value", "steps", "message", "job"}
    bad = set(fields) - allowed
    if bad:
        raise ValueError(f"not a trial column: {', '.join(sorted(bad))}")
    cols = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(f"UPDATE study_trials SET {cols}, updated = ? WHERE study = ? AND number = ?",
                 (*fields.values(), time.time(), study_id, int(number)))


def study_trials(conn: sqlite3.Connection, study_id: str) -> list[dict[str, Any]]:
    """A study's trials by number."""
    return [_trial(r) for r in conn.execute(
        "SELECT * FROM study_trials WHERE study = ? ORDER BY number", (study_id,))]


def study_of_job(conn: sqlite3.Connection, job_id: str) -> tuple[str, int] | None:
    """(study id, trial number) of the trial a training job runs, if it runs one."""
    row = conn.execute("SELECT study, number FROM study_trials WHERE job = ?",
                       (job_id,)).fetchone()
    return (row[0], row[1]) if row else None
