"""Where a job's files live: `<home>/jobs/<job id>/` is the trainer's run directory."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from engine.state.integrity import intact_checkpoints, verify
from engine.state.workspace import atomic_write_json, studio_home


def job_dir(job_id: str, home: str | os.PathLike | None = None) -> Path:
    if not job_id or "/" in job_id or job_id.startswith("."):
        raise ValueError(f"not a job id: {job_id!r}")
    return studio_home(home) / "jobs" / job_id


def has_checkpoint(job_id: str, home: str | os.PathLike | None = None) -> bool:
    """True when the job has a last.pt to resume from that is not corrupt."""

    last = job_dir(job_id, home) / "last.pt"
    return last.exists() and verify(last) is not False


def corrupt_checkpoint(job_id: str, home: str | os.PathLike | None = None) -> str | None:
    """A one-line reason when the job's last.pt exists but fails its sha256, else None."""

    run = job_dir(job_id, home)
    last = run / "last.pt"
    if not last.exists() or verify(last) is not False:
        return None
    intact = [p.relative_to(run).as_posix() for p in intact_checkpoints(run)]
    return ("checkpoint last.pt is corrupt (its sha256 does not match the one recorded when "
            "it was saved); " + (f"intact checkpoints: {', '.join(intact[:6])} (clone the "
                                 "job, or evaluate or export one of them)" if intact
                                 else "the run has no intact checkpoint"))


DATASET_PIN = "dataset.json"  # in a job's folder: the dataset (id, name, sha256) it was given


def pin_dataset(job_id: str, dataset: dict, home: str | os.PathLike | None = None) -> None:
    """Record which dataset a job was submitted for, so a dataset deleted and re-created under
    the same name is never silently used in its place."""

    manifest = dataset.get("manifest") or {}
    atomic_write_json(job_dir(job_id, home) / DATASET_PIN, {
        "id": dataset["id"], "name": dataset["name"],
        "sha256": manifest.get("sha256") or manifest.get("hash")})


def pinned_dataset(job_id: str, home: str | os.PathLike | None = None) -> dict | None:
    """The dataset recorded for the job at submit time, or None for jobs from before pins."""
    try:
        pin = json.loads((job_dir(job_id, home) / DATASET_PIN).read_text())
    except (OSError, ValueError):
        return None
    return pin if isinstance(pin, dict) and pin.get("id") else None


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
