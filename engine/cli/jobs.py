"""`python -m engine jobs ...` and `python -m engine scheduler`.

`jobs submit` takes the options of `python -m engine train` (the same parser code), except that
--lr and --batch-size accept comma-separated lists: one job per combination (a sweep).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from typing import Any

from tqdm import tqdm

from engine.cli.common import CliError, numbers, user_errors
from engine.cli.train import add_train_options, config_from_args
from engine.hosting.ownership import acting_user
from engine.jobs import api
from engine.jobs.lineage import lineage_line
from engine.jobs.progress import queue_position, queue_words
from engine.jobs.scheduler import scheduler_status, serve
from engine.jobs.settings import add_scheduler_options, given_settings
from engine.jobs.status import ENDED
from engine.text import format_duration
from engine.training import TrainConfig


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the `jobs` and `scheduler` command groups to the engine CLI."""
    p = sub.add_parser("jobs", help="queue training jobs, follow, cancel, resume, clone them")
    jsub = p.add_subparsers(dest="action", required=True)

    s = jsub.add_parser("submit", help="queue a training job (or a sweep)")
    add_train_options(s, sweep=True)
    s.add_argument("--owner", help="user the job belongs to")
    s.add_argument("--priority", type=int, default=0,
                   help="order among the owner's own queued jobs, higher first (default 0)")
    _common(s, follow=True, start=True)
    s.set_defaults(func=cmd_submit)

    ls = jsub.add_parser("list", help="list jobs, newest first")
    ls.add_argument("--owner")
    ls.add_argument("--status", help="comma-separated: queued,running,done,failed,...")
    ls.add_argument("--sweep")
    ls.add_argument("--limit", type=int)
    ls.add_argument("--kind", choices=("train", "task", "all"), default="train",
                    help="training jobs (default), task jobs (evaluations, exports...) or all")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    sh = jsub.add_parser("show", help="a job's config, status, progress, ETA and metrics")
    sh.add_argument("job")
    _common(sh, follow=True)
    sh.set_defaults(func=cmd_show)

    for name, helptext, func in [("cancel", "cancel a job (running: at the next step, with a "
                                  "checkpoint)", cmd_cancel),
                                 ("resume", "re-queue a stopped job from its last checkpoint",
                                  cmd_resume),
                                 ("delete", "delete a job's rows and files", cmd_delete)]:
        c = jsub.add_parser(name, help=helptext)
        c.add_argument("job")
        c.add_argument("--user", help="who asks (default: $STUDIO_USER; only its owner may)")
        _common(c, follow=name == "resume", start=name == "resume")
        if name == "resume":  # a checkpoint continues on any number of devices
            c.add_argument("--devices", type=int, help="continue on this many devices")
            c.add_argument("--device", help="continue on this device (e.g. cpu, cuda:0,1)")
        c.set_defaults(func=func)

    cl = jsub.add_parser("clone", help="a new job from another's config, with changes")
    cl.add_argument("job")
    cl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="change a setting, e.g. --set lr=0.001 --set augment.invert=0.5")
    cl.add_argument("--name")
    cl.add_argument("--owner")
    _common(cl, follow=True, start=True)
    cl.set_defaults(func=cmd_clone)

    lg = jsub.add_parser("logs", help="a job's training log")
    lg.add_argument("job")
    lg.add_argument("--tail", type=int, help="only the last N lines")
    lg.add_argument("--follow", action="store_true", help="keep printing until the job ends")
    lg.set_defaults(func=cmd_logs)

    sc = sub.add_parser("scheduler", help="host the job scheduler in the foreground")
    add_scheduler_options(sc)
    sc.add_argument("--status", action="store_true", help="only say whether one runs")
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(func=cmd_scheduler)


def _common(p: argparse.ArgumentParser, follow: bool = False, start: bool = False) -> None:
    if follow:
        p.add_argument("--follow", action="store_true",
                       help="show live progress until the job ends")
    if start:
        p.add_argument("--no-start", action="store_true",
                       help="only queue; do not start a scheduler")
    p.add_argument("--json", action="store_true")


# --- commands -----------------------------------------------------------------------------------


