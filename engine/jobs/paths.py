"""Where a job's files live: `<home>/jobs/<job id>/` is the trainer's run directory."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

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


CONFIG_FILE = "config.json"  # in a run directory: everything needed to reproduce the run


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """A run's saved training config; FileNotFoundError (one line) where it is not a run."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    return json.loads(path.read_text())
