"""Per-user quotas for a hosted class: how many training jobs a user may have queued and
running, GPU and CPU time in the last 24 hours, epochs per job and workspace disk.

A limit is set for one user, or for everyone ("*", the class default, which a user's own
limit overrides); no limit set means unlimited, the default. Only an instructor (or the local,
user-less caller at the machine) sets them: `python -m engine quotas set alice running_jobs 2`
or the instructor's page.

Submitting a training job over a limit is refused in one line that names the limit
(engine/jobs/api.py raises it as a JobError); the running-jobs limit instead makes a user's
further jobs wait in the queue (engine/jobs/fair_share.py), and the Job page says so. Task
jobs (evaluations, exports) are not counted: they are short and often started for the user.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.hosting import access
from engine.state import store
from engine.state.dataset_files import dataset_dir
from engine.state.limits import MiB
from engine.state.runs import job_dir
from engine.state.workspace import studio_home

Home = str | os.PathLike | None
CLASS_DEFAULT = "*"
DAY_S = 24 * 3600.0


@dataclass(frozen=True)
class Quota:
    """A per-user quota an instructor sets (engine/state/limits.py's Limit is the host's bound
    on untrusted input, set by environment variable)."""

    name: str
    what: str  # for messages: "queued jobs"
    unit: str  # what the number counts


LIMITS: dict[str, Quota] = {quota.name: quota for quota in (
    Quota("queued_jobs", "queued jobs", "jobs"),
    Quota("running_jobs", "running jobs", "jobs"),
    Quota("gpu_minutes_per_day", "GPU time in the last 24 hours", "minutes"),
    Quota("cpu_minutes_per_day", "CPU time in the last 24 hours", "minutes"),
    Quota("epochs_per_job", "epochs per job", "epochs"),
    Quota("disk_mib", "workspace disk", "MiB"),
)}


def _check_name(name: str) -> Quota:
    if name not in LIMITS:
        raise ValueError(f"unknown quota {name!r}; the quotas are {', '.join(LIMITS)}")
    return LIMITS[name]


def parse_value(name: str, text: str | float | None) -> float | None:
    """A limit's value from a form or the command line: a whole number >= 0 (minutes and MiB
    may have a fraction); empty, "none" or "unlimited" = no limit."""
    _check_name(name)
    if text is None or str(text).strip().lower() in ("", "none", "unlimited", "-"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"quota {name} takes a number (or 'unlimited'), not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"quota {name} must be a number >= 0, not {text!r}")
    if LIMITS[name].unit in ("jobs", "epochs") and value != int(value):
        raise ValueError(f"quota {name} counts {LIMITS[name].unit}: a whole number, not {text!r}")
    return value


def set_limit(user: str, name: str, value: float | str | None, by: str | None,
              home: Home = None) -> None:
    """Set (value None: remove) `user`'s limit `name`; user "*" is the class default. `by`
    must be an instructor, or None for the local caller at the machine."""
    access.require_instructor(by, "only an instructor sets quotas", home)
    if not user or not str(user).strip():
        raise ValueError("say whose quota to set: a username, or * for the class default")
    value = parse_value(name, value)
    with store.opened(home) as conn, store.transaction(conn):
        store.set_quota(conn, user, name, value)


def limits_of(conn: sqlite3.Connection, user: str | None) -> dict[str, float | None]:
    """Every limit of `user`: their own, else the class default, else None (unlimited). The
    local, user-less caller (None) has only the class defaults."""
    out: dict[str, float | None] = dict.fromkeys(LIMITS)
    # the class default first, then the user's own over it
    for row in store.quotas_of(conn, CLASS_DEFAULT, user or CLASS_DEFAULT):
        if row["name"] in out:
            out[row["name"]] = row["value"]
    return out


def all_limits(home: Home = None) -> dict[str, dict[str, float]]:
    """Every limit set: user ("*" the class default) -> {name: value}."""
    out: dict[str, dict[str, float]] = {}
    with store.opened(home) as conn:
        for row in store.all_quotas(conn):
            out.setdefault(row["user"], {})[row["name"]] = row["value"]
    return out


def running_limit(conn: sqlite3.Connection) -> Callable[[str], int | None]:
    """user ("" = the local caller) -> their running-jobs limit, for the queue's order."""
    def limit(user: str) -> int | None:
        value = limits_of(conn, user or None)["running_jobs"]
        return None if value is None else int(value)
    return limit


# --- usage ------------------------------------------------------------------------------------


@dataclass
class Usage:
    queued: int
    running: int
    gpu_s: float  # in the last 24 hours
    cpu_s: float
    disk_bytes: int | None  # None when not measured

    def value(self, name: str) -> float | None:
        """The usage a limit compares with, in the limit's unit."""
        return {"queued_jobs": self.queued, "running_jobs": self.running,
                "gpu_minutes_per_day": self.gpu_s / 60, "cpu_minutes_per_day": self.cpu_s / 60,
                "disk_mib": None if self.disk_bytes is None else self.disk_bytes / MiB,
                }.get(name)


