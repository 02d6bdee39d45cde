"""The scheduler: one process per workspace that starts queued jobs on free devices, one
worker process each, watches them and records the end of those that die without saying so.

Single instance: it holds an exclusive flock on `<home>/scheduler.lock` for its lifetime (the
kernel drops it when the process dies, even by kill -9). `ensure_scheduler` starts one on
demand (`python -m engine.jobs --on-demand`: it exits after idle_exit_s with nothing to do);
`python -m engine scheduler` hosts one that stays. A restarted scheduler adopts workers that
still run (by pid) and re-queues, to resume from their last checkpoint, the jobs whose worker
died while no scheduler watched.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.devices import device_units, parse_device
from engine.jobs.backends import ClusterBackend, open_cluster
from engine.jobs.fair_share import queue_now
from engine.jobs.gpu_stats import GpuSampler
from engine.jobs.placement import job_request, pick_many
from engine.jobs.settings import (
    SchedulerSettings,
    add_scheduler_options,
    given_settings,
    load_settings,
    process_env,
    python,
    settings_args,
)
from engine.processes import describe_exit, pid_alive
from engine.state import store
from engine.state.runs import job_dir
from engine.state.scheduler_lock import scheduler_alive, take_lock
from engine.state.store import Job
from engine.state.workspace import atomic_write_json, read_json, studio_home
from engine.threads import admits, shares, thread_env, write_share

INFO_FILE = "scheduler.json"
LOG_FILE = "scheduler.log"
START_LOCK_FILE = "scheduler.start.lock"


def scheduler_status(home: str | os.PathLike | None = None) -> dict[str, Any]:
    """{"alive": bool, "pid", "started", "on_demand", "settings", "devices"} of the last one."""
    path = studio_home(home) / INFO_FILE
    info: dict[str, Any] = {}
    if path.exists():
        try:
            info = read_json(path)
        except ValueError:
            info = {}
    return {**info, "alive": scheduler_alive(home)}


def ensure_scheduler(home: str | os.PathLike | None = None, wait_s: float = 20.0,
                     **settings: Any) -> int:
    """Start a scheduler for the workspace unless one runs; returns its pid. Settings
    (cpu_slots, cpu_threads, threads_per_job, task_threads, poll_s, idle_exit_s, gpus) apply
    only to a scheduler started here. Callers that race (parallel submits) take turns on a
    start lock, so one scheduler is spawned and the others find it running."""
    home = studio_home(home).resolve()
    status = scheduler_status(home)
    if status["alive"] and pid_alive(status.get("pid")):
        return status["pid"]
    deadline = time.monotonic() + wait_s
    with _start_turn(home, deadline):
        return _start(home, settings, deadline)


@contextlib.contextmanager
def _start_turn(home: Path, deadline: float) -> Iterator[None]:
    """Hold `<home>/scheduler.start.lock` (blocking until deadline) while starting one."""
    fd = os.open(home / START_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RuntimeError("the job scheduler did not start: another process kept "
                                       "starting one for too long") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _start(home: Path, settings: dict[str, Any], deadline: float) -> int:
    status = scheduler_status(home)
    if status["alive"] and pid_alive(status.get("pid")):
        return status["pid"]  # the caller before us started it
    args = [python(), "-m", "engine.jobs", "--on-demand", *settings_args(settings)]
    proc = _spawn(args, home)
    spawned = 1
    while time.monotonic() < deadline:
        status = scheduler_status(home)
        if status["alive"] and pid_alive(status.get("pid"), "engine"):
            return status["pid"]
        code = proc.poll()
        if code not in (None, 0, 1):
            break  # it failed for a reason of its own: its log says which
        if code is not None and not status["alive"] and spawned < 3:
            # Ours lost the lock race to a `python -m engine scheduler` started by hand (exit 1)
            # and that one is already gone again (or ours exited idle): start one more.
            proc = _spawn(args, home)
            spawned += 1
        # Otherwise another scheduler won the lock: wait for it to write scheduler.json (it
        # does so right after locking).
        time.sleep(0.05)
    tail = (home / LOG_FILE).read_text(errors="replace").splitlines()[-5:]
    raise RuntimeError("the job scheduler did not start: " + " | ".join(tail))


def _spawn(args: list[str], home: Path) -> subprocess.Popen:
    with open(home / LOG_FILE, "ab") as log:
        return subprocess.Popen(args, cwd=home, env=process_env(home), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


class Scheduler:
    def __init__(self, home: str | os.PathLike | None, settings: SchedulerSettings,
                 on_demand: bool) -> None:
        self.home = studio_home(home).resolve()
        self.settings = settings
        self.on_demand = on_demand
        self.children: dict[str, subprocess.Popen] = {}  # job id -> worker we started
        self.adopted: dict[str, int] = {}  # job id -> pid of a worker a previous one started
        self.gpus = 0
        self.shares: dict[str, int] = {}  # CPU job id -> the threads it was last given
        self.stopping = False
        self.lock_fd: int | None = None
        self.cluster: ClusterBackend | None = None  # STUDIO_CLUSTER: training jobs go there
        self.sample_gpus = GpuSampler(self.home)  # the dashboard's GPU panel reads its file

    # -- lifecycle --------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped (or idle, on demand). 0, or 1 if another scheduler runs."""
        self.lock_fd = take_lock(self.home)
        if self.lock_fd is None:
            self.log("another scheduler holds the lock; exiting")
            return 1
        # Say who holds the lock at once: callers of ensure_scheduler wait for this file, and
        # counting GPUs below imports torch, which takes seconds.
        atomic_write_json(self.home / INFO_FILE, {
            "pid": os.getpid(), "started": time.time(), "on_demand": self.on_demand,
            "settings": self.settings.to_dict(), "devices": None})
        self.conn = store.connect(self.home)
        self.gpus = self._count_gpus()
        atomic_write_json(self.home / INFO_FILE, {
            "pid": os.getpid(), "started": time.time(), "on_demand": self.on_demand,
            "settings": self.settings.to_dict(),
            "devices": ["cpu"] * (self.settings.cpu_slots != 0)
            + [f"cuda:{i}" for i in range(self.gpus)]})
        slots = self.settings.cpu_slots
        self.log(f"scheduler {os.getpid()} up: cpu slots "
                 f"{'by thread budget' if slots is None else slots}, "
                 f"cpu threads {self.settings.thread_budget}, "
                 f"{self.gpus} GPU(s), {'on demand' if self.on_demand else 'hosted'}")
        if self.settings.cluster:  # before our signal handlers: ray.init sets its own
            try:
                self.cluster = open_cluster(self.settings.cluster, self.home, self.conn,
                                            self.settings.cluster_cpus, self.log)
            except RuntimeError as e:
                self.log(str(e))
                return 2
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.recover()
        idle_since = time.monotonic()
        while not self.stopping:
            self.tick()
            busy = (self.children or self.adopted or (self.cluster and self.cluster.running)
                    or store.count_jobs(self.conn, ("queued",)))
            now = time.monotonic()
            if busy:
                idle_since = now
            elif self.on_demand and now - idle_since >= self.settings.idle_exit_s:
                if not self._hand_over():
                    break
                idle_since = now
            time.sleep(self.settings.poll_s)
        self.log(f"scheduler {os.getpid()} exits; running workers keep going and are adopted "
                 "by the next scheduler")
        if self.cluster is not None:
            self.cluster.close()
        return 0

    def _hand_over(self) -> bool:
        """Release the lock, then look once more: a job queued by someone who saw the lock
        still held would wait forever. True if we keep serving."""
        fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
        os.close(self.lock_fd)
        self.lock_fd = None
        if store.count_jobs(self.conn, ("queued",)):
            self.lock_fd = take_lock(self.home)
        return self.lock_fd is not None

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def log(self, msg: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}", flush=True)

    def _count_gpus(self) -> int:
        if self.settings.gpus is not None:
            return self.settings.gpus
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0

    # -- one pass ---------------------------------------------------------------------------

    def tick(self) -> None:
        if self.cluster is not None:
            self.cluster.poll()
        self.reap()
        self.start_queued()
        self.rebalance()
        self.sample_gpus()

    def _thread_rules(self) -> dict[str, Any]:
        s = self.settings
        return {"cpu_threads": s.thread_budget, "task_threads": s.task_threads,
                "threads_per_job": s.threads_per_job}

    def rebalance(self) -> None:
        """Give each running CPU training its share of the thread budget now (tasks keep
        theirs): written to its job directory, which its worker reads between steps."""
        running = [j for j in store.list_jobs(self.conn, statuses=("running",), order="queue")
                   if device_units(j.assigned_device)[:1] == ["cpu"]]
        running.sort(key=lambda j: j.started or 0)
        # A job of N CPU processes holds N places; each of its ranks gets the least of them.
        sizes = [len(device_units(j.assigned_device)) for j in running]
        given = shares([_kind(j) for j, n in zip(running, sizes, strict=True)
                        for _ in range(n)], **self._thread_rules())
        given = [min(given[sum(sizes[:i]):sum(sizes[:i + 1])]) for i in range(len(sizes))]
        for job, threads in zip(running, given, strict=True):
            if self.shares.get(job.id) == threads or _kind(job) == "task":
                self.shares.setdefault(job.id, threads)
                continue
            try:
                write_share(job_dir(job.id, self.home), threads)
            except OSError as e:
                self.log(f"could not give job {job.id} its thread share: {e}")
                continue
            self.shares[job.id] = threads
        alive = {j.id for j in running}
        self.shares = {k: v for k, v in self.shares.items() if k in alive}

    def recover(self) -> None:
        """Jobs left running by a previous scheduler: adopt live workers; re-queue the others
        to resume from their last checkpoint."""
        for job in store.list_jobs(self.conn, statuses=("running",)):
            pid = job.pid
            if pid_alive(pid, _worker_needle(job.id)):
                self.adopted[job.id] = pid
                store.add_event(self.conn, job.id, "adopted",
                                f"a restarted scheduler watches worker {pid}")
                self.log(f"adopted job {job.id} (worker {pid})")
                continue
            with store.transaction(self.conn):
                if store.update_job(self.conn, job.id, only_if_status=("running",),
                                    status="interrupted", finished=time.time(),
                                    reason="worker_died", message=describe_exit(None)):
                    store.add_event(self.conn, job.id, "interrupted", describe_exit(None))
                    store.update_job(self.conn, job.id, status="queued", resume=True,
                                     queued=time.time(), finished=None)
                    store.add_event(self.conn, job.id, "recovered",
                                    "re-queued to resume from its last checkpoint")
            self.log(f"recovered job {job.id}: re-queued to resume")

    def reap(self) -> None:
        for job_id, proc in list(self.children.items()):
            code = proc.poll()
            if code is not None:
                del self.children[job_id]
                self._ended(job_id, code)
        for job_id, pid in list(self.adopted.items()):
            if not pid_alive(pid, _worker_needle(job_id)):
                del self.adopted[job_id]
                self._ended(job_id, None)

    def _ended(self, job_id: str, code: int | None) -> None:
        """A worker is gone. If it recorded no end, its job was interrupted; its checkpoints
        stay, so resume continues from the last one."""
        job = store.get_job(self.conn, job_id)
        if job is None or job.status != "running":
            self.log(f"job {job_id} ended: {job.status if job else 'deleted'}")
            return
        message = describe_exit(code)
        tail = _tail(job_dir(job_id, self.home) / "worker.log", 3) if code and code > 0 else ""
        if tail:
            message += f": {tail}"
        with store.transaction(self.conn):
            if store.update_job(self.conn, job_id, only_if_status=("running",),
                                status="interrupted", finished=time.time(),
                                reason="worker_died", message=message):
                store.add_event(self.conn, job_id, "interrupted", message)
        self.log(f"job {job_id} interrupted: {message}")

    def start_queued(self) -> None:
        """In the queue's order (engine/jobs/fair_share: fair share across users, or first in,
        first out; jobs a user's running-jobs quota holds back wait); a job waiting for a busy
        device does not hold back a later one that can start elsewhere."""
        queued = [p.job for p in queue_now(self.conn, self.settings.queue_order)
                  if p.may_start]
        if not queued:
            return
        usage: collections.Counter = collections.Counter()
        for j in store.list_jobs(self.conn, statuses=("running",)):
            for unit in device_units(j.assigned_device):  # every device of a DDP job
                usage[unit] += 1
            if j.assigned_device == "cpu" and _kind(j) == "task":
                usage["cpu:task"] += 1
        for job in queued:
            if self.cluster is not None and self.cluster.takes(job):
                self.cluster.start(job)  # when the cluster has room; else it waits queued
                continue
            try:
                device = self._pick(job, usage)
            except ValueError as e:
                with store.transaction(self.conn):
                    if store.update_job(self.conn, job.id, only_if_status=("queued",),
                                        status="failed", finished=time.time(),
                                        reason="device", message=str(e)):
                        store.add_event(self.conn, job.id, "failed", str(e))
                continue
            if device is not None and self._launch(job, device, usage):
                for unit in device_units(device):
                    usage[unit] += 1
                if device == "cpu" and _kind(job) == "task":
                    usage["cpu:task"] += 1

    def _pick(self, job: Job, usage: collections.Counter) -> str | None:
        """A free device for the job, None to wait, ValueError if it can never run here."""
        requested = job.device
        if requested == "host":  # light host work (a dataset build): no training slot
            return "host"
        request = job_request(job)
        if request.count > 1:  # data parallel: all of its devices at once, or wait
            return pick_many(request, self.gpus, usage, _cpu_kinds(usage), self.settings,
                             job.config.get("precision", "fp32"))
        gpus = [f"cuda:{i}" for i in range(self.gpus)]
        cpu_free = admits(_cpu_kinds(usage), _kind(job), cpu_slots=self.settings.cpu_slots,
                          **self._thread_rules())
        if requested == "auto":
            free = [g for g in gpus if not usage[g]]
            if free:
                return free[0]
            if job.config.get("precision", "fp32") != "fp32":
                if not gpus:
                    raise ValueError("mixed precision (bf16/fp16) needs a GPU; this machine "
                                     "has none")
                return None
            if self.settings.cpu_slots == 0 and not gpus:
                raise ValueError("no device takes jobs: no GPU and cpu_slots is 0")
            return "cpu" if cpu_free else None
        if requested == "cpu":
            if self.settings.cpu_slots == 0:
                raise ValueError("the scheduler is set to run no jobs on the CPU (cpu_slots 0)")
            return "cpu" if cpu_free else None
        name = parse_device(requested)
        if name not in gpus:
            raise ValueError(f"device {requested!r} does not exist here: this machine has "
                             f"{self.gpus} GPU(s)")
        return None if usage[name] else name

    def _launch(self, job: Job, device: str, usage: collections.Counter | None = None
                ) -> bool:
        now = time.time()
        with store.transaction(self.conn):
            claimed = store.update_job(
                self.conn, job.id, only_if_status=("queued",), status="running",
                assigned_device=device, started=now, finished=None, heartbeat=now, pid=None,
                attempts=job.attempts + 1, reason=None, message=None)
        if not claimed:  # cancelled or deleted meanwhile
            return False
        run_dir = job_dir(job.id, self.home)
        run_dir.mkdir(parents=True, exist_ok=True)
        extra = {}
        units = device_units(device)
        if units[0] == "cpu":
            # Its share beside the CPU jobs already running (tasks keep theirs to the end);
            # each rank of a job of several CPU processes gets the least of their shares.
            kinds = [*_cpu_kinds(usage or collections.Counter()), *[_kind(job)] * len(units)]
            threads = min(shares(kinds, **self._thread_rules())[-len(units):])
            extra = thread_env(threads)
            self.shares[job.id] = threads
            if _kind(job) != "task":
                write_share(run_dir, threads)
        try:
            with open(run_dir / "worker.log", "ab") as log:
                proc = subprocess.Popen(
                    [python(), "-m", "engine.jobs.worker", job.id], cwd=self.home,
                    env=process_env(self.home, **extra), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            message = f"could not start a worker process: {e}"
            with store.transaction(self.conn):
                store.update_job(self.conn, job.id, status="failed", finished=time.time(),
                                 reason="error", message=message)
                store.add_event(self.conn, job.id, "failed", message)
            return False
        self.children[job.id] = proc
        with store.transaction(self.conn):
            store.update_job(self.conn, job.id, only_if_status=("running",), pid=proc.pid)
            verb = "resumed" if job.resume else "started"
            store.add_event(self.conn, job.id, "started",
                            f"{verb} on {device} (worker pid {proc.pid})")
        self.log(f"job {job.id} {'resumed' if job.resume else 'started'} on {device}, "
                 f"pid {proc.pid}")
        return True


def _kind(job: Job) -> str:
    return "task" if job.kind == "task" else "train"


def _cpu_kinds(usage: collections.Counter) -> list[str]:
    """The kinds of the CPU jobs counted in `usage` (trainings first: shares do not depend
    on the order beyond who takes a remainder thread)."""
    tasks = usage["cpu:task"]
    return ["train"] * (usage["cpu"] - tasks) + ["task"] * tasks


def _worker_needle(job_id: str) -> str:
    return f"engine.jobs.worker {job_id}"


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def serve(home: str | os.PathLike | None = None, on_demand: bool = False,
          **settings: Any) -> int:
    """Run a scheduler in this process until stopped (hosted) or idle (on demand)."""
    return Scheduler(home, load_settings(home, **settings), on_demand).run()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.jobs")
    ap.add_argument("--on-demand", action="store_true", help="exit when idle")
    add_scheduler_options(ap)
    a = ap.parse_args(argv)
    return serve(on_demand=a.on_demand, **given_settings(a))
