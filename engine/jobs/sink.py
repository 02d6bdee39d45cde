"""The worker's side of a job: metrics go to SQLite, cancel requests come from SQLite.

The trainer calls on_progress at most every 0.5 s, so progress is one small UPDATE at that rate
(it doubles as the heartbeat); each epoch is one metrics row. should_stop() runs at every step,
so it reads the cancel flag at most every CANCEL_POLL_S and answers from a cached value between.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from typing import Any

from engine.state import store
from engine.training.sink import MetricsSink

CANCEL_POLL_S = 0.25
HEARTBEAT_S = 2.0
MAX_CURVE_POINTS = 400  # the loss curve inside epochs: thinned to every other point beyond


def add_curve_point(curve: list[list[float]], x: float, loss: float,
                    cap: int = MAX_CURVE_POINTS) -> list[list[float]]:
    """Append (epochs as a fraction, loss) to a curve kept in order (points at or after x, from
    a run resumed behind them, are dropped) and bounded (thinned evenly past `cap`)."""
    while curve and curve[-1][0] >= x:
        curve.pop()
    curve.append([round(x, 5), loss])
    if len(curve) > cap:
        curve[:] = curve[::2]
    return curve


class JobSink(MetricsSink):
    """Writes a job's progress (and heartbeat) and per-epoch metrics rows."""

    def __init__(self, conn: sqlite3.Connection, job_id: str) -> None:
        self.conn = conn
        self.job_id = job_id
        self.epochs = 0
        self.curve: list[list[float]] = []

    def on_start(self, info: dict[str, Any]) -> None:
        self.epochs = info["epochs"]
        job = store.get_job(self.conn, self.job_id)  # a resumed run keeps its curve so far
        self.curve = list((job.progress or {}).get("curve") or []) if job else []
        progress = {"curve": self.curve, "epoch": info["start_epoch"],
                    "epochs": info["epochs"], "step": 0,
                    "steps": info["steps_per_epoch"], "loss": None, "images_per_s": None,
                    "eta_s": None, "time": time.time()}
        store.update_job(self.conn, self.job_id, progress=progress, heartbeat=time.time())
        store.add_event(self.conn, self.job_id, "training",
                        f"{info['train_images']} images on {info['device']}, "
                        f"{info['parameters']:,} parameters, from epoch {info['start_epoch']}")

    def on_progress(self, p: dict[str, Any]) -> None:
        now = time.time()
        if p.get("steps") and p.get("loss") is not None:
            add_curve_point(self.curve, p["epoch"] + p["step"] / p["steps"], float(p["loss"]))
        progress = {**p, "epochs": self.epochs, "time": now, "curve": self.curve}
        try:
            store.update_job(self.conn, self.job_id, progress=progress, heartbeat=now)
        except sqlite3.OperationalError as e:  # progress is best effort; the epoch rows are not
            print(f"progress not recorded: {e}", file=sys.stderr)

    def on_epoch(self, m: dict[str, Any]) -> None:
        now = time.time()
        progress = {"epoch": m["epoch"], "epochs": self.epochs, "step": 0, "steps": None,
                    "loss": m["train_loss"], "images_per_s": m["images_per_s"],
                    "lr": m["lr"], "eta_s": None, "time": now, "curve": self.curve}
        with store.transaction(self.conn):
            store.put_metrics(self.conn, self.job_id, m)
            store.update_job(self.conn, self.job_id, progress=progress, heartbeat=now)


class CancelWatcher:
    """should_stop for train(): true once the job's cancel flag is set (read from SQLite at
    most every CANCEL_POLL_S) or a signal asked the worker to stop. Also beats the heartbeat
    while the trainer is between progress reports."""

    def __init__(self, conn: sqlite3.Connection, job_id: str,
                 poll_s: float = CANCEL_POLL_S) -> None:
        self.conn = conn
        self.job_id = job_id
        self.poll_s = poll_s
        self.cancelled = False
        self.signalled: str | None = None
        self._next = 0.0
        self._beat = time.monotonic()

    def __call__(self) -> bool:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.poll_s
            self.refresh(now)
        return self.cancelled or self.signalled is not None

    def refresh(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        try:
            asked = store.cancel_requested(self.conn, [self.job_id])
            # A deleted row means nobody wants this run any more.
            self.cancelled = self.cancelled or asked.get(self.job_id, True)
            if now - self._beat >= HEARTBEAT_S:
                self._beat = now
                store.update_job(self.conn, self.job_id, heartbeat=time.time())
        except sqlite3.OperationalError as e:
            print(f"cancel flag not read: {e}", file=sys.stderr)
