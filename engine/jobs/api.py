"""Job operations for the dashboard and the CLI: submit, sweep, list, show, cancel, resume,
clone, delete, logs. Every write is a compare-and-set in one SQLite transaction, so users,
the scheduler and workers never overwrite each other's moves.

Ownership: every job records its owner. `user=None` is the local, user-less caller (the CLI,
a dashboard without users) and may act on any job; a named user may cancel, resume or delete
only jobs that are theirs (or that have no owner); instructors may cancel or delete any job.
Who sees which jobs (`viewer`) and who may act: engine/access.
"""

from __future__ import annotations

import copy
import itertools
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.devices import device_units, parse_devices
from engine.hosting import access, quotas
from engine.hosting.ownership import WRITES_PARENT, check_may_write
from engine.jobs.health import worker_state
from engine.jobs.placement import refusal
from engine.jobs.scheduler import ensure_scheduler
from engine.jobs.settings import load_settings
from engine.jobs.status import ENDED, STATUSES, resumable
from engine.jobs.task_queue import queue_task
from engine.jobs.task_registry import resolve
from engine.state import store
from engine.state.runs import (
    corrupt_checkpoint,
    has_checkpoint,
    job_dir,
    new_job_id,
    pin_dataset,
)
from engine.training import ConfigError, TrainConfig

if TYPE_CHECKING:  # torch loads only when a config is built: the scheduler starts fast
    from engine.training.config import TrainConfig


Home = str | os.PathLike | None


class JobError(ValueError):
    """A job operation that cannot be done in the job's state (or on a missing job)."""


class SchedulerNotStarted(JobError):
    """The job(s) are queued, but no scheduler could be started to run them."""

    def __init__(self, job_ids: list[str], why: str) -> None:
        self.job_ids = job_ids
        what = f"job {job_ids[0]} is" if len(job_ids) == 1 else f"{len(job_ids)} jobs are"
        super().__init__(f"{what} queued, but the job scheduler did not start ({why}); "
                         "start it with `python -m engine scheduler`")


class QuotaExceeded(JobError):
    """A training job refused at submission: it would go over one of its owner's quotas
    (engine/hosting/quotas.py); the message names the limit."""


def _check_quota(conn: sqlite3.Connection, owner: str | None, config: dict[str, Any]) -> None:
    home = _home_of(conn)
    why = quotas.refusal(conn, owner, config, home, gpus=load_settings(home).gpus)
    if why:
        raise QuotaExceeded(f"job refused: {why}")


def _start_scheduler(home: Home, job_ids: list[str]) -> None:
    """ensure_scheduler after queueing: a failure is a one-line error that says the jobs are
    safely queued, never a traceback."""
    try:
        ensure_scheduler(home)
    except (RuntimeError, OSError) as e:
        raise SchedulerNotStarted(job_ids, str(e).replace("\n", " ")[:300]) from None


def _find(conn: sqlite3.Connection, job_id: str) -> store.Job:
    """A job by id or unique id prefix."""
    job = store.get_job(conn, job_id)
    if job is not None:
        return job
    rows = store.job_ids_starting(conn, job_id)
    if len(rows) == 1:
        return store.get_job(conn, rows[0])
    raise JobError(f"no job {job_id!r}" if not rows else f"{job_id!r} matches several jobs")


def _check_owner(conn: sqlite3.Connection, job: store.Job, user: str | None, action: str) -> None:
    access.check_job_action(conn, job, user, action)


# --- submit -------------------------------------------------------------------------------------


def validate_config(config: TrainConfig | dict[str, Any], home: Home = None) -> TrainConfig:
    """A validated copy of the config whose dataset exists and whose network fits it: errors
    show at submit time, not minutes later in a worker."""
    from engine.networks import validate_spec
    from engine.training import network_spec

    raw = config.to_dict() if isinstance(config, TrainConfig) else copy.deepcopy(dict(config))
    cfg = TrainConfig.from_dict(raw).validate()
    _check_devices(cfg, home)  # the device strings parse: validate() checked them
    with store.opened(home) as conn:
        ds = store.get_dataset(conn, cfg.dataset)
    if ds is None:
        raise ConfigError(f"no dataset {cfg.dataset!r} in this workspace; create it first "
                          "(`python -m engine datasets list` shows those there are)")
    m = ds["manifest"]
    validate_spec(network_spec(cfg.network), (m["channels"], m["height"], m["width"]),
                  len(m["classes"]))
    if cfg.init_from:  # the full job id and checkpoint, or an absolute path: what lineage reads
        from engine.training.init import resolve_source

        cfg.init_from = resolve_source(cfg.init_from, home)[0]
    return cfg


