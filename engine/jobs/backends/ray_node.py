"""What runs on a Ray node for one training job (see ray_cluster.py): a cache workspace of
the node's own (datasets from the object store, the run's files from the task), the trainer,
and reports and checkpoints sent to the head's channel. Never the head's SQLite."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray
import ray.exceptions

from engine.jobs.endings import check_pinned_dataset, failure_of, log_line, train_outcome
from engine.state import dataset_files as layout
from engine.state import store
from engine.state.integrity import SIDECAR
from engine.state.workspace import atomic_write_bytes
from engine.threads import use_threads
from engine.training.config import TrainConfig
from engine.training.sink import MetricsSink

CANCEL_POLL_S = 0.25
NODE_CACHE_ENV = "STUDIO_NODE_CACHE"


def node_cache(node_id: str) -> Path:
    """This node's cache workspace (datasets and the runs it hosts; never the head's)."""
    base = os.environ.get(NODE_CACHE_ENV) or Path(tempfile.gettempdir()) / "digits-studio-node"
    return Path(base) / node_id[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_files(root: Path, files: dict[str, bytes]) -> None:
    """Each file atomically; checksum sidecars before the checkpoints they describe (as the
    trainer writes them), so a reader never sees a new checkpoint beside its old hash."""

    for rel, data in sorted(files.items(), key=lambda kv: not kv[0].endswith(SIDECAR)):
        target = _inside(root, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)


def _inside(root: Path, rel: str) -> Path:
    """root/rel, refusing a name that would leave root."""
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()) or Path(rel).is_absolute():
        raise ValueError(f"refusing file {rel!r}: it is outside the run directory")
    return target


def read_files(root: Path, recursive: bool) -> dict[str, bytes]:
    paths = root.rglob("*") if recursive else root.iterdir()
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(paths)
            if p.is_file() and not p.name.startswith(".")}


def _materialize_dataset(home: Path, dataset: dict[str, Any]) -> None:
    """The job's dataset in this node's cache: fetched from the object store the first time,
    and listed in the node's own catalog (replacing a stale one of the same name)."""

    row = dataset["row"]
    with _locked(home / "cache.lock"):
        conn = store.connect(home)
        try:
            have = store.get_dataset(conn, row["id"])
            if have is not None and have["id"] == row["id"]:
                return
            files = ray.get(dataset["files"][0])
            target = layout.dataset_dir(home, row["id"])
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            write_files(partial, files)
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
            with store.transaction(conn):
                stale = store.get_dataset(conn, row["name"])
                if stale is not None:
                    store.delete_dataset(conn, stale["id"])
                store.add_dataset(conn, row["id"], row["name"], row["owner"], row["source"],
                                  row["manifest"])
        finally:
            conn.close()


class FileShipper:
    """The run directory's files changed since the last call (new or rewritten)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.seen = self._stats()

    def _stats(self) -> dict[str, tuple[int, int]]:
        return {p.relative_to(self.run_dir).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in self.run_dir.rglob("*") if p.is_file()}

    def changed(self) -> dict[str, bytes]:
        now = self._stats()
        files = {rel: (self.run_dir / rel).read_bytes() for rel, st in sorted(now.items())
                 if self.seen.get(rel) != st and not rel.startswith(".")}
        self.seen = now
        return files


class ChannelSink(MetricsSink):
    """The trainer's reports, sent to the head's channel. After each epoch, the checkpoints
    and log written so far go first, so the head holds the checkpoint an epoch row promises."""

    def __init__(self, channel, job_id: str, attempt: int, run_dir: Path,
                 node: dict[str, Any]) -> None:
        self.channel = channel
        self.job_id = job_id
        self.attempt = attempt
        self.node = node
        self.shipper = FileShipper(run_dir)

    def send(self, kind: str, payload: Any):
        return self.channel.report.remote(self.job_id, self.attempt, kind, payload)

    def ship(self):
        files = self.shipper.changed()
        return self.send("files", files) if files else None

    def on_start(self, info: dict[str, Any]) -> None:
        self.send("start", {**info, "node": self.node})

    def on_progress(self, progress: dict[str, Any]) -> None:
        self.send("progress", progress)

    def on_epoch(self, metrics: dict[str, Any]) -> None:
        self.ship()
        self.send("epoch", metrics)


class ChannelCancel:
    """should_stop for train(): true once the head's channel lists the job as cancelled.
    Asks at most every CANCEL_POLL_S without waiting for the answer in the training loop."""

    def __init__(self, channel, job_id: str) -> None:
        self.channel = channel
        self.job_id = job_id
        self.cancelled = False
        self._pending = None
        self._next = 0.0

    def __call__(self) -> bool:
        if self._pending is not None:
            ready, _ = ray.wait([self._pending], timeout=0)
            if ready:
                with contextlib.suppress(ray.exceptions.RayError):
                    self.cancelled = self.cancelled or bool(ray.get(ready[0]))
                self._pending = None
        now = time.monotonic()
        if self._pending is None and now >= self._next:
            self._next = now + CANCEL_POLL_S
            self._pending = self.channel.cancelled.remote(self.job_id)
        return self.cancelled


def run_on_node(job: store.Job, attempt: int, files: dict[str, bytes],
                dataset: dict[str, Any], channel, threads: int) -> dict[str, Any]:
    """One training job on this node (a Ray task): trains in the node's cache workspace,
    reports through the channel, and returns how it ended (never raises for a job's own
    failure, so the head tells those from a lost node)."""

    ctx = ray.get_runtime_context()
    node = {"id": ctx.get_node_id(), "ip": ray.util.get_node_ip_address(),
            "host": os.uname().nodename, "pid": os.getpid()}
    home = node_cache(node["id"])
    run_dir = home / "jobs" / job.id
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    write_files(run_dir, files)
    sink = ChannelSink(channel, job.id, attempt, run_dir, node)
    cancel = ChannelCancel(channel, job.id)
    history: list[dict[str, Any]] = []
    try:
        from engine.training import train

        _materialize_dataset(home, dataset)
        cfg = TrainConfig.from_dict(job.config)
        gpus = ray.get_gpu_ids()
        cfg.device = "cuda:0" if gpus else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES to its GPU
        if not gpus:
            use_threads(threads)
        check_pinned_dataset(job.id, cfg.dataset, home)
        resume = bool(job.resume) and (run_dir / "last.pt").exists()
        result = train(cfg, run_dir, sink=sink, should_stop=cancel, resume=resume, home=home)
        history = result.history
        status, reason, message, summary = train_outcome(result, cancel.cancelled, None)
    except Exception as e:  # noqa: BLE001 - every ending is reported to the head
        status, (reason, message), summary = "failed", failure_of(e), None
        if reason != "diverged":
            log_line(run_dir, f"failed ({reason}) on node {node['ip']}: {message}")
    last = sink.ship() or sink.send("files", {})
    ray.get(last)  # every report is in the channel before the head sees this task end
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"status": status, "reason": reason, "message": message, "result": summary,
            "history": history, "node": node}


run_on_node_task = ray.remote(run_on_node)
