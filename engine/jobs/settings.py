"""Scheduler settings and the environment every job process gets.

Defaults < `<home>/settings.json` {"scheduler": {...}} < environment (STUDIO_CPU_SLOTS,
STUDIO_CPU_THREADS, STUDIO_THREADS_PER_JOB, STUDIO_TASK_THREADS, STUDIO_SCHEDULER_POLL,
STUDIO_SCHEDULER_IDLE_EXIT, STUDIO_GPUS, STUDIO_CLUSTER, STUDIO_CLUSTER_CPUS) < explicit
arguments, so a host sets them once and tests can shorten them without touching code. The
CPU thread budget's rules are in engine/threads.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.jobs.backends import check_cluster_address
from engine.state.workspace import read_json, studio_home
from engine.threads import usable_cores

_ENV = {"cpu_slots": ("STUDIO_CPU_SLOTS", int), "poll_s": ("STUDIO_SCHEDULER_POLL", float),
        "idle_exit_s": ("STUDIO_SCHEDULER_IDLE_EXIT", float), "gpus": ("STUDIO_GPUS", int),
        "cpu_threads": ("STUDIO_CPU_THREADS", int),
        "threads_per_job": ("STUDIO_THREADS_PER_JOB", int),
        "task_threads": ("STUDIO_TASK_THREADS", int),
        "queue_order": ("STUDIO_QUEUE_ORDER", str),
        "cluster": ("STUDIO_CLUSTER", str), "cluster_cpus": ("STUDIO_CLUSTER_CPUS", int)}


@dataclass
class SchedulerSettings:
    cpu_slots: int | None = field(default=None, metadata={
        "flag": "--cpu-slots", "help": "most CPU jobs at once (default: as many as the thread "
                                       "budget admits)"})
    cpu_threads: int | None = field(default=None, metadata={
        "help": "the CPU threads jobs share (default: this process's cores)"})
    threads_per_job: int = field(default=0, metadata={
        "help": "threads of a CPU training; 0 = an even share, rebalanced (default 0)"})
    task_threads: int = field(default=1, metadata={
        "help": "threads of a CPU task: evaluation, classify-many, export (default 1)"})
    poll_s: float = field(default=1.0, metadata={
        "flag": "--poll", "help": "seconds between looks at the queue and workers (default 1)"})
    idle_exit_s: float = field(default=60.0, metadata={
        "flag": "--idle-exit", "help": "an on-demand scheduler exits after this many idle "
                                       "seconds (default 60)"})
    gpus: int | None = field(default=None, metadata={
        "flag": "--gpus", "help": "GPUs to schedule on (default: all visible)"})
    queue_order: str = field(default="fair", metadata={
        "choices": ("fair", "fifo"),
        "help": "fair: the next job goes round-robin across users (fewest running, least "
                "recently served), then by priority and age; fifo: first in, first out "
                "(default fair)"})
    # Issue 20: spread training jobs over a Ray cluster (engine/jobs/backends/ray_cluster.py).
    cluster: str | None = field(default=None, metadata={
        "help": "a Ray cluster to run training jobs on: ray://HOST:PORT, HOST:PORT or auto "
                "(default: none, local worker processes)"})
    cluster_cpus: int = field(default=1, metadata={
        "help": "CPUs a CPU training job asks the Ray cluster for (default 1)"})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def thread_budget(self) -> int:
        """cpu_threads, or the cores this process may use when unset."""

        return self.cpu_threads or usable_cores()


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_scheduler_options(parser: argparse.ArgumentParser) -> None:
    """One command-line option per SchedulerSettings field, default None (= not given)."""
    hints = typing.get_type_hints(SchedulerSettings)
    for f in dataclasses.fields(SchedulerSettings):
        kind = hints[f.name]
        kind = int if kind == (int | None) else str if kind == (str | None) else kind
        parser.add_argument(_flag(f), dest=f.name, type=kind, default=None,
                            choices=f.metadata.get("choices"), help=f.metadata.get("help"))


def given_settings(a: argparse.Namespace) -> dict[str, Any]:
    """The SchedulerSettings a parsed command line gave."""
    return {f.name: getattr(a, f.name) for f in dataclasses.fields(SchedulerSettings)
            if getattr(a, f.name, None) is not None}


def settings_args(settings: dict[str, Any]) -> list[str]:
    """Command-line arguments that give these settings to a scheduler process."""
    fields = {f.name: f for f in dataclasses.fields(SchedulerSettings)}
    args: list[str] = []
    for key, value in settings.items():
        if key not in fields:
            raise TypeError(f"unknown scheduler setting {key!r}")
        if value is not None:
            args += [_flag(fields[key]), str(value)]
    return args


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
    if s.queue_order not in ("fair", "fifo"):
        raise ValueError(f"queue_order must be fair or fifo, not {s.queue_order!r}")
    if s.cluster is not None and s.cluster.strip():

        s.cluster = check_cluster_address(s.cluster)
    else:
        s.cluster = None  # "" in settings.json: local workers
    if s.cluster_cpus < 1:
        raise ValueError(f"cluster_cpus must be >= 1 (got {s.cluster_cpus})")
    if s.threads_per_job < 0 or s.task_threads < 1:
        raise ValueError("threads_per_job must be >= 0 (0 = an even share) and "
                         "task_threads >= 1")
    return s


def process_env(home: str | os.PathLike, **extra: str) -> dict[str, str]:
    """The environment of a scheduler or worker: the same workspace (the project itself is
    installed, so it imports from any directory)."""
    env = dict(os.environ)
    env["STUDIO_HOME"] = str(Path(home).resolve())
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def python() -> str:
    return sys.executable
