"""Training jobs on a Ray cluster (`STUDIO_CLUSTER`, issue 20).

The scheduler on the head machine is a Ray driver. It submits each training job as a Ray task
asking for the job's resources (`num_cpus`, `num_gpus`), so Ray runs it on whichever node has
room. SQLite stays on the head alone: a job on a node never opens it. Instead:

- **Reports** (start, progress, epoch metrics, checkpoint files) go to a `JobChannel` actor
  (ray_channel.py) pinned to the head node; the scheduler drains it every poll and writes the
  store with the same JobSink a local worker uses. Files travel as bytes in those calls (Ray
  moves large arguments through its object store), so nothing needs storage all nodes share.
- **Cancel** goes the other way: the scheduler copies the jobs' cancel flags into the channel;
  the job asks it at most every CANCEL_POLL_S and stops at the next step with a checkpoint.
- **Data**: the job's dataset is put in the object store once per scheduler and written to a
  node-local cache workspace (`$STUDIO_NODE_CACHE`, default `<tmp>/digits-studio-node/<node>`,
  with a catalog of its own); the job's run files (config, pin, last/best checkpoints, log)
  travel with the task, so a re-queued job resumes from its last checkpoint on any node.
- **A node that dies** fails its tasks with a Ray error: the scheduler records the job
  interrupted and queues it again to resume (up to MAX_ATTEMPTS starts).

What runs on a node is in ray_node.py; this module is the head's side. Jobs that need files
only the head has (a start from another job's or a file's weights), tasks (evaluation,
export...), host work and data-parallel jobs stay local worker processes.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
import ray.exceptions
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from engine.jobs.backends.ray_channel import NAMESPACE, JobChannel
from engine.jobs.backends.ray_node import read_files, run_on_node_task, write_files
from engine.jobs.endings import check_pinned_dataset, evaluate_best, record_end
from engine.jobs.sink import JobSink
from engine.state import store
from engine.state.dataset_files import dataset_dir
from engine.state.runs import job_dir, pinned_dataset
from engine.training.start import is_path, source_job

HEARTBEAT_S = 2.0
CONNECT_TRIES = 3  # ray.init tries when the Ray Client server fails to start a session
MAX_ATTEMPTS = 3  # a job whose node keeps dying is left interrupted after this many starts
# Errors that mean the job's node or worker process went away, not that the job failed.
NODE_LOST = (ray.exceptions.NodeDiedError, ray.exceptions.WorkerCrashedError,
             ray.exceptions.ObjectLostError, ray.exceptions.OwnerDiedError,
             ray.exceptions.LocalRayletDiedError)


class _Running:
    def __init__(self, job: store.Job, attempt: int, ref, resources: dict[str, float],
                 sink, dataset: tuple[str, str]) -> None:
        self.job = job
        self.dataset = dataset
        self.attempt = attempt
        self.ref = ref
        self.resources = resources
        self.sink = sink
        self.node: dict[str, Any] | None = None  # known once the job reports its start


class RayCluster:
    """The scheduler's side of the Ray backend (see the module's docstring)."""

    def __init__(self, address: str, home: Path, conn, cpus_per_job: int,
                 log: Callable[[str], None]) -> None:
        self.home = Path(home)
        self.conn = conn
        self.cpus_per_job = cpus_per_job
        self.log = log
        _check_reachable(address)
        try:
            _connect(address, log)
        except (ConnectionError, RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RuntimeError(f"could not connect to the Ray cluster at {address}: "
                               f"{first}") from None
        self.head = ray.get_runtime_context().get_node_id()
        name = "channel-" + hashlib.sha1(str(self.home.resolve()).encode()).hexdigest()[:12]
        self.channel = JobChannel.options(
            name=name, get_if_exists=True, num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(self.head, soft=False)).remote()
        self.jobs: dict[str, _Running] = {}
        self.datasets: dict[tuple[str, str], Any] = {}  # (id, sha256) -> ObjectRef of files
        self._cancel_sent: set[str] = set()
        self._beat = 0.0
        total = ray.cluster_resources()
        alive = sum(bool(n.get("Alive")) for n in ray.nodes())
        log(f"Ray cluster at {address}: {alive} node(s), "
            f"{total.get('CPU', 0):g} CPU(s), {total.get('GPU', 0):g} GPU(s)")

    @property
    def running(self) -> int:
        return len(self.jobs)

    def close(self) -> None:
        if self.jobs:
            self.log(f"{len(self.jobs)} job(s) on the Ray cluster end with this scheduler; the "
                     "next one re-queues them to resume from their last checkpoint")
        with contextlib.suppress(Exception):
            ray.shutdown()

    # -- what runs where ------------------------------------------------------------------

    def takes(self, job: store.Job) -> bool:
        if job.kind == "task" or job.device == "host":
            return False
        # One Ray task is one process on one device: data-parallel jobs over several devices
        # (issue 20 item 1, `--devices N` or `cuda:0,1`) stay with the local launcher.
        if "," in job.device or str(job.config.get("devices") or 1) not in ("1", "0"):
            return False
        init_from = (job.config.get("init_from") or "").strip()
        return not (init_from and (source_job(init_from) or is_path(init_from)))

    def _resources(self, job: store.Job) -> dict[str, float] | None:
        """{"CPU": n, "GPU": g} the job asks for, None to wait; ValueError if the cluster
        can never run it."""
        total = ray.cluster_resources()
        free = self._free(total)
        gpu = {"CPU": 1.0, "GPU": 1.0}
        cpu = {"CPU": float(self.cpus_per_job), "GPU": 0.0}
        requested, precision = job.device, job.config.get("precision", "fp32")
        if requested == "auto" and free["GPU"] >= 1 and free["CPU"] >= 1:
            return gpu
        if requested != "cpu" and (requested != "auto" or precision != "fp32"):
            if not total.get("GPU"):
                raise ValueError(f"device {requested!r}"
                                 + (f" with {precision}" if precision != "fp32" else "")
                                 + " needs a GPU; the Ray cluster has none")
            return gpu if free["GPU"] >= 1 and free["CPU"] >= 1 else None
        if total.get("CPU", 0) < cpu["CPU"]:
            raise ValueError(f"the job asks for {cpu['CPU']:g} CPUs (cluster_cpus) and the "
                             f"Ray cluster has {total.get('CPU', 0):g} in all")
        return cpu if free["CPU"] >= cpu["CPU"] else None

    def _free(self, total: dict[str, float]) -> dict[str, float]:
        """Room now: Ray's view, less what our jobs hold or are about to take (Ray's view of
        a task just submitted lags)."""
        available = ray.available_resources()
        ours = collections.Counter()
        waiting = collections.Counter()
        for r in self.jobs.values():
            ours.update(r.resources)
            if r.node is None:
                waiting.update(r.resources)
        return {k: min(available.get(k, 0.0) - waiting[k], total.get(k, 0.0) - ours[k])
                for k in ("CPU", "GPU")}

    # -- start ----------------------------------------------------------------------------

    def start(self, job: store.Job) -> bool:
        from engine.datasets import DatasetError

        try:
            resources = self._resources(job)
        except ValueError as e:
            self._fail_queued(job, "device", str(e))
            return False
        if resources is None:
            return False
        run_dir = job_dir(job.id, self.home)
        try:
            dataset = self._dataset(job)
            files = read_files(run_dir, recursive=False) if run_dir.exists() else {}
        except (DatasetError, OSError) as e:
            self._fail_queued(job, "config", str(e))
            return False
        now = time.time()
        device = "ray:cuda" if resources["GPU"] else "ray:cpu"
        with store.transaction(self.conn):
            claimed = store.update_job(
                self.conn, job.id, only_if_status=("queued",), status="running",
                assigned_device=device, started=now, finished=None, heartbeat=now, pid=None,
                attempts=job.attempts + 1, reason=None, message=None)
        if not claimed:
            return False
        job = store.get_job(self.conn, job.id)
        attempt = job.attempts
        options: dict[str, Any] = {"num_cpus": resources["CPU"], "max_retries": 0,
                                   "name": f"digits-studio job {job.id}"}
        if resources["GPU"]:
            options["num_gpus"] = resources["GPU"]
        ref = run_on_node_task.options(**options).remote(
            job, attempt, files, dataset, self.channel, int(resources["CPU"]))
        self.jobs[job.id] = _Running(job, attempt, ref, resources,
                                        JobSink(self.conn, job.id), dataset["key"])
        what = f"{resources['CPU']:g} CPU" + (", 1 GPU" if resources["GPU"] else "")
        verb = "resumed" if job.resume else "started"
        with store.transaction(self.conn):
            store.add_event(self.conn, job.id, "started",
                            f"{verb} on the Ray cluster ({what}); Ray picks the node")
        self.log(f"job {job.id} {verb} on the Ray cluster ({what})")
        return True

    def _dataset(self, job: store.Job) -> dict[str, Any]:
        """The job's dataset row and its files in the object store (put once per scheduler,
        nested in a list so a node fetches them only when its cache lacks them)."""
        from engine.datasets import DatasetError

        check_pinned_dataset(job.id, job.config["dataset"], self.home)
        pin = pinned_dataset(job.id, self.home)
        row = store.get_dataset(self.conn, pin["id"] if pin else job.config["dataset"])
        if row is None:
            raise DatasetError(f"no dataset named {job.config['dataset']!r}")
        key = (row["id"], str(row["manifest"].get("sha256")))
        if key not in self.datasets:
            files = read_files(dataset_dir(self.home, row["id"]), recursive=True)
            self.datasets[key] = ray.put(files)
        return {"row": row, "files": [self.datasets[key]], "key": key}

    def _fail_queued(self, job: store.Job, reason: str, message: str) -> None:
        with store.transaction(self.conn):
            if store.update_job(self.conn, job.id, only_if_status=("queued",),
                                status="failed", finished=time.time(), reason=reason,
                                message=message):
                store.add_event(self.conn, job.id, "failed", message)

    # -- watch ----------------------------------------------------------------------------

    def poll(self) -> None:
        if not self.jobs:
            return
        refs = {r.ref: job_id for job_id, r in self.jobs.items()}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        try:
            self._apply(ray.get(self.channel.drain.remote(), timeout=60))
        except ray.exceptions.RayError as e:  # the head's channel or the cluster is gone
            self.log(f"could not read the jobs' reports from the Ray cluster: {_first_line(e)}")
            return
        for ref in ready:
            self._ended(refs[ref], ref)
        self._pass_cancels()
        self._heartbeat()

    def _apply(self, messages: list[tuple[str, int, str, Any]]) -> None:
        for job_id, attempt, kind, payload in messages:
            run = self.jobs.get(job_id)
            if run is None or run.attempt != attempt:
                continue  # from an attempt that has since ended (its node died)
            try:
                if kind == "start":
                    run.node = payload.pop("node")
                    run.sink.on_start(payload)
                    store.add_event(self.conn, job_id, "node",
                                    f"running on node {run.node['ip']} "
                                    f"({run.node['id'][:8]}, pid {run.node['pid']})")
                elif kind == "progress":
                    run.sink.on_progress(payload)
                elif kind == "epoch":
                    run.sink.on_epoch(payload)
                elif kind == "files":
                    write_files(job_dir(job_id, self.home), payload)
            except (OSError, ValueError) as e:
                self.log(f"job {job_id}: a {kind} report was not recorded: {e}")

    def _ended(self, job_id: str, ref) -> None:
        run = self.jobs.pop(job_id)
        if all(r.dataset != run.dataset for r in self.jobs.values()):
            self.datasets.pop(run.dataset, None)  # nodes keep their copies; the store frees it
        try:
            end = ray.get(ref)
        except NODE_LOST as e:
            self._requeue(run, _first_line(e))
            return
        except ray.exceptions.RayError as e:
            message = f"the job's Ray task failed: {_first_line(e)}"
            record_end(self.conn, job_id, "failed", "error", message, None)
            self.log(f"job {job_id} failed: {message}")
            return
        have = {m["epoch"] for m in store.get_metrics(self.conn, job_id)}
        for m in end["history"]:  # epochs whose report the channel lost (none, normally)
            if m["epoch"] not in have:
                store.put_metrics(self.conn, job_id, m)
        record_end(self.conn, job_id, end["status"], end["reason"], end["message"],
                    end["result"])
        self.log(f"job {job_id} ended on node {end['node']['ip']} "
                 f"({end['node']['id'][:8]}): {end['status']}")
        if end["status"] == "done":
            evaluate_best(run.job, self.home)

    def _requeue(self, run: _Running, why: str) -> None:
        """The job's node (or its worker process) died: back to the queue, to resume from the
        last checkpoint the head received, unless it has been started MAX_ATTEMPTS times."""
        job_id = run.job.id
        where = f"node {run.node['ip']} ({run.node['id'][:8]})" if run.node else "its node"
        message = f"lost {where}: {why}"
        again = run.attempt < MAX_ATTEMPTS
        with store.transaction(self.conn):
            if not store.update_job(self.conn, job_id, only_if_status=("running",),
                                    status="interrupted", finished=time.time(),
                                    reason="worker_died", message=message):
                return
            store.add_event(self.conn, job_id, "interrupted", message)
            if again:
                store.update_job(self.conn, job_id, status="queued", resume=True,
                                 queued=time.time(), finished=None)
                store.add_event(self.conn, job_id, "requeued",
                                "re-queued to resume from its last checkpoint on another node")
        self.log(f"job {job_id} {message}; " + ("re-queued" if again else
                                               f"left interrupted after {run.attempt} starts"))

    def _pass_cancels(self) -> None:
        ids = list(self.jobs)
        rows = store.cancel_requested(self.conn, ids)
        # A deleted row means nobody wants the run any more.
        cancel = {i for i in ids if i not in rows or rows[i]}
        if cancel != self._cancel_sent:
            self.channel.set_cancel.remote(sorted(cancel))
            self._cancel_sent = cancel

    def _heartbeat(self) -> None:
        """Jobs waiting for their node's first report (or between reports) still beat."""
        now = time.time()
        if now - self._beat < HEARTBEAT_S:
            return
        self._beat = now
        with store.transaction(self.conn):
            for job_id in self.jobs:
                store.update_job(self.conn, job_id, only_if_status=("running",),
                                 heartbeat=now)


