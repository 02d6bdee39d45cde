"""Is anyone running the queue? A job left "running" by a dead worker and a dead scheduler
would otherwise stay so forever: its heartbeat (written by the worker every few seconds)
goes stale, and no scheduler holds the lock. Pages read this and offer to start one; a
started scheduler recovers such jobs (re-queues them to resume from their checkpoint)."""

from __future__ import annotations

import os
import time
from contextlib import closing
from typing import Any

from engine import store
from engine.jobs.scheduler import scheduler_alive

STALE_S = 30.0  # workers beat every 2 s and report progress every 0.5 s


def queue_health(home: str | os.PathLike | None = None, stale_s: float = STALE_S,
                 now: float | None = None) -> dict[str, Any]:
    """{"scheduler_alive", "queued": count, "stale": [running jobs whose heartbeat is older
    than stale_s], "needs_scheduler": True when work waits and no scheduler runs}."""
    now = time.time() if now is None else now
    with closing(store.connect(home)) as conn:
        queued = store.count_jobs(conn, ("queued",))
        running = store.list_jobs(conn, statuses=("running",))
    stale = [{"id": j["id"], "name": j["name"], "silent_s": now - (j["heartbeat"] or 0)}
             for j in running if now - (j["heartbeat"] or 0) > stale_s]
    alive = scheduler_alive(home)
    return {"scheduler_alive": alive, "queued": queued, "stale": stale,
            "needs_scheduler": not alive and bool(queued or stale)}
