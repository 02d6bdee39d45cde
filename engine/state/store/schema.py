"""The SQLite store's schema and connections: the one source of truth for lists and states.

This module owns the schema. Each entry of MIGRATIONS upgrades the database by one version;
`PRAGMA user_version` records how far a database has come, so old workspaces upgrade in place.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
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
    # 9: hyperparameter studies (engine/jobs/studies): a study's record and which training
    # job ran each of its trials; the sampler's own state is an Optuna database beside it
    """
    CREATE TABLE studies (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        owner TEXT,
        status TEXT NOT NULL DEFAULT 'running',
        created REAL NOT NULL,
        finished REAL,
        spec TEXT NOT NULL,
        driver TEXT,
        message TEXT
    );
    CREATE INDEX studies_status ON studies(status);
    CREATE TABLE study_trials (
        study TEXT NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        job TEXT,
        state TEXT NOT NULL,
        value REAL,
        params TEXT NOT NULL,
        steps INTEGER NOT NULL DEFAULT 0,
        message TEXT,
        updated REAL NOT NULL,
        PRIMARY KEY (study, number)
    );
    CREATE INDEX study_trials_job ON study_trials(job);
    """,
]


def db_path(home: str | os.PathLike | None = None) -> Path:
    return studio_home(home) / "studio.db"


def connect(home: str | os.PathLike | None = None) -> sqlite3.Connection:
    """Open the workspace database (WAL mode), upgrading its schema if needed."""
    # check_same_thread off: opened() hands an idle connection to the next thread (one at a
    # time; never two threads at once).
    conn = sqlite3.connect(db_path(home), timeout=30, isolation_level=None,
                           check_same_thread=False)
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


def where(equal: dict[str, Any], statuses: tuple[str, ...] | list[str] | None = None
          ) -> tuple[str, list[Any]]:
    """A WHERE clause (or "") and its arguments: each column of `equal` whose value is not None
    equals it, and, when given, status is one of `statuses`. Column names come from the
    callers' code, never from users; values always travel as arguments."""
    clauses, args = [], []
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if statuses:
        clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
        args.extend(statuses)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


# Idle connections, shared by the process's threads: database path -> [(file identity,
# connection)]. Streamlit runs every page view in a new thread, so a per-thread cache gave
# each view a fresh connect.
_idle: dict[str, list[tuple[tuple[int, int, int] | None, sqlite3.Connection]]] = {}
_idle_lock = threading.Lock()
IDLE_PER_DATABASE = 8  # beyond this many idle connections to one file, close instead


def _identity(path: Path) -> tuple[int, int, int] | None:
    """(process, device, inode) of a database file: a connection is reused only in the process
    that opened it (never across a fork) and while the file is the one it opened (a restored
    or recreated workspace is a new file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.getpid(), st.st_dev, st.st_ino


@contextmanager
def opened(home: str | os.PathLike | None = None) -> Iterator[sqlite3.Connection]:
    """A connection to the workspace database for the length of a `with` block. An idle
    connection to the same file is reused, from any thread of this process (a connect and
    its PRAGMAs cost 0.3 ms, and a dashboard page opens the store some twenty times); a
    nested block gets its own."""
    path = str(db_path(home))
    identity = _identity(Path(path))
    conn = None
    with _idle_lock:
        idle = _idle.get(path, [])
        while idle and conn is None:
            was, candidate = idle.pop()
            if identity is not None and was == identity:
                conn = candidate
            else:
                candidate.close()
    if conn is None:
        conn = connect(home)
        identity = _identity(Path(path))
    ok = False
    try:
        yield conn
        ok = True
    finally:
        if ok and conn.in_transaction:
            conn.rollback()  # a block that left a transaction open does not hand it on
        with _idle_lock:
            idle = _idle.setdefault(path, [])
            keep = ok and len(idle) < IDLE_PER_DATABASE
            if keep:
                idle.append((identity, conn))
        if not keep:
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


def fewer_syncs(conn: sqlite3.Connection) -> None:
    """WAL with synchronous=NORMAL: safe against crashes, fewer fsyncs (a worker's writes)."""
    conn.execute("PRAGMA synchronous=NORMAL")


def home_of(conn: sqlite3.Connection) -> str:
    """The workspace of an open store connection (its database file's folder)."""
    return os.path.dirname(conn.execute("PRAGMA database_list").fetchone()[2])


def copy_database(home: str | os.PathLike | None, dest: Path) -> None:
    """Copy the workspace database into `dest` while writers go on (SQLite's backup API, in
    steps so writers get the lock in between), as one self-contained file (no WAL)."""
    with closing(connect(home)) as src, closing(sqlite3.connect(dest)) as dst:
        src.backup(dst, pages=256, sleep=0.005)
        dst.execute("PRAGMA journal_mode=DELETE")


def database_summary(path: Path) -> dict[str, int]:
    """Schema version and row counts of a database file, opened read-only."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return {"schema": conn.execute("PRAGMA user_version").fetchone()[0],
                "jobs": conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0],
                "users": conn.execute("SELECT COUNT(*) FROM users").fetchone()[0],
                "metrics": conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]}


def database_health(path: Path) -> tuple[str, int]:
    """(SQLite's integrity_check answer, "ok" when sound; schema version) of a database file,
    opened read-only; sqlite3.DatabaseError when it cannot be read."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return (conn.execute("PRAGMA integrity_check").fetchone()[0],
                conn.execute("PRAGMA user_version").fetchone()[0])
