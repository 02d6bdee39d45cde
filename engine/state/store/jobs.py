"""Jobs, their per-epoch metrics, events and the evaluations of their checkpoints."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.state.store.schema import where

_JOB_JSON = ("config", "progress", "result")


@dataclass(frozen=True)
class Job:
    """One row of the jobs table, typed. A job's config, progress and result are JSON in the
    database and dicts here; cancel_requested and resume are booleans.

    The product reads attributes. It also reads as the mapping it replaced (`job["status"]`,
    `job.get("sweep")`, `dict(job)`): the fair-share order and `epoch_position` take any
    mapping (a benchmark's or a test's partial rows too), and tests compare rows."""

    id: str
    config: dict[str, Any]
    created: float
    queued: float
    name: str = ""
    owner: str | None = None
    status: str = "queued"
    device: str = "auto"
    assigned_device: str | None = None
    started: float | None = None
    finished: float | None = None
    heartbeat: float | None = None
    pid: int | None = None
    progress: dict[str, Any] | None = None
    cancel_requested: bool = False
    resume: bool = False
    attempts: int = 0
    reason: str | None = None
    message: str | None = None
    result: dict[str, Any] | None = None
    parent: str | None = None
    sweep: str | None = None
    kind: str = "train"
    priority: int = 0

    # The mapping view reads the dataclass's own fields, so a subclass that adds fields (the
    # API's LiveJob) reads as its whole self.
    def __getitem__(self, key: str) -> Any:
        if key in self.__dataclass_fields__:
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.__dataclass_fields__ else default

    def __contains__(self, key: object) -> bool:
        return key in self.__dataclass_fields__

    def keys(self) -> tuple[str, ...]:
        return tuple(self.__dataclass_fields__)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dataclass_fields__)

    def to_dict(self) -> dict[str, Any]:
        """The job as a plain dict (JSON output, copies that callers change)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def replace(self, **changes: Any) -> Job:
        return dataclasses.replace(self, **changes)


_JOB_FIELDS = tuple(f.name for f in dataclasses.fields(Job))
_JOB_COLUMNS = frozenset(_JOB_FIELDS)
_METRIC_COLUMNS = ("train_loss", "val_loss", "val_accuracy", "val_top5", "lr", "images_per_s",
                   "epoch_time")


def _encode_job(fields: dict[str, Any]) -> dict[str, Any]:
    bad = set(fields) - _JOB_COLUMNS
    if bad:
        raise KeyError(f"unknown job columns: {', '.join(sorted(bad))}")
    return {k: json.dumps(v) if k in _JOB_JSON and v is not None else v
            for k, v in fields.items()}


def _job_row(row: sqlite3.Row) -> Job:
    d = dict(row)
    for k in _JOB_JSON:
        if d.get(k) is not None:
            d[k] = json.loads(d[k])
    d["cancel_requested"] = bool(d["cancel_requested"])
    d["resume"] = bool(d["resume"])
    return Job(**d)


def insert_job(conn: sqlite3.Connection, job: dict[str, Any] | Job) -> None:
    enc = _encode_job(job.to_dict() if isinstance(job, Job) else job)
    cols = ", ".join(enc)
    conn.execute(f"INSERT INTO jobs ({cols}) VALUES ({', '.join('?' * len(enc))})",
                 tuple(enc.values()))


def get_job(conn: sqlite3.Connection, id: str) -> Job | None:
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (id,)).fetchone()
    return _job_row(row) if row else None


def list_jobs(conn: sqlite3.Connection, owner: str | None = None,
              statuses: tuple[str, ...] | list[str] | None = None, sweep: str | None = None,
              order: str = "created DESC", limit: int | None = None,
              kind: str | None = None, parent: str | None = None) -> list[Job]:
    """Jobs filtered by owner, statuses, sweep, kind ("train" or "task") and parent job;
    order is one of a few fixed orderings."""
    orders = {"created DESC": "created DESC, rowid DESC", "queue": "queued, rowid"}
    clause, args = where({"kind": kind, "parent": parent, "owner": owner, "sweep": sweep},
                         statuses)
    sql = "SELECT * FROM jobs" + clause
    sql += f" ORDER BY {orders[order]}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_job_row(r) for r in conn.execute(sql, args)]


def update_job(conn: sqlite3.Connection, id: str, only_if_status: tuple[str, ...] | None = None,
               **fields: Any) -> bool:
    """Set columns of a job; with only_if_status, only while the job is in one of them (a
    compare-and-set, so the scheduler, workers and users never overwrite each other's moves)."""
    enc = _encode_job(fields)
    sql = f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in enc)} WHERE id = ?"
    args = [*enc.values(), id]
    if only_if_status:
        sql += f" AND status IN ({', '.join('?' * len(only_if_status))})"
        args.extend(only_if_status)
    return conn.execute(sql, args).rowcount > 0


