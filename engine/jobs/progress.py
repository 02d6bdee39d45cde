"""How far a job is, in words every page uses the same way.

Epochs: the number of *completed* epochs, plus the step inside the one under way (if any):
"1 / 3 epochs, epoch 2 at step 37 / 100". Running, cancelled or interrupted, a job reads the
same, and the log's "stopped in epoch 2 at step 37" matches it.

Queue: a queued job's place in the queue and what it waits for (a CPU slot, a GPU, the
scheduler itself).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.devices import device_units, parse_devices
from engine.jobs.fair_share import FAIR, queue_now
from engine.jobs.scheduler import scheduler_status
from engine.jobs.settings import load_settings
from engine.state import store


@dataclass(frozen=True)
class EpochPosition:
    completed: int  # whole epochs done
    total: int
    step: int | None = None  # steps done inside epoch completed+1, when one is under way
    steps: int | None = None

    def text(self) -> str:
        out = f"{self.completed} / {self.total}"
        if self.step and self.steps:
            out += f", epoch {self.completed + 1} at step {self.step} / {self.steps}"
        return out

    def short(self) -> str:
        return f"{self.completed}/{self.total}" + (
            f" +{self.step}/{self.steps} steps" if self.step and self.steps else "")


def epoch_position(job: Mapping[str, Any], metrics_count: int | None = None) -> EpochPosition:
    """Where a training job stands, from its progress (and its metrics rows, if counted): a
    job row, or any mapping with its status, progress and config."""
    config = job.get("config") or {}
    p = job.get("progress") or {}
    total = int(p.get("epochs") or config.get("epochs") or 0)
    completed = int(p.get("epoch") or 0)
    if metrics_count is not None:
        completed = max(completed, metrics_count)
    if job.get("status") == "done":
        return EpochPosition(min(max(completed, metrics_count or 0), total) or total, total)
    step, steps = p.get("step"), p.get("steps")
    under_way = (p.get("epoch") or 0) == completed and step and steps and step < steps
    return EpochPosition(completed, total, int(step) if under_way else None,
                         int(steps) if under_way else None)


def queue_position(job_id: str, home: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """For a queued job: {"position": 1-based place in the order jobs would start (fair
    share or FIFO, engine/jobs/fair_share), "queued": how many wait, "waits_for": what it
    waits for, in words, "held": why a quota holds it back, or None}; None if the job is not
    queued."""
    sched = scheduler_status(home)
    settings = sched.get("settings") or load_settings(home).to_dict()
    with store.opened(home) as conn:
        placements = queue_now(conn, settings.get("queue_order") or FAIR)
        running = store.list_jobs(conn, statuses=("running",))
    ids = [p.job.id for p in placements]
    if job_id not in ids:
        return None
    place = placements[ids.index(job_id)]
    if place.waits:
        waits = place.waits
    elif not sched["alive"]:
        waits = "the job scheduler, which is not running"
    else:
        waits = _device_wait(place.job, running, sched, home)
    return {"position": ids.index(job_id) + 1, "queued": len(ids), "waits_for": waits,
            "held": place.waits}


def queue_words(place: dict[str, Any]) -> str:
    """The Job page's line: "Queued: number 2 of 5 in the queue, waiting for ..." (or
    "waiting: alice already runs 2 jobs (limit 2)" when a quota holds it)."""
    head = f"Queued: number {place['position']} of {place['queued']} in the queue"
    if place.get("held"):
        return f"{head}, waiting: {place['held']}."
    return f"{head}, waiting for {place['waits_for']}."


def _device_wait(job: store.Job, running: list[store.Job], sched: dict[str, Any],
                 home: str | os.PathLike | None) -> str:
    settings = sched.get("settings") or load_settings(home).to_dict()
    slots = settings.get("cpu_slots")
    gpus = [d for d in sched.get("devices") or [] if d.startswith("cuda")]
    units = [u for j in running for u in device_units(j.assigned_device)]
    busy_cpu = units.count("cpu")
    busy_gpus = set(units) & set(gpus)
    cpu = (f"a free CPU slot ({busy_cpu} CPU job{'s' * (busy_cpu != 1)} running)"
           if slots is None else f"the CPU slot ({busy_cpu} of {slots} busy)" if slots == 1
           else f"one of {slots} CPU slots ({busy_cpu} busy)")
    request = parse_devices(job.device, int((job.config or {}).get("devices") or 1))
    if request.count > 1:  # data parallel: all of them at once
        if request.kind == "cpu" or (request.kind == "auto" and not gpus):
            return f"{request.count} CPU slots at once ({busy_cpu} busy)"
        if request.gpus is not None:
            return f"GPUs {request.label} at once ({len(busy_gpus)} of {len(gpus)} busy)"
        return f"{request.count} free GPUs at once ({len(busy_gpus)} of {len(gpus)} busy)"
    requested = job.device
    if requested == "cpu":
        return cpu
    if requested in ("cuda", "cuda:0") or requested.startswith("cuda:"):
        name = "cuda:0" if requested == "cuda" else requested
        return f"GPU {name} (busy)" if name in busy_gpus else f"GPU {name}"
    if gpus:
        return f"a free GPU ({len(busy_gpus)} of {len(gpus)} busy) or {cpu}"
    return cpu
