"""The SQLite store: the one source of truth for lists and states.

This module owns the schema. Each entry of MIGRATIONS upgrades the database by one version;
`PRAGMA user_version` records how far a database has come, so old workspaces upgrade in place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.state.workspace import studio_home

MIGRATIONS: list[str] = [
    # 1: users and datasets
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        created REAL NOT NULL
    );
    CREATE TABLE datasets (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        owner TEXT,
        source TEXT NOT NULL,
        created REAL NOT NULL,
        manifest TEXT NOT NULL
    );
    """,
    # 2: training jobs, their per-epoch metrics and their events (engine/jobs)
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        owner TEXT,
        status TEXT NOT NULL DEFAULT 'queued',
        device TEXT NOT NULL DEFAULT 'auto',
        assigned_device TEXT,
        config TEXT NOT NULL,
        created REAL NOT NULL,
        queued REAL NOT NULL,
        started REAL,
        finished REAL,
        heartbeat REAL,
        pid INTEGER,
        progress TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        resume INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        reason TEXT,
        message TEXT,
        result TEXT,
        parent TEXT REFERENCES jobs(id) ON DELETE SET NULL,
        sweep TEXT
    );
    CREATE INDEX jobs_status ON jobs(status, queued);
    CREATE INDEX jobs_owner ON jobs(owner, created);
    CREATE INDEX jobs_sweep ON jobs(sweep);
    CREATE TABLE metrics (
        job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        time REAL NOT NULL,
        train_loss REAL,
        val_loss REAL,
        val_accuracy REAL,
        val_top5 REAL,
        lr REAL,
        images_per_s REAL,
        epoch_time REAL,
        data TEXT NOT NULL,
        PRIMARY KEY (job, epoch)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job TEXT REFERENCES jobs(id) ON DELETE CASCADE,
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX events_job ON events(job, id);
    """,
    # 3: probe boards: a user's own test images, scored by every experiment (engine/probes)
    """
    CREATE TABLE probe_boards (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        shared INTEGER NOT NULL DEFAULT 1,
        created REAL NOT NULL,
        UNIQUE (owner, name)
    );
    CREATE TABLE probes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        board TEXT NOT NULL REFERENCES probe_boards(id) ON DELETE CASCADE,
        image BLOB NOT NULL,
        label TEXT NOT NULL,
        polarity TEXT NOT NULL DEFAULT 'auto',
        digit INTEGER NOT NULL DEFAULT 1,
        source TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL
    );
    CREATE INDEX probes_board ON probes(board, id);
    """,
    # 4: task jobs (evaluation, classify-many, deployment) beside training jobs, and the
    # stored evaluations of checkpoints (engine/tasks, engine/evaluation)
    """
    ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'train';
    CREATE INDEX jobs_kind_parent ON jobs(kind, parent);
    CREATE TABLE evaluations (
        job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        checkpoint TEXT NOT NULL,
        split TEXT NOT NULL,
        created REAL NOT NULL,
        epoch INTEGER,
        images INTEGER NOT NULL,
        accuracy REAL NOT NULL,
        top5 REAL,
        loss REAL,
        data TEXT NOT NULL,
        PRIMARY KEY (job, checkpoint, split)
    );
    """,
    # 5: the guided lab: which job ran which of a user's lab steps (engine/lab)
    """
    CREATE TABLE lab_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        owner TEXT NOT NULL,
        step TEXT NOT NULL,
        job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        created REAL NOT NULL
    );
    CREATE INDEX lab_runs_owner ON lab_runs(owner, step, id);
    """,
    # 6: roles for a hosted class (engine/roles): instructor or student
    """
    ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'student';
    """,
    # 7: fair share and quotas (engine/jobs/fair_share, engine/quotas): a job's priority
    # among its owner's jobs, per-user limits ('*' = the class default); the class's hidden
    # probe board and each student's leaderboard entry (engine/classroom)
    """
    ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE quotas (
        user TEXT NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (user, name)
    );
    ALTER TABLE probe_boards ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE class_entries (
        owner TEXT PRIMARY KEY,
        job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        chosen REAL NOT NULL
    );
    """,
    # 8: accounts (engine/accounts): a scrypt password hash (never the password), a single
    # sign-on email, sessions issued before sessions_after are revoked; datasets shared with
    # the class or locked read-only by an instructor (engine/access)
    """
    ALTER TABLE users ADD COLUMN password_hash TEXT;
    ALTER TABLE users ADD COLUMN email TEXT;
    ALTER TABLE users ADD COLUMN sessions_after REAL NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX users_email ON users(email) WHERE email IS NOT NULL;
    ALTER TABLE datasets ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE datasets ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
    """,
]


def db_path(home: str | os.PathLike | None = None) -> Path:
    return studio_home(home) / "studio.db"


def connect(home: str | os.PathLike | None = None) -> sqlite3.Connection:
    """Open the workspace database (WAL mode), upgrading its schema if needed."""
    conn = sqlite3.connect(db_path(home), timeout=30, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    _migrate(conn)
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version >= len(MIGRATIONS):
        return
    # BEGIN IMMEDIATE serialises concurrent first openers; re-read the version inside the lock.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for i in range(version, len(MIGRATIONS)):
            for statement in statements(MIGRATIONS[i]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={i + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def statements(script: str) -> Iterator[str]:
    """The complete SQL statements of a script, as SQLite itself delimits them (a ';' inside a
    string or a trigger body does not end one). executescript() would commit the migration's
    transaction; this keeps each migration atomic."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:80]!r}")


