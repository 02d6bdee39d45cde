"""`python -m engine.jobs.worker JOB_ID`: one job's training (or task), in its own process.

The scheduler has already marked the job running on a device. The worker trains with a
SQLite sink and a cancel watcher, and records how the job ended, with the reason when it
failed. If it dies without recording an end (killed, out of memory), the scheduler notices.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from engine.devices import device_units
from engine.jobs.endings import (
    check_pinned_dataset,
    evaluate_best,
    failure_of,
    log_line,
    record_end,
    train_outcome,
)
from engine.jobs.sink import CancelWatcher, JobSink
from engine.jobs.task_registry import resolve
from engine.state import store
from engine.state.runs import job_dir
from engine.state.store import Job
from engine.threads import ShareWatcher, env_threads, use_threads
from engine.training.config import TrainConfig


def run_job(job_id: str, home: str | os.PathLike | None = None) -> str:
    """Train job `job_id` to its end here; returns the status recorded."""
    conn = store.connect(home)
    store.fewer_syncs(conn)
    job = store.get_job(conn, job_id)
    if job is None or job.status != "running":
        print(f"job {job_id} is not waiting for a worker; nothing to do", file=sys.stderr)
        return job.status if job else "missing"
    store.update_job(conn, job_id, pid=os.getpid(), heartbeat=time.time())
    watcher = CancelWatcher(conn, job_id)
    _stop_on_signals(watcher)
    run_dir = job_dir(job_id, home)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        run = _task if job.kind == "task" else _train
        status, reason, message, result = run(job, run_dir, conn, watcher, home)
    except BaseException as e:  # noqa: BLE001 - every ending is recorded, then re-raised if fatal
        status, reason, message, result = "failed", *failure_of(e), None
        if reason == "error":
            traceback.print_exc()
        if reason != "diverged":  # the trainer logged that one
            log_line(run_dir, f"failed ({reason}): {message}")
        if not isinstance(e, Exception):
            record_end(conn, job_id, status, reason, message, result)
            raise
    record_end(conn, job_id, status, reason, message, result)
    if status == "done" and job.kind == "train":
        evaluate_best(job, home)
    return status


class TaskCancelled(Exception):
    """Raised from a task's progress callback when its job is cancelled or signalled."""


def _task(job: Job, run_dir: Path, conn, watcher: CancelWatcher, home
          ) -> tuple[str, str | None, str | None, dict[str, Any] | None]:
    """Run a task job: its function reports progress, which lands in the job row (at most
    a few times a second) and is where a cancel takes effect."""

    if env_threads() and job.assigned_device == "cpu":
        use_threads(env_threads())  # its share of the scheduler's CPU thread budget
    task, params = job.config["task"], dict(job.config["params"])
    fn = resolve(task)
    last = {"t": 0.0}

    def progress(fraction: float, message: str = "") -> None:
        if watcher():
            raise TaskCancelled
        now = time.time()
        if now - last["t"] >= 0.25 or fraction >= 1.0:
            last["t"] = now
            store.update_job(conn, job.id, only_if_status=("running",), heartbeat=now,
                             progress={"fraction": max(0.0, min(1.0, float(fraction))),
                                       "message": message, "time": now})

    log_line(run_dir, f"{task} started with {params}")
    try:
        result = fn({**params, "task_job": job.id}, progress, home=home)
    except TaskCancelled:
        if watcher.cancelled:
            return "cancelled", "cancelled", f"{task} cancelled", None
        return "interrupted", "signal", f"{task} stopped by {watcher.signalled}", None
    log_line(run_dir, f"{task} done: {result}")
    return "done", None, _summary(task, result), result


def _summary(task: str, result: dict[str, Any]) -> str:
    if "dataset" in result and "images" in result:
        return f"dataset {result.get('name')!r} created: {result['images']} images"
    if "accuracy" in result:
        return f"{task}: accuracy {result['accuracy']:.4f} on {result.get('images', '?')} images"
    return f"{task} done"


