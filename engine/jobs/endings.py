"""How a run ends, as a worker records it: the status, reason and message for a TrainResult
or an exception, the dataset check before a run, the job's log line. Shared by the local
worker (engine/jobs/worker.py) and a Ray node (engine/jobs/backends/ray_node.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from engine.jobs.task_queue import queue_task
from engine.networks.errors import SpecError
from engine.state import store
from engine.state.runs import job_dir, pinned_dataset
from engine.training import ConfigError, TrainingDiverged


def train_outcome(result, cancelled: bool, signalled: str | None
                  ) -> tuple[str, str | None, str | None, dict[str, Any]]:
    """(status, reason, message, summary) to record for a TrainResult (here and on a Ray
    node, engine/jobs/backends/ray_node.py)."""
    summary = result.to_dict()
    if result.status != "stopped":
        best = (result.best or {}).get("val_accuracy")
        note = f"{result.epochs_completed} epochs" + (
            " (early stop)" if result.status == "early_stopped" else "") + (
            f", best val accuracy {best:.4f}" if best is not None else "")
        return "done", None, note, summary
    where = f"at epoch {result.epochs_completed}; checkpoint saved, resume continues from there"
    if cancelled:
        return "cancelled", "cancelled", f"cancelled {where}", summary
    return "interrupted", "signal", f"stopped by {signalled} {where}", summary


def check_pinned_dataset(job_id: str, dataset: str, home) -> None:
    """DatasetError when the dataset the job was submitted for is gone or changed (a new one
    may carry its name): a job never trains or is evaluated on other data than it was given."""
    from engine.datasets import DatasetError, open_dataset

    pin = pinned_dataset(job_id, home)
    if pin is None:
        return
    try:
        ds = open_dataset(pin["id"], home=home)
    except DatasetError:
        raise DatasetError(f"the dataset this job was submitted for, {pin['name']!r} "
                           f"({pin['id']}), has been deleted"
                           + ("; a different dataset now has that name" if _exists(dataset, home)
                              else "")) from None
    if pin.get("sha256") and ds.manifest.get("sha256") not in (None, pin["sha256"]):
        raise DatasetError(f"dataset {pin['name']!r} ({pin['id']}) has changed since the job "
                           "was submitted (its sha256 differs)")


def _exists(name: str, home) -> bool:
    from engine.datasets import DatasetError, open_dataset

    try:
        open_dataset(name, home=home)
        return True
    except DatasetError:
        return False


def failure_of(e: BaseException) -> tuple[str, str]:
    """(reason, message) for an exception that ended a run."""
    from engine.datasets.errors import DatasetError

    oom = [MemoryError]
    if "torch" in sys.modules:
        import torch

        oom.append(getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError))
    if isinstance(e, TrainingDiverged):
        return "diverged", str(e)
    if type(e).__name__ == "CheckpointError":
        return "corrupt_checkpoint", str(e)
    if isinstance(e, tuple(oom)):
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return "out_of_memory", (f"out of memory: {first}. Try a smaller batch size or "
                                 "network, or fp16/bf16 precision on a GPU.")
    if isinstance(e, (ConfigError, FileNotFoundError, DatasetError, SpecError)):
        return "config", str(e)  # the user's to fix: their words, no exception name
    if isinstance(e, KeyboardInterrupt):
        return "signal", "interrupted"
    return "error", f"{type(e).__name__}: {e}"


def log_line(run_dir: Path, msg: str) -> None:
    with open(run_dir / "log.txt", "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")


def record_end(conn, job_id: str, status: str, reason: str | None, message: str | None,
                result: dict | None) -> None:
    with store.transaction(conn):
        store.update_job(conn, job_id, only_if_status=("running",), status=status,
                         finished=time.time(), reason=reason, message=message, result=result,
                         heartbeat=time.time())
        store.add_event(conn, job_id, status, message or "")


def evaluate_best(job: store.Job, home) -> None:
    """When training ends, queue the evaluation of its best checkpoint (the issue's "run
    automatically"); the scheduler that started this worker picks it up."""

    try:
        with store.opened(home) as conn, store.transaction(conn):
            queue_task(conn, "engine.evaluate", {"checkpoint": "best.pt"}, job.owner,
                       f"evaluate {job.name or job.id}", parent=job.id)
    except Exception as e:  # noqa: BLE001 - training is done; say why no evaluation followed
        log_line(job_dir(job.id, home), f"could not queue the evaluation: {e}")
