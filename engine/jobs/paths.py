"""Where a job's files live: `<home>/jobs/<job id>/` is the trainer's run directory."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from engine.workspace import studio_home


def job_dir(job_id: str, home: str | os.PathLike | None = None) -> Path:
    if not job_id or "/" in job_id or job_id.startswith("."):
        raise ValueError(f"not a job id: {job_id!r}")
    return studio_home(home) / "jobs" / job_id


def has_checkpoint(job_id: str, home: str | os.PathLike | None = None) -> bool:
    return (job_dir(job_id, home) / "last.pt").exists()


def new_job_id() -> str:
    """A new job (run) id: creation time, then random hex so ids sort by age and never clash."""
    return time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