@user_errors
def cmd_submit(a: argparse.Namespace) -> Any:
    defaults = TrainConfig(dataset="")
    lrs = numbers(a.lr or defaults.lr, float, "--lr")
    sizes = numbers(a.batch_size or defaults.batch_size, int, "--batch-size")
    ns = copy.copy(a)
    ns.lr, ns.batch_size = lrs[0], sizes[0]
    cfg = config_from_args(ns)
    start = not a.no_start
    if len(lrs) * len(sizes) > 1:
        ids = api.submit_sweep(cfg, lrs, sizes, owner=acting_user(a.owner), name=a.name,
                               priority=a.priority,
                               start_scheduler=start)
    else:
        ids = [api.submit(cfg, owner=acting_user(a.owner), name=a.name, start_scheduler=start,
                          priority=a.priority)]
    if a.follow:
        ends = [follow(i, quiet=a.json) for i in ids]
        return ends[0] if len(ends) == 1 else ends
    jobs = [api.get_job(i, metrics=False, events=False) for i in ids]
    if len(jobs) == 1:
        return _summary(jobs[0])
    return {"sweep": jobs[0].sweep, "jobs": [_summary(j) for j in jobs]}


def cmd_list(a: argparse.Namespace) -> Any:
    status = [s for s in a.status.split(",") if s] if a.status else None
    jobs = api.list_jobs(a.owner, status, sweep=a.sweep, limit=a.limit,
                         kind=None if a.kind == "all" else a.kind, viewer=acting_user())
    rows = [_summary(j) for j in jobs]
    if a.json:
        return rows
    if not rows:
        return "no jobs"
    head = f"{'id':24} {'status':11} {'device':7} {'progress':14} {'val acc':>7}  name"
    lines = [head]
    for r in rows:
        acc = f"{r['val_accuracy']:.4f}" if r["val_accuracy"] is not None else ""
        lines.append(f"{r['id']:24} {r['status']:11} {r['device'] or '':7} "
                     f"{r['progress']:14} {acc:>7}  {r['name']}"
                     + (f" [{r['owner']}]" if r["owner"] else ""))
    return "\n".join(lines)


def cmd_show(a: argparse.Namespace) -> Any:
    if a.follow:
        api.get_job(a.job, metrics=False, events=False, viewer=acting_user())
        follow(a.job, quiet=a.json)
    job = api.get_job(a.job, viewer=acting_user())
    return job if a.json else _describe(job)


@user_errors
def cmd_cancel(a: argparse.Namespace) -> dict:
    return {"id": api.get_job(a.job, metrics=False, events=False).id,
            "status": api.cancel(a.job, user=acting_user(a.user))}


@user_errors
def cmd_resume(a: argparse.Namespace) -> Any:
    api.resume(a.job, user=acting_user(a.user), start_scheduler=not a.no_start,
               device=a.device, devices=a.devices)
    if a.follow:
        return follow(a.job, quiet=a.json)
    return _summary(api.get_job(a.job, metrics=False, events=False))


@user_errors
def cmd_clone(a: argparse.Namespace) -> Any:
    overrides = {}
    for item in a.set:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise CliError(f"--set takes KEY=VALUE, not {item!r}")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    new_id = api.clone(a.job, overrides, owner=acting_user(a.owner), name=a.name,
                       start_scheduler=not a.no_start)
    if a.follow:
        return follow(new_id, quiet=a.json)
    return _summary(api.get_job(new_id, metrics=False, events=False))


@user_errors
def cmd_delete(a: argparse.Namespace) -> dict:
    job_id = api.get_job(a.job, metrics=False, events=False).id
    api.delete(job_id, user=acting_user(a.user))
    return {"deleted": job_id}


def cmd_logs(a: argparse.Namespace) -> Any:
    api.get_job(a.job, metrics=False, events=False, viewer=acting_user())
    if not a.follow:
        return api.read_log(a.job, tail=a.tail).rstrip("\n")
    job_id = api.get_job(a.job, metrics=False, events=False).id
    text = api.read_log(job_id, tail=a.tail)
    sys.stdout.write(text)
    offset = len(api.read_log(job_id))
    while True:
        status = api.get_job(job_id, metrics=False, events=False)["status"]
        full = api.read_log(job_id)
        sys.stdout.write(full[offset:])
        sys.stdout.flush()
        offset = len(full)
        if status in ENDED:
            return None
        time.sleep(0.5)


def cmd_scheduler(a: argparse.Namespace) -> Any:
    status = scheduler_status()
    if a.status:
        return status
    if status["alive"]:
        raise CliError(f"a scheduler already runs for this workspace (pid {status.get('pid')})")
    print("scheduler running; Ctrl-C stops it (running jobs keep going)", file=sys.stderr)
    serve(on_demand=False, **given_settings(a))
    return None