@contextmanager
def opened(home: str | os.PathLike | None = None) -> Iterator[sqlite3.Connection]:
    """A connection to the workspace database for the length of a `with` block."""
    conn = connect(home)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


# --- datasets -------------------------------------------------------------------------------


def add_dataset(
    conn: sqlite3.Connection, id: str, name: str, owner: str | None, source: str, manifest: dict
) -> None:
    try:
        conn.execute(
            "INSERT INTO datasets (id, name, owner, source, created, manifest)"
            " VALUES (?,?,?,?,?,?)",
            (id, name, owner, source, time.time(), json.dumps(manifest)),
        )
    except sqlite3.IntegrityError as e:
        raise ValueError(f"a dataset named {name!r} already exists") from e


def _dataset_row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["manifest"] = json.loads(d["manifest"])
    return d


def get_dataset(conn: sqlite3.Connection, id_or_name: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT * FROM datasets WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1",
        (id_or_name, id_or_name, id_or_name),
    ).fetchone()
    return _dataset_row(row) if row else None


def list_datasets(conn: sqlite3.Connection, owner: str | None = None) -> list[dict[str, Any]]:
    if owner is None:
        rows = conn.execute("SELECT * FROM datasets ORDER BY created DESC").fetchall()
    else:
        rows = conn.execute(
            "SELECT * FROM datasets WHERE owner = ? ORDER BY created DESC", (owner,)
        ).fetchall()
    return [_dataset_row(r) for r in rows]


def delete_dataset(conn: sqlite3.Connection, id: str) -> bool:
    return conn.execute("DELETE FROM datasets WHERE id = ?", (id,)).rowcount > 0


# --- users ------------------------------------------------------------------------------------


def ensure_user(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("INSERT OR IGNORE INTO users (name, created) VALUES (?, ?)", (name, time.time()))


def list_users(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM users ORDER BY name")]


def user_role(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def set_user_role(conn: sqlite3.Connection, name: str, role: str) -> None:
    ensure_user(conn, name)
    conn.execute("UPDATE users SET role = ? WHERE name = ?", (role, name))


# --- jobs -------------------------------------------------------------------------------------

_JOB_JSON = ("config", "progress", "result")
_JOB_COLUMNS = frozenset((
    "id", "name", "owner", "status", "device", "assigned_device", "config", "created", "queued",
    "started", "finished", "heartbeat", "pid", "progress", "cancel_requested", "resume",
    "attempts", "reason", "message", "result", "parent", "sweep", "kind", "priority"))
_METRIC_COLUMNS = ("train_loss", "val_loss", "val_accuracy", "val_top5", "lr", "images_per_s",
                   "epoch_time")


def _encode_job(fields: dict[str, Any]) -> dict[str, Any]:
    bad = set(fields) - _JOB_COLUMNS
    if bad:
        raise KeyError(f"unknown job columns: {', '.join(sorted(bad))}")
    return {k: json.dumps(v) if k in _JOB_JSON and v is not None else v
            for k, v in fields.items()}


def _job_row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    for k in _JOB_JSON:
        if d.get(k) is not None:
            d[k] = json.loads(d[k])
    d["cancel_requested"] = bool(d["cancel_requested"])
    d["resume"] = bool(d["resume"])
    return d


def insert_job(conn: sqlite3.Connection, job: dict[str, Any]) -> None:
    enc = _encode_job(job)
    cols = ", ".join(enc)
    conn.execute(f"INSERT INTO jobs ({cols}) VALUES ({', '.join('?' * len(enc))})",
                 tuple(enc.values()))


def get_job(conn: sqlite3.Connection, id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (id,)).fetchone()
    return _job_row(row) if row else None


def list_jobs(conn: sqlite3.Connection, owner: str | None = None,
              statuses: tuple[str, ...] | list[str] | None = None, sweep: str | None = None,
              order: str = "created DESC", limit: int | None = None,
              kind: str | None = None, parent: str | None = None) -> list[dict[str, Any]]:
    """Jobs filtered by owner, statuses, sweep, kind ("train" or "task") and parent job;
    order is one of a few fixed orderings."""
    orders = {"created DESC": "created DESC, rowid DESC", "queue": "queued, rowid"}
    where, args = [], []
    for column, value in (("kind", kind), ("parent", parent)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if owner is not None:
        where.append("owner = ?")
        args.append(owner)
    if statuses:
        where.append(f"status IN ({', '.join('?' * len(statuses))})")
        args.extend(statuses)
    if sweep is not None:
        where.append("sweep = ?")
        args.append(sweep)
    sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
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
