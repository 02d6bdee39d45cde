"""Where the scheduler runs jobs besides its own machine's worker processes.

Local mode (no cluster set) is the scheduler's own subprocess workers (engine/jobs/scheduler.py)
and needs nothing beyond requirements.txt. With `STUDIO_CLUSTER` (or the `cluster` scheduler
setting) the scheduler hands training jobs to a cluster backend through this small interface;
the only one is Ray (ray_cluster.py, imported, with `ray` itself, only when a cluster is set).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from engine.state import store

_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


def check_cluster_address(address: str) -> str:
    """The address, stripped, or ValueError in one line: `ray://HOST:PORT` (Ray Client),
    `HOST:PORT` (the head's GCS address, as `ray start --head` prints it) or `auto` (the
    cluster this machine belongs to)."""
    text = address.strip()
    bare = text[len("ray://"):] if text.startswith("ray://") else text
    if text == "auto" or _HOST_PORT.match(bare):
        return text
    raise ValueError(f"STUDIO_CLUSTER must be ray://HOST:PORT, HOST:PORT or auto, not "
                     f"{address!r}")


class ClusterBackend(Protocol):
    """What the scheduler asks of a cluster. The backend records in SQLite (through the
    scheduler's connection) what it starts and how each job ends, as local workers do."""

    def takes(self, job: store.Job) -> bool:
        """True if this job runs on the cluster (else it runs as a local worker)."""

    def start(self, job: store.Job) -> bool:
        """Claim the queued job and submit it if the cluster has room now; False to wait."""

    def poll(self) -> None:
        """Record what running jobs reported, pass on cancel requests, and record the end of
        jobs that finished or whose node died (those go back to the queue to resume)."""

    @property
    def running(self) -> int:
        """Jobs submitted and not yet ended."""

    def close(self) -> None:
        """Disconnect (jobs still running end with this driver; a restarted scheduler
        re-queues them to resume)."""


def open_cluster(address: str, home: Path, conn: sqlite3.Connection, cpus_per_job: int,
                 log: Callable[[str], None]) -> ClusterBackend:
    """Connect to the cluster at `address`: RuntimeError (one line) when Ray is not installed
    or the cluster cannot be reached."""
    try:
        from engine.jobs.backends.ray_cluster import RayCluster
    except ImportError as e:
        raise RuntimeError(f"STUDIO_CLUSTER={address} needs Ray ({e}); install it with "
                           "`pip install -r requirements-cluster.txt`") from None
    return RayCluster(address, home, conn, cpus_per_job, log)