def delete_job(conn: sqlite3.Connection, id: str) -> bool:
    return conn.execute("DELETE FROM jobs WHERE id = ?", (id,)).rowcount > 0


def count_jobs(conn: sqlite3.Connection, statuses: tuple[str, ...]) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN "
                        f"({', '.join('?' * len(statuses))})", statuses).fetchone()[0]


# --- metrics and events -----------------------------------------------------------------------


def put_metrics(conn: sqlite3.Connection, job: str, metrics: dict[str, Any]) -> None:
    """One row per epoch; a resumed run that repeats an epoch replaces its row."""
    conn.execute(
        f"INSERT OR REPLACE INTO metrics (job, epoch, time, {', '.join(_METRIC_COLUMNS)}, data) "
        f"VALUES (?, ?, ?, {', '.join('?' * len(_METRIC_COLUMNS))}, ?)",
        (job, int(metrics["epoch"]), time.time(), *(metrics.get(k) for k in _METRIC_COLUMNS),
         json.dumps(metrics)))


def get_metrics(conn: sqlite3.Connection, job: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT data FROM metrics WHERE job = ? ORDER BY epoch", (job,))
    return [json.loads(r[0]) for r in rows]


def get_metrics_of(conn: sqlite3.Connection, jobs: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Metrics rows of several jobs in one query: job id -> rows by epoch (every id a key)."""
    out: dict[str, list[dict[str, Any]]] = {j: [] for j in jobs}
    for start in range(0, len(jobs), 500):  # SQLite's bound-parameter limit
        part = jobs[start:start + 500]
        rows = conn.execute(f"SELECT job, data FROM metrics WHERE job IN "
                            f"({', '.join('?' * len(part))}) ORDER BY job, epoch", part)
        for job, data in rows:
            out[job].append(json.loads(data))
    return out


def put_evaluation(conn: sqlite3.Connection, job: str, summary: dict[str, Any]) -> None:
    """A checkpoint's evaluation on a split; evaluating it again replaces the row."""
    conn.execute(
        "INSERT OR REPLACE INTO evaluations (job, checkpoint, split, created, epoch, images,"
        " accuracy, top5, loss, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (job, summary["checkpoint"], summary["split"], time.time(), summary.get("epoch"),
         summary["images"], summary["accuracy"], summary.get("top5"), summary.get("loss"),
         json.dumps(summary)))


def get_evaluations(conn: sqlite3.Connection, job: str) -> list[dict[str, Any]]:
    """A job's evaluations, newest first, each the full summary plus when it was made."""
    rows = conn.execute("SELECT created, data FROM evaluations WHERE job = ? ORDER BY created"
                        " DESC", (job,))
    return [{**json.loads(r["data"]), "created": r["created"]} for r in rows]


def add_event(conn: sqlite3.Connection, job: str | None, kind: str, message: str = "") -> None:
    conn.execute("INSERT INTO events (job, time, kind, message) VALUES (?, ?, ?, ?)",
                 (job, time.time(), kind, message))


def get_events(conn: sqlite3.Connection, job: str, after_id: int = 0) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM events WHERE job = ? AND id > ? ORDER BY id",
                        (job, after_id))
    return [dict(r) for r in rows]


def cancel_requested(conn: sqlite3.Connection, ids: list[str]) -> dict[str, bool]:
    """job id -> whether a cancel was asked for, for the jobs that still exist."""
    out: dict[str, bool] = {}
    for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
        part = ids[start:start + 500]
        out.update((i, bool(c)) for i, c in conn.execute(
            f"SELECT id, cancel_requested FROM jobs WHERE id IN ({', '.join('?' * len(part))})",
            part))
    return out


def job_ids_starting(conn: sqlite3.Connection, prefix: str, limit: int = 2) -> list[str]:
    """Ids of jobs whose id starts with `prefix` (taken literally), at most `limit`."""
    pattern = prefix.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
    return [r[0] for r in conn.execute("SELECT id FROM jobs WHERE id LIKE ? ESCAPE '\\' LIMIT ?",
                                       (pattern, limit))]


def last_started_by_owner(conn: sqlite3.Connection) -> dict[str, float]:
    """owner ("" for none) -> when their latest job started (the queue's fair share)."""
    return {row[0] or "": row[1] for row in conn.execute(
        "SELECT owner, MAX(started) FROM jobs WHERE started IS NOT NULL GROUP BY owner")}