def _check_devices(cfg: TrainConfig, home: Home) -> None:
    """A job asking for more devices than this machine has is refused at once, with why."""

    req = parse_devices(cfg.device, cfg.devices)  # validated: it parses
    if req.count == 1:
        return
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    why = refusal(req, gpus, load_settings(home), cfg.precision)
    if why:
        raise ConfigError(why)


def _home_of(conn: sqlite3.Connection) -> str:
    """The workspace of an open store connection (its database file's folder)."""
    return store.home_of(conn)


def _insert(conn: sqlite3.Connection, cfg: TrainConfig, owner: str | None, name: str,
            parent: str | None = None, sweep: str | None = None, priority: int = 0) -> str:
    _check_quota(conn, owner, cfg.to_dict())
    job_id = new_job_id()
    now = time.time()
    if not name:
        net = cfg.network if isinstance(cfg.network, str) else cfg.network.get("name", "custom")
        name = cfg.name or f"{net} on {cfg.dataset}"
    dataset = store.get_dataset(conn, cfg.dataset)
    if dataset is not None:
        access.check_dataset_visible(conn, dataset, owner)
    if owner:
        store.ensure_user(conn, owner)
    store.insert_job(conn, {"id": job_id, "name": name, "owner": owner, "status": "queued",
                            "device": cfg.device, "config": cfg.to_dict(), "created": now,
                            "queued": now, "parent": parent, "sweep": sweep,
                            "priority": int(priority)})
    if dataset is not None:
        pin_dataset(job_id, dataset, _home_of(conn))
    note = f"cloned from {parent}" if parent else f"part of sweep {sweep}" if sweep else ""
    store.add_event(conn, job_id, "submitted",
                    f"by {owner or 'local user'}" + (f", {note}" if note else ""))
    return job_id


def submit(config: TrainConfig | dict[str, Any], owner: str | None = None, name: str = "", *,
           home: Home = None, start_scheduler: bool = True, priority: int = 0) -> str:
    """Queue a training job; returns its id. Starts a scheduler unless one runs. Priority
    orders the owner's own queued jobs (higher first); QuotaExceeded if over a quota."""
    cfg = validate_config(config, home)
    with store.opened(home) as conn, store.transaction(conn):
        job_id = _insert(conn, cfg, owner, name, priority=priority)
    if start_scheduler:
        _start_scheduler(home, [job_id])
    return job_id


def submit_sweep(base_config: TrainConfig | dict[str, Any],
                 lrs: Sequence[float] | None = None, batch_sizes: Sequence[int] | None = None,
                 owner: str | None = None, name: str = "", *, home: Home = None,
                 start_scheduler: bool = True, priority: int = 0) -> list[str]:
    """One job per (learning rate, batch size) combination, as DIGITS did; returns their ids
    in submission (and so run) order. The jobs share a sweep id."""

    base = validate_config(base_config, home)
    lrs = list(lrs) if lrs else [base.lr]
    batch_sizes = list(batch_sizes) if batch_sizes else [base.batch_size]
    configs = []
    for lr, bs in itertools.product(lrs, batch_sizes):
        cfg = TrainConfig.from_dict({**base.to_dict(), "lr": float(lr), "batch_size": int(bs)})
        configs.append(cfg.validate())
    sweep = "sweep-" + secrets.token_hex(4)
    stem = name or base.name or (base.network if isinstance(base.network, str) else "custom")
    with store.opened(home) as conn, store.transaction(conn):
        ids = [_insert(conn, c, owner, f"{stem} lr={c.lr:g} batch={c.batch_size}", sweep=sweep,
                       priority=priority) for c in configs]
    if start_scheduler:
        _start_scheduler(home, ids)
    return ids


