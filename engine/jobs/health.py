"""Is anything running the queue? The scheduler's lock and pid, and the workers' heartbeats.

A job's worker beats its heartbeat (the job row's `heartbeat`) every few seconds while it
runs; the scheduler notices a worker that dies. If the scheduler itself is dead too, nobody
notices, and the job would say "running" forever. scheduler_health() tells the dashboard and
the CLI so, in words, and whether starting a scheduler (ensure_scheduler, which adopts live
workers and re-queues the dead ones' jobs) is needed.
"""

from __future__ import annotations

import os
import time
from typing import Any

from engine.jobs.scheduler import ensure_scheduler, scheduler_status
from engine.processes import pid_alive
from engine.state import store

STALE_AFTER_S = float(os.environ.get("STUDIO_HEARTBEAT_STALE_S", "60"))


def heartbeat_age(job: store.Job, now: float | None = None) -> float | None:
    """Seconds since a running job's worker last showed life, or None when not running."""
    if job.status != "running" or job.heartbeat is None:
        return None
    return max(0.0, (now or time.time()) - float(job.heartbeat))


def worker_state(job: store.Job, now: float | None = None) -> str | None:
    """For a running job: None when its worker is alive and beating, else why not, in words."""
    age = heartbeat_age(job, now)
    if age is None:
        return None
    if job.pid and not pid_alive(job.pid, f"engine.jobs.worker {job.id}"):
        return f"its worker (pid {job.pid}) is gone; last heartbeat {age:.0f} s ago"
    if age > STALE_AFTER_S:
        return f"no heartbeat for {age:.0f} s (the worker may be hung)"
    return None


def scheduler_health(home: str | os.PathLike | None = None, now: float | None = None
                     ) -> dict[str, Any]:
    """{"alive", "pid", "reason", "queued", "stale": [{"id", "name", "why", "silent_s"}],
    "needs_start"}: the one answer to "is anyone running the queue?" (pages, banner, CLI).

    reason is None when a scheduler runs; otherwise a sentence for the page ("the job
    scheduler is not running: ..."). needs_start is True when jobs wait on a scheduler that
    is not there: queued jobs, or running ones whose worker is gone."""
    status = scheduler_status(home)
    alive = bool(status["alive"]) and pid_alive(status.get("pid"), "engine")
    now = time.time() if now is None else now
    with store.opened(home) as conn:
        queued = store.count_jobs(conn, ("queued",))
        running = store.list_jobs(conn, statuses=("running",))
    stale = [{"id": j.id, "name": j.name, "why": why, "silent_s": heartbeat_age(j, now)}
             for j in running if (why := worker_state(j, now))]
    reason = None
    if not alive:
        if status.get("pid") is None:
            what = "no scheduler has run in this workspace yet"
        elif status["alive"]:
            what = f"the scheduler lock is held but its process {status['pid']} is gone"
        else:
            what = f"the last scheduler (pid {status['pid']}) has exited"
        waiting = []
        if queued:
            waiting.append(f"{queued} queued job(s) wait")
        if stale:
            waiting.append(f"{len(stale)} job(s) marked running have no live worker")
        reason = "the job scheduler is not running: " + what + (
            "; " + " and ".join(waiting) if waiting else "")
    return {"alive": alive, "pid": status.get("pid") if alive else None, "reason": reason,
            "queued": queued, "stale": stale, "needs_start": not alive and bool(queued or stale)}


def start_scheduler_if_needed(home: str | os.PathLike | None = None) -> dict[str, Any]:
    """Start a scheduler when scheduler_health says one is needed (it adopts live workers and
    re-queues jobs whose worker died); returns the health after that."""
    if scheduler_health(home)["needs_start"]:
        ensure_scheduler(home)
    return scheduler_health(home)
