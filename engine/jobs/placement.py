"""Where a data-parallel job (several devices) runs: all of its devices are reserved at once,
or it waits; a request this machine can never meet is refused with the reason.

A job on N GPUs takes N free GPUs (the ones it names, or any); a job of N CPU processes takes
N CPU training slots of the thread budget (engine/threads.py), each rank at least one
thread, so N may not exceed the budget's threads (nor cpu_slots).
"""

from __future__ import annotations

import collections

from engine.devices import DeviceRequest, assigned_name, parse_devices
from engine.jobs.settings import SchedulerSettings
from engine.state.store import Job
from engine.threads import admits


def job_request(job: Job) -> DeviceRequest:
    """The devices a queued job asks for (tasks and old jobs: one)."""
    config = job.config or {}
    return parse_devices(job.device, int(config.get("devices", 1) or 1))


def refusal(req: DeviceRequest, gpus: int, settings: SchedulerSettings,
            precision: str = "fp32") -> str | None:
    """Why a request of several devices can never run on this machine (one line), or None."""
    on_gpus = req.kind == "cuda" or (req.kind == "auto" and gpus > 0)
    if on_gpus:
        wanted = req.gpus if req.gpus is not None else tuple(range(req.count))
        if gpus < req.count or max(wanted) >= gpus:
            named = f" ({req.label})" if req.gpus is not None else ""
            return (f"this job asks for {req.count} GPUs{named}, but this machine has "
                    f"{gpus}; ask for {gpus} or fewer" if gpus else
                    f"this job asks for {req.count} GPUs, but this machine has none; use "
                    f"cpu:{req.count} for {req.count} CPU processes")
        return None
    if precision != "fp32":
        return "mixed precision (bf16/fp16) needs GPUs; this machine has none"
    budget = settings.thread_budget
    if settings.cpu_slots == 0:
        return "the scheduler is set to run no jobs on the CPU (cpu_slots 0)"
    if req.count > budget:
        return (f"this job asks for {req.count} CPU processes, but the CPU thread budget is "
                f"{budget} threads (each process needs one); ask for {budget} or fewer")
    if settings.cpu_slots is not None and req.count > settings.cpu_slots:
        return (f"this job asks for {req.count} CPU processes, but the scheduler runs at most "
                f"{settings.cpu_slots} CPU jobs at once (cpu_slots)")
    return None


def pick_many(req: DeviceRequest, gpus: int, usage: collections.Counter,
              cpu_running: list[str], settings: SchedulerSettings, precision: str = "fp32"
              ) -> str | None:
    """All the devices of a multi-device job as one assigned string ('cuda:0,1', 'cpu:2'),
    None while some are busy, ValueError when they can never be had here."""
    why = refusal(req, gpus, settings, precision)
    if why:
        raise ValueError(why)
    if req.kind == "cuda" or (req.kind == "auto" and gpus > 0):
        if req.gpus is not None and req.kind == "cuda":
            wanted = [f"cuda:{i}" for i in req.gpus]
            return None if any(usage[g] for g in wanted) else assigned_name(wanted)
        free = [f"cuda:{i}" for i in range(gpus) if not usage[f"cuda:{i}"]]
        return assigned_name(free[:req.count]) if len(free) >= req.count else None
    fits = admits(cpu_running, "train", count=req.count, cpu_threads=settings.thread_budget,
                  cpu_slots=settings.cpu_slots, task_threads=settings.task_threads,
                  threads_per_job=settings.threads_per_job)
    return f"cpu:{req.count}" if fits else None