# --- display ------------------------------------------------------------------------------------


def _summary(job: api.LiveJob) -> dict[str, Any]:
    p = job.progress or {}
    if p.get("epochs"):
        progress = f"epoch {min(p.get('epoch', 0) + (job.status == 'running'), p['epochs'])}"
        progress += f"/{p['epochs']}"
    elif job.kind == "task":
        progress = job.config["task"]
    else:
        progress = ""
    result = job.result or {}
    best = result.get("best") or {}
    if job.kind == "task":
        best = {"val_accuracy": result.get("accuracy")}
    return {"id": job.id, "name": job.name, "owner": job.owner,
            "status": job.status, "device": job.assigned_device or job.device,
            "progress": progress, "fraction": job.fraction, "eta_s": job.eta_s,
            "val_accuracy": best.get("val_accuracy"), "created": job.created,
            "finished": job.finished, "reason": job.reason, "message": job.message,
            "parent": job.parent, "sweep": job.sweep, "kind": job.kind}


def _describe(job: api.LiveJob) -> str:
    from engine.training.trainer import format_epoch

    s = _summary(job)
    lines = [f"job {job.id}: {job.name}",
             f"status   {job.status}" + (
                 f" ({job.reason + ': ' if job.reason else ''}{job.message})"
                 if job.message else ""),
             f"owner    {job.owner or '-'}",
             f"device   {s['device']}",
             f"progress {s['progress']}"
             + (f" {100 * s['fraction']:.0f}%" if s["fraction"] is not None else "")
             + (f", ETA {format_duration(s['eta_s'])}" if s["eta_s"] is not None else ""),
             f"created  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(job.created))}"]
    if job.status == "queued":

        place = queue_position(job.id)
        if place:
            lines.append(f"queue    {queue_words(place)}")
    if job.parent:
        lines.append(f"parent   {job.parent}")
    if job.sweep:
        lines.append(f"sweep    {job.sweep}")
    if job.config.get("init_from"):

        lines.append(f"lineage  {lineage_line(job.id)}")
    lines.append(f"dir      {job.dir}")
    lines.append("config   " + json.dumps(job.config, sort_keys=True))
    for m in job.metrics:
        lines.append("  " + format_epoch(m))
    return "\n".join(lines)


def follow(job_id: str, quiet: bool = False, poll_s: float = 0.5) -> dict[str, Any]:
    """Live progress on stderr (a bar, one line per epoch, the job's events) until the job
    ends; returns its summary."""

    from engine.training.trainer import format_epoch

    job_id = api.get_job(job_id, metrics=False, events=False).id
    bar = None if quiet else tqdm(total=1000, desc=job_id, unit="", file=sys.stderr,
                                  bar_format="{desc} |{bar}| {percentage:3.0f}%{postfix}")
    last_event, epochs_seen = 0, 0
    try:
        while True:
            job = api.get_job(job_id, metrics=False, events=False)
            events = api.job_events(job_id, after_id=last_event)
            metrics = api.job_metrics(job_id)
            if bar is not None:
                for m in metrics[epochs_seen:]:
                    tqdm.write("  " + format_epoch(m), file=sys.stderr)
                for e in events:
                    tqdm.write(f"{time.strftime('%H:%M:%S', time.localtime(e['time']))} "
                               f"{e['kind']}" + (f": {e['message']}" if e["message"] else ""),
                               file=sys.stderr)
                p = job.progress or {}
                bar.n = round(1000 * (job.fraction or 0))
                post = [job.status]
                if p.get("epochs"):
                    post.append(f"epoch {min(p['epoch'] + 1, p['epochs'])}/{p['epochs']}")
                if p.get("loss") is not None:
                    post.append(f"loss {p['loss']:.4f}")
                if p.get("images_per_s"):
                    post.append(f"{p['images_per_s']:.0f} img/s")
                if job.eta_s is not None:
                    post.append(f"ETA {format_duration(job.eta_s)}")
                bar.set_postfix_str(", ".join(post))
                bar.refresh()
            last_event = events[-1]["id"] if events else last_event
            epochs_seen = len(metrics)
            if job.status in ENDED:
                return _summary(job)
            time.sleep(poll_s)
    finally:
        if bar is not None:
            bar.close()
