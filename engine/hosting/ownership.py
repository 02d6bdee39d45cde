"""Who may write into a job: its folder (exports, evaluations, uploads) and its rows.

A job's owner may; a job without an owner is anyone's; the local user-less caller (user None:
a CLI without --user or STUDIO_USER, a dashboard without sign-in) may act on any job. The CLI
acts as `--user`, else `$STUDIO_USER`, with the same rules as the dashboard.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.hosting.identity import cli_user
from engine.state import store
from engine.state.runs import job_dir
from engine.state.workspace import studio_home

USER_ENV = "STUDIO_USER"

# Tasks whose results land in the trained job's own folder or rows (as opposed to the task
# job's own folder): only the trained job's owner may run them.
WRITES_PARENT = {"engine.evaluate": "evaluate", "engine.calibrate": "calibrate",
                 "trt.export": "export",
                 "trt.build": "build engines for", "trt.bench": "benchmark",
                 "trt.bundle": "bundle"}


def acting_user(explicit: str | None = None) -> str | None:
    """The user a command acts as: --user if given, else $STUDIO_USER, else None (local);
    in a workspace with accounts, the user signed in with `studio login` (engine/identity)."""

    return cli_user(explicit)


def check_may_write(job: store.Job, user: str | None, action: str) -> None:
    """PermissionError (one line) unless `user` may change job `job` (a job row)."""
    owner = job.owner
    if user is not None and owner is not None and owner != user:
        raise PermissionError(f"job {job.id} belongs to {owner}; only its owner may "
                              f"{action} it (you act as {user})")


def check_job_write(job_id: str, user: str | None, action: str,
                    home: str | os.PathLike | None = None) -> None:
    """check_may_write for a job id (a missing job is not this function's business)."""
    with store.opened(home) as conn:
        job = store.get_job(conn, job_id)
    if job is not None:
        check_may_write(job, user, action)


def job_of_run_dir(path: str | os.PathLike, home: str | os.PathLike | None = None
                   ) -> str | None:
    """The job id when `path` (a run folder, or a file in it) lies in the workspace's jobs
    folder; None for a run folder elsewhere (a user's own copy)."""
    jobs_root = (studio_home(home) / "jobs").resolve()
    p = Path(path).resolve()
    try:
        rel = p.relative_to(jobs_root)
    except ValueError:
        return None
    return rel.parts[0] if rel.parts else None


def check_run_write(path: str | os.PathLike, user: str | None, action: str,
                    home: str | os.PathLike | None = None) -> None:
    """For commands given a run folder: the owner rule when it is a workspace job's."""
    job_id = job_of_run_dir(path, home)
    if job_id:
        check_job_write(job_id, user, action, home)


def uploads_dir(job_id: str, user: str | None, home: str | os.PathLike | None = None) -> Path:
    """Where a user's uploads for job `job_id` go: the job's own uploads/ when they may write
    into it, else their own area of the workspace (never another user's job folder)."""

    with store.opened(home) as conn:
        job = store.get_job(conn, job_id)
    if job is None or user is None or job.owner in (None, user):
        return job_dir(job_id, home) / "uploads"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)[:64] or "user"
    return studio_home(home) / "uploads" / "users" / safe / job_id