def submit_task(task: str, params: dict[str, Any], owner: str | None = None, name: str = "",
                *, parent: str | None = None, device: str = "cpu", home: Home = None,
                start_scheduler: bool = True) -> str:
    """Queue a task job (evaluation, classify-many, export, engine build...; see engine/tasks)
    that works on the trained job `parent`; returns its id. Like training, it runs in a
    worker process, so the dashboard never blocks on it."""

    resolve(task)  # an unknown task fails here, not in a worker
    with store.opened(home) as conn, store.transaction(conn):
        if parent is not None:
            parent_job = _find(conn, parent)
            if task in WRITES_PARENT:  # its results land in the parent's folder and rows
                check_may_write(parent_job, owner, WRITES_PARENT[task])
            parent = parent_job.id
        job_id = queue_task(conn, task, params, owner, name, parent=parent, device=device)
    if start_scheduler:
        _start_scheduler(home, [job_id])
    return job_id


def list_tasks(parent: str, task: str | None = None, *, home: Home = None
               ) -> list[LiveJob]:
    """The task jobs run for trained job `parent` (of one task name if given), newest first."""
    with store.opened(home) as conn:
        parent = _find(conn, parent).id
        rows = store.list_jobs(conn, kind="task", parent=parent)
    return [live(j) for j in rows if task is None or j.config.get("task") == task]


def job_evaluations(job_id: str, home: Home = None) -> list[dict[str, Any]]:
    """The stored evaluations of a trained job's checkpoints, newest first."""
    with store.opened(home) as conn:
        return store.get_evaluations(conn, _find(conn, job_id).id)


# --- read ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveJob(store.Job):
    """A job as the API hands it out: its row, what is live about it now (fraction done,
    0..1, the ETA, a worker problem) and, from get_job, its metrics, events, run folder and
    checkpoint state (None where not asked for). Reads as a mapping, as store.Job does."""

    fraction: float | None = None
    eta_s: float | None = None
    worker_problem: str | None = None
    metrics: list[dict[str, Any]] | None = None
    events: list[dict[str, Any]] | None = None
    dir: str | None = None
    checkpoint: bool | None = None
    checkpoint_problem: str | None = None
    resumable: bool | None = None


def live(job: store.Job) -> LiveJob:
    """The job row with its fraction done (0..1), its ETA as of now and any worker problem."""
    p = job.progress or {}
    fraction = None
    if job.status == "done":
        fraction = 1.0
    elif p.get("fraction") is not None:  # task jobs report their fraction directly
        fraction = float(p["fraction"])
    elif p.get("epochs"):
        step = (p.get("step") or 0) / p["steps"] if p.get("steps") else 0.0
        fraction = min(1.0, (p.get("epoch", 0) + step) / p["epochs"])
    eta = None
    if job.status == "running" and p.get("eta_s") is not None:
        eta = max(0.0, p["eta_s"] - (time.time() - p.get("time", time.time())))

    return LiveJob(**job.to_dict(), fraction=fraction, eta_s=eta,
                   worker_problem=worker_state(job))


def running_on_cpu(home: Home = None) -> int:
    """How many running jobs (trainings and tasks) hold the CPU."""
    with store.opened(home) as conn:
        running = store.list_jobs(conn, statuses=("running",))
    return sum(1 for j in running if "cpu" in device_units(j.assigned_device))


def list_jobs(owner: str | None = None, status: str | Sequence[str] | None = None, *,
              sweep: str | None = None, limit: int | None = None, kind: str | None = "train",
              home: Home = None, viewer: str | None = None) -> list[LiveJob]:
    """Jobs, newest first, filtered by owner, status(es) and sweep; training jobs unless
    kind is "task" (evaluations, exports...) or None (all); only those `viewer` may see."""
    statuses = (status,) if isinstance(status, str) else tuple(status) if status else None
    bad = set(statuses or ()) - set(STATUSES)
    if bad:
        raise JobError(f"unknown status {', '.join(sorted(bad))}; use one of "
                       f"{', '.join(STATUSES)}")
    with store.opened(home) as conn:
        if access.restricted(conn, viewer):  # a student in accounts mode: their own only
            if owner not in (None, viewer):
                return []
            rows = [j for j in store.list_jobs(conn, statuses=statuses, sweep=sweep, kind=kind)
                    if j.owner in (None, viewer)][:limit]
        else:
            rows = store.list_jobs(conn, owner=owner, statuses=statuses, sweep=sweep,
                                   limit=limit, kind=kind)
        return [live(j) for j in rows]


