"""A task job's row in the queue. Its own module so a worker or the scheduler's Ray backend can
queue a task (the evaluation after training) without the API, which starts schedulers."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from engine.state import store
from engine.state.runs import new_job_id


def queue_task(conn: sqlite3.Connection, task: str, params: dict[str, Any], owner: str | None,
               name: str = "", *, parent: str | None = None, device: str = "cpu") -> str:
    """Insert a queued task job (inside the caller's transaction); returns its id. The
    caller has checked the task's name and the user's right to act on `parent`."""
    job_id = new_job_id()
    now = time.time()
    if owner:
        store.ensure_user(conn, owner)
    store.insert_job(conn, {
        "id": job_id, "name": name or task, "owner": owner, "status": "queued",
        "device": device, "kind": "task", "parent": parent, "created": now, "queued": now,
        "config": {"task": task, "params": {**params, "job": parent} if parent else params}})
    store.add_event(conn, job_id, "submitted", f"{task} by {owner or 'local user'}"
                    + (f" for job {parent}" if parent else ""))
    return job_id