def _connect(address: str, log: Callable[[str], None], tries: int = CONNECT_TRIES,
             pause_s: float = 2.0) -> None:
    """ray.init, tried again when the Ray Client server fails a connection while it starts the
    client's own server process ("Initialization failure from server"): it does that when the
    head is busy (seen once in five test runs on 2 loaded cores), and the next try succeeds."""
    for attempt in range(1, tries + 1):
        try:
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False,
                     logging_level="warning", configure_logging=False)
            return
        except ConnectionError as e:
            if "Initialization failure" not in str(e) or attempt == tries:
                raise
            log(f"the Ray cluster at {address} failed to start this client's session "
                f"(try {attempt} of {tries}); trying again")
            with contextlib.suppress(Exception):
                ray.shutdown()
            time.sleep(pause_s)


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """RuntimeError (one line) at once when nothing listens at HOST:PORT: ray.init would
    retry for minutes first."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise RuntimeError(f"could not connect to the Ray cluster at {address}: nothing "
                           f"answers there ({e.strerror or e})") from None


def _first_line(e: BaseException) -> str:
    """The first sentence of an error, under its type's name (Ray's run to paragraphs)."""
    text = " ".join(str(e).split())
    sentence = text.split(". ")[0].rstrip(".")[:300] if text else ""
    return f"{type(e).__name__}: {sentence}" if sentence else type(e).__name__