def get_job(job_id: str, home: Home = None, *, metrics: bool = True,
            events: bool = True, viewer: str | None = None) -> LiveJob:
    """A job with its config, status, progress, ETA and (by default) metrics and events;
    PermissionError when `viewer` may not see it."""
    with store.opened(home) as conn:
        row = _find(conn, job_id)
        access.check_job_visible(conn, row, viewer)
        job = live(row)
        got = {"metrics": store.get_metrics(conn, job.id) if metrics else None,
               "events": store.get_events(conn, job.id) if events else None}
    checkpoint = has_checkpoint(job.id, home)
    problem = corrupt_checkpoint(job.id, home) if job.kind == "train" else None
    return job.replace(**got, dir=str(job_dir(job.id, home)), checkpoint=checkpoint,
                       checkpoint_problem=problem,
                       resumable=resumable(job.kind, job.status, checkpoint, intact=not problem))


def job_metrics(job_id: str, home: Home = None) -> list[dict[str, Any]]:
    with store.opened(home) as conn:
        return store.get_metrics(conn, _find(conn, job_id).id)


def metrics_of(job_ids: Sequence[str], home: Home = None) -> dict[str, list[dict[str, Any]]]:
    """Per-epoch metrics of several jobs (exact ids) in one query: id -> rows."""
    with store.opened(home) as conn:
        return store.get_metrics_of(conn, list(job_ids))


def job_events(job_id: str, after_id: int = 0, home: Home = None) -> list[dict[str, Any]]:
    with store.opened(home) as conn:
        return store.get_events(conn, _find(conn, job_id).id, after_id)


def read_log(job_id: str, home: Home = None, tail: int | None = None) -> str:
    """The job's training log (log.txt); with tail, its last lines."""
    with store.opened(home) as conn:
        job_id = _find(conn, job_id).id
    path = job_dir(job_id, home) / "log.txt"
    text = path.read_text(errors="replace") if path.exists() else ""
    if tail is not None:
        text = "".join(text.splitlines(keepends=True)[-tail:]) if tail > 0 else ""
    return text


