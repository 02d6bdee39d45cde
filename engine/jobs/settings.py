"""Scheduler settings and the environment every job process gets.

Defaults < `<home>/settings.json` {"scheduler": {...}} < environment (STUDIO_CPU_SLOTS,
STUDIO_CPU_THREADS, STUDIO_THREADS_PER_JOB, STUDIO_TASK_THREADS, STUDIO_SCHEDULER_POLL,
STUDIO_SCHEDULER_IDLE_EXIT, STUDIO_GPUS) < explicit arguments, so a host sets them once and
tests can shorten them without touching code. The CPU thread budget's rules are in
engine/jobs/threads.py.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.workspace import read_json, studio_home

ROOT = Path(__file__).resolve().parent.parent.parent  # the repository: on workers' PYTHONPATH

_ENV = {"cpu_slots": ("STUDIO_CPU_SLOTS", int), "poll_s": ("STUDIO_SCHEDULER_POLL", float),
        "idle_exit_s": ("STUDIO_SCHEDULER_IDLE_EXIT", float), "gpus": ("STUDIO_GPUS", int),
        "cpu_threads": ("STUDIO_CPU_THREADS", int),
        "threads_per_job": ("STUDIO_THREADS_PER_JOB", int),
        "task_threads": ("STUDIO_TASK_THREADS", int)}


@dataclass
class SchedulerSettings:
    cpu_slots: int | None = None  # most CPU jobs at once; None = as many as cpu_threads admits
    cpu_threads: int | None = None  # the CPU threads jobs share; None = this process's cores
    threads_per_job: int = 0  # threads of a CPU training; 0 = an even share, rebalanced
    task_threads: int = 1  # threads of a CPU task (evaluation, classify-many, export)
    poll_s: float = 1.0  # how often the scheduler looks at the queue and its workers
    idle_exit_s: float = 60.0  # an on-demand scheduler exits after this long with nothing to do
    gpus: int | None = None  # GPUs to schedule on; None = torch.cuda.device_count()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def thread_budget(self) -> int:
        """cpu_threads, or the cores this process may use when unset."""
        from engine.jobs.threads import usable_cores

        return self.cpu_threads or usable_cores()


def load_settings(home: str | os.PathLike | None = None, **overrides: Any) -> SchedulerSettings:
    values: dict[str, Any] = {}
    path = studio_home(home) / "settings.json"
    if path.exists():
        values.update((read_json(path) or {}).get("scheduler", {}))
    for key, (var, kind) in _ENV.items():
        if os.environ.get(var):
            try:
                values[key] = kind(os.environ[var])
            except ValueError:
                raise ValueError(f"{var} must be a number, got {os.environ[var]!r}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key, (_, kind) in _ENV.items():  # settings.json may hold "2" for 2
        if values.get(key) is not None and not isinstance(values[key], kind):
            try:
                values[key] = kind(values[key])
            except (TypeError, ValueError):
                raise ValueError(f"scheduler setting {key} must be a number, got "
                                 f"{values[key]!r}") from None
    known = {f.name for f in dataclasses.fields(SchedulerSettings)}
    s = SchedulerSettings(**{k: v for k, v in values.items() if k in known})
    if (s.cpu_slots is not None and s.cpu_slots < 0) or s.poll_s <= 0:
        raise ValueError("cpu_slots must be >= 0 and poll_s > 0")
    if s.cpu_threads is not None and s.cpu_threads < 1:
        raise ValueError(f"cpu_threads must be >= 1 (got {s.cpu_threads})")
    if s.threads_per_job < 0 or s.task_threads < 1:
        raise ValueError("threads_per_job must be >= 0 (0 = an even share) and "
                         "task_threads >= 1")
    return s


def process_env(home: str | os.PathLike, **extra: str) -> dict[str, str]:
    """The environment of a scheduler or worker: the same workspace and this repository
    importable, whatever directory the caller ran from."""
    env = dict(os.environ)
    env["STUDIO_HOME"] = str(Path(home).resolve())
    paths = [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def python() -> str:
    return sys.executable