def _train(job: Job, run_dir: Path, conn, watcher: CancelWatcher, home
           ) -> tuple[str, str | None, str | None, dict[str, Any] | None]:
    from engine.training import train

    cfg = TrainConfig.from_dict(job.config)
    if job.assigned_device:  # what the scheduler reserved: one device, or one per rank
        cfg.device = job.assigned_device
        cfg.devices = len(device_units(cfg.device))
    check_pinned_dataset(job.id, cfg.dataset, home)
    if cfg.devices > 1:
        return _train_ranks(job, cfg, run_dir, conn, watcher, home)
    should_stop = watcher
    if env_threads() and cfg.device == "cpu":
        # Its share of the scheduler's CPU thread budget, resized as other CPU jobs come and go.
        use_threads(env_threads())
        share = ShareWatcher(run_dir, env_threads())

        def should_stop() -> bool:
            share()
            return watcher()
    resume = job.resume and (run_dir / "last.pt").exists()
    result = train(cfg, run_dir, sink=JobSink(conn, job.id), should_stop=should_stop,
                   resume=resume, home=home)
    return _train_outcome(job, result, conn, watcher)


def _train_outcome(job: Job, result, conn, watcher: CancelWatcher
                   ) -> tuple[str, str | None, str | None, dict[str, Any] | None]:
    # An epoch finished just before a kill is in last.pt but maybe not yet in SQLite: backfill.
    have = {m["epoch"] for m in store.get_metrics(conn, job.id)}
    for m in result.history:
        if m["epoch"] not in have:
            store.put_metrics(conn, job.id, m)
    return train_outcome(result, watcher.cancelled, watcher.signalled)


def _train_ranks(job: Job, cfg, run_dir: Path, conn, watcher: CancelWatcher, home
                 ) -> tuple[str, str | None, str | None, dict[str, Any] | None]:
    """A data-parallel job: one rank per reserved device (engine/training/distributed.py);
    rank 0 writes metrics and reads the cancel flag, as a one-device worker does."""
    from torch.distributed.elastic.multiprocessing.api import SignalException

    from engine.training.distributed import run_training

    resume = job.resume and (run_dir / "last.pt").exists()
    setup = JobRanks(job.id, None if home is None else str(home), cfg.device.startswith("cpu"))
    try:
        result = run_training(cfg, run_dir, setup=setup, resume=resume, home=home)
    except SignalException as e:  # the launcher stopped the ranks (they saved a checkpoint)
        name = signal.Signals(e.sigval).name
        return ("interrupted", "signal", f"stopped by {name}; resume continues from the last "
                "checkpoint", None)
    watcher.refresh()
    if result.status == "stopped" and not watcher.cancelled:
        watcher.signalled = watcher.signalled or "a signal to its ranks"
    return _train_outcome(job, result, conn, watcher)


class JobRanks:
    """Each rank's hooks for a job (picklable: it crosses into the rank processes): its CPU
    thread share, followed as the scheduler changes it; on rank 0 also the SQLite sink and
    the cancel flag."""

    def __init__(self, job_id: str, home: str | None, cpu: bool) -> None:
        self.job_id, self.home, self.cpu = job_id, home, cpu

    def __call__(self, rank: int):
        share = None
        if env_threads() and self.cpu:
            use_threads(env_threads())
            share = ShareWatcher(job_dir(self.job_id, self.home), env_threads())
        if rank != 0:
            def follow_share() -> bool:
                if share:
                    share()
                return False
            return None, follow_share
        conn = store.connect(self.home)
        store.fewer_syncs(conn)
        watcher = CancelWatcher(conn, self.job_id)

        def should_stop() -> bool:
            if share:
                share()
            return watcher()
        return JobSink(conn, self.job_id), should_stop


def _stop_on_signals(watcher: CancelWatcher) -> None:
    """SIGTERM/SIGINT: stop at the next step with a checkpoint; a second one kills."""
    def handler(signum, frame) -> None:
        if watcher.signalled is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        watcher.signalled = signal.Signals(signum).name

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m engine.jobs.worker JOB_ID", file=sys.stderr)
        return 2
    status = run_job(argv[0])
    return 0 if status in ("done", "cancelled", "interrupted") else 1


if __name__ == "__main__":
    sys.exit(main())