def wait(job_id: str, timeout: float | None = None, poll_s: float = 0.25,
         home: Home = None) -> dict[str, Any]:
    """Block until the job has ended (done, failed, cancelled, interrupted); returns it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = get_job(job_id, home, metrics=False, events=False)
        if job.status in ENDED:
            return get_job(job_id, home)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
        time.sleep(poll_s)


# --- change -------------------------------------------------------------------------------------


def cancel(job_id: str, user: str | None = None, home: Home = None) -> str:
    """Cancel a job: a queued one at once ("cancelled"); a running one at its next step, with
    a checkpoint to resume from ("cancelling" until the worker records it)."""
    with store.opened(home) as conn, store.transaction(conn):
        job = _find(conn, job_id)
        _check_owner(conn, job, user, "cancel")
        if job.status == "queued":
            store.update_job(conn, job.id, status="cancelled", finished=time.time(),
                             reason="cancelled", message="cancelled before it started")
            store.add_event(conn, job.id, "cancelled", f"by {user or 'local user'}")
            return "cancelled"
        if job.status == "running":
            if not job.cancel_requested:
                store.update_job(conn, job.id, cancel_requested=True)
                store.add_event(conn, job.id, "cancel_requested", f"by {user or 'local user'}")
            return "cancelling"
    raise JobError(f"job {job.id} is {job.status}; only queued or running jobs can be "
                   "cancelled")


def resume(job_id: str, user: str | None = None, home: Home = None, *,
           start_scheduler: bool = True, device: str | None = None,
           devices: int | None = None) -> None:
    """Queue an interrupted, cancelled (or failed, with a checkpoint) job again; its worker
    continues from the last checkpoint with optimizer, schedule and RNG state. `device` /
    `devices` move it to other devices: a checkpoint continues on any number of them."""
    checkpoint = None
    with store.opened(home) as conn, store.transaction(conn):
        job = _find(conn, job_id)
        _check_owner(conn, job, user, "resume")
        if job.kind != "train":
            raise JobError(f"job {job.id} is a {job.config['task']} task; submit it "
                           "again instead of resuming it")
        corrupt = corrupt_checkpoint(job.id, home)
        if corrupt:
            raise JobError(f"job {job.id} cannot be resumed: {corrupt}")
        checkpoint = has_checkpoint(job.id, home)
        if not resumable(job.kind, job.status, checkpoint):
            why = "it has no checkpoint" if job.status == "failed" else f"it is {job.status}"
            raise JobError(f"job {job.id} cannot be resumed: {why}")
        _check_quota(conn, job.owner, job.config)
        moved = {}
        if device is not None or devices is not None:
            moved = _moved(job, device, devices, home)
        store.update_job(conn, job.id, status="queued", queued=time.time(), resume=checkpoint,
                         cancel_requested=False, finished=None, reason=None, message=None,
                         **moved)
        store.add_event(conn, job.id, "resumed",
                        "re-queued; continues from its last checkpoint" if checkpoint
                        else "re-queued; no checkpoint yet, so it starts over")
    if start_scheduler:
        _start_scheduler(home, [job.id])


def _moved(job: store.Job, device: str | None, devices: int | None, home: Home) -> dict[str, Any]:
    """The job row's device and config for other devices, checked as a submit is."""

    config = dict(job.config)
    config["device"] = device if device is not None else config["device"].split(":")[0]
    config["devices"] = devices or 1
    cfg = TrainConfig.from_dict(config).validate()
    _check_devices(cfg, home)
    return {"device": cfg.device, "config": cfg.to_dict()}


def _merge(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides as {"lr": 0.001, "augment": {"invert": 0.5}} or {"augment.invert": 0.5}."""
    out = copy.deepcopy(config)
    for key, value in overrides.items():
        parts = key.split(".")
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if isinstance(value, dict) and isinstance(target.get(parts[-1]), dict):
            target[parts[-1]] = {**target[parts[-1]], **value}
        else:
            target[parts[-1]] = value
    return out


def clone(job_id: str, overrides: dict[str, Any] | None = None, owner: str | None = None,
          name: str | None = None, *, home: Home = None, start_scheduler: bool = True) -> str:
    """A new job with the config of `job_id` changed by `overrides`; records its parent."""
    with store.opened(home) as conn:
        parent = _find(conn, job_id)
        access.check_job_visible(conn, parent, owner)
    if parent.kind != "train":
        raise JobError(f"job {parent.id} is a task, not a training job; only training jobs "
                       "can be cloned")
    cfg = validate_config(_merge(parent.config, overrides or {}), home)
    with store.opened(home) as conn, store.transaction(conn):
        new_id = _insert(conn, cfg, owner, name or f"{parent.name} (clone)",
                         parent=parent.id)
    if start_scheduler:
        _start_scheduler(home, [new_id])
    return new_id


def delete(job_id: str, user: str | None = None, home: Home = None) -> None:
    """Delete a job's rows and files, with its task jobs. A running training job must be
    cancelled (and have stopped) first."""
    with store.opened(home) as conn, store.transaction(conn):
        job = _find(conn, job_id)
        _check_owner(conn, job, user, "delete")
        if job.status == "running":
            raise JobError(f"job {job.id} is running; cancel it first, then delete it once "
                           "it has stopped")
        # Its tasks (evaluations, exports) go with it; a running one sees its row gone at
        # its next progress report and stops.
        tasks = store.list_jobs(conn, kind="task", parent=job.id)
        for t in [*tasks, job]:
            store.delete_job(conn, t.id)
    for t in [*tasks, job]:
        shutil.rmtree(job_dir(t.id, home), ignore_errors=True)
