"""Where a job's files live: `<home>/jobs/<job id>/` is the trainer's run directory."""

from __future__ import annotations

import os
from pathlib import Path

from engine.workspace import studio_home


def job_dir(job_id: str, home: str | os.PathLike | None = None) -> Path:
    if not job_id or "/" in job_id or job_id.startswith("."):
        raise ValueError(f"not a job id: {job_id!r}")
    return studio_home(home) / "jobs" / job_id


def has_checkpoint(job_id: str, home: str | os.PathLike | None = None) -> bool:
    return (job_dir(job_id, home) / "last.pt").exists()