def device_time(conn: sqlite3.Connection, user: str | None, now: float | None = None
                ) -> tuple[float, float]:
    """(GPU seconds, CPU seconds) of the user's training jobs' runs inside the last 24 hours
    (each run from its latest start to its end, or to now while it runs)."""
    now = time.time() if now is None else now
    since = now - DAY_S
    gpu = cpu = 0.0
    for row in store.training_runs_since(conn, user, since):
        end = now if row["status"] == "running" or row["finished"] is None else row["finished"]
        seconds = max(0.0, min(end, now) - max(row["started"], since))
        device = row["assigned_device"] or ""
        if device.startswith("cuda"):
            gpu += seconds
        elif device == "cpu":
            cpu += seconds
    return gpu, cpu


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def disk_bytes(conn: sqlite3.Connection, user: str, home: Home = None) -> int:
    """The bytes of the user's part of the workspace: their jobs' folders, their datasets,
    their uploads and lab files."""

    root = studio_home(home)
    job_ids, dataset_ids = store.owned_ids(conn, user)
    folders = [job_dir(j, root) for j in job_ids] + [dataset_dir(root, d) for d in dataset_ids]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)[:64] or "user"
    folders += [root / "uploads" / "users" / safe, root / "lab" / user]
    return sum(_tree_bytes(f) for f in folders if f.is_dir())


def usage_of(conn: sqlite3.Connection, user: str | None, home: Home = None,
             disk: bool = True, now: float | None = None) -> Usage:
    counts = store.active_training_counts(conn, user)
    gpu, cpu = device_time(conn, user, now)
    return Usage(counts.get("queued", 0), counts.get("running", 0), gpu, cpu,
                 disk_bytes(conn, user, home) if disk and user else None)


# --- at submission ----------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def refusal(conn: sqlite3.Connection, owner: str | None, config: dict[str, Any],
            home: Home = None, gpus: int | None = None) -> str | None:
    """Why a new training job of `owner` with `config` is over a quota (one line naming the
    limit), or None. Counts the queued jobs already in the store, so jobs inserted one by
    one in a transaction (a sweep) are each checked against those before them. gpus: how
    many GPUs the scheduler schedules on (None: as many as torch sees), to know whether an
    "auto" job will spend GPU or CPU time."""
    limits = limits_of(conn, owner)
    if all(v is None for v in limits.values()):
        return None
    who = owner or "the local user"
    epochs = int(config.get("epochs") or 0)
    cap = limits["epochs_per_job"]
    if cap is not None and epochs > cap:
        return (f"{epochs} epochs is over {who}'s limit of {_fmt(cap)} epochs per job "
                "(quota epochs_per_job)")
    usage = usage_of(conn, owner, home, disk=limits["disk_mib"] is not None)
    cap = limits["queued_jobs"]
    if cap is not None and usage.queued + 1 > cap:
        return (f"{who} already has {usage.queued} queued job{'s' * (usage.queued != 1)} "
                f"(limit {_fmt(cap)}, quota queued_jobs)")
    cap = limits["disk_mib"]
    if cap is not None and usage.disk_bytes is not None and usage.disk_bytes / MiB >= cap:
        return (f"{who} uses {usage.disk_bytes / MiB:,.1f} MiB of workspace disk (limit "
                f"{_fmt(cap)} MiB, quota disk_mib); delete old jobs or datasets first")
    kinds = _time_kinds(str(config.get("device") or "auto"), gpus)
    spent = [(k, used, cap) for k in kinds
             for used, cap in [(usage.value(f"{k}_minutes_per_day"),
                                limits[f"{k}_minutes_per_day"])]
             if cap is not None and used >= cap]
    if spent and len(spent) == len(kinds):  # every device it could run on is used up
        return "; ".join(f"{who} used {used:,.1f} minutes of {k.upper()} time in the last 24 "
                         f"hours (limit {_fmt(cap)}, quota {k}_minutes_per_day)"
                         for k, used, cap in spent)
    return None


def _time_kinds(device: str, gpus: int | None) -> list[str]:
    """Which time a job may spend: "gpu", "cpu" or both (an "auto" job on a machine with a
    GPU takes a GPU when one is free, else the CPU)."""
    if device == "cpu":
        return ["cpu"]
    if device.startswith("cuda"):
        return ["gpu"]
    if gpus is None:
        try:
            import torch

            gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        except ImportError:
            gpus = 0
    return ["gpu", "cpu"] if gpus else ["cpu"]
