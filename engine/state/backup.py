"""Backups of the workspace's database with SQLite's online backup API, and restore.

`backup` copies studio.db page by page through `sqlite3.Connection.backup`, which gives a
consistent snapshot while the scheduler and workers keep writing (a write between steps makes
SQLite restart the copy from a consistent point; WAL readers never block writers). The files
beside it (datasets/, jobs/) are written atomically and never change in place: copy them with
rsync or any file backup; session.key is not in a backup (restoring signs everyone out).

`restore` checks the backup first (an SQLite file that passes integrity_check and holds a
studio schema this code knows), refuses while a scheduler runs on the workspace unless told
(its workers would write into a database that changes under them), keeps the current
database as studio.db.before-restore-<time>, then copies the backup in through the same API.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from engine.state import store
from engine.state.scheduler_lock import scheduler_alive
from engine.state.workspace import studio_home

Home = str | os.PathLike | None


class BackupError(ValueError):
    """A backup or restore that cannot be done: one line that says why."""


def backup(out: str | os.PathLike, home: Home = None, *, overwrite: bool = False) -> dict:
    """Write a consistent copy of the workspace's database to `out` (a file path)."""
    out = Path(out)
    src_path = store.db_path(home)
    if not src_path.exists():
        raise BackupError(f"no workspace database at {src_path}")
    if out.is_dir():
        out = out / f"studio-{time.strftime('%Y%m%d-%H%M%S')}.db"
    if out.exists() and not overwrite:
        raise BackupError(f"{out} exists; pick another name or pass --overwrite")
    if out.resolve() == src_path.resolve():
        raise BackupError("the backup cannot be the workspace's own database")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    tmp.unlink(missing_ok=True)
    start = time.monotonic()
    store.copy_database(home, tmp)
    os.replace(tmp, out)
    return {"backup": str(out), "bytes": out.stat().st_size, **store.database_summary(out),
            "seconds": round(time.monotonic() - start, 3)}


def check_backup(path: str | os.PathLike) -> dict:
    """The backup's summary, or BackupError when it is not a usable studio database."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise BackupError(f"{path} is not an SQLite database")
    try:
        ok, version = store.database_health(path)
        if ok != "ok":
            raise BackupError(f"{path} is damaged: {ok}")
        if version < 1 or version > len(store.MIGRATIONS):
            raise BackupError(f"{path} has schema version {version}; this studio knows "
                              f"1-{len(store.MIGRATIONS)}")
        return store.database_summary(path)
    except sqlite3.DatabaseError as e:
        raise BackupError(f"{path} is not a usable studio database: {e}") from None


def restore(path: str | os.PathLike, home: Home = None, *, force: bool = False) -> dict:
    """Replace the workspace's database by the backup at `path` (see the module's words)."""

    summary = check_backup(path)
    root = studio_home(home)
    root.mkdir(parents=True, exist_ok=True)
    if scheduler_alive(root) and not force:
        raise BackupError("a job scheduler is running on this workspace; stop it first "
                          "(its jobs would write into a database replaced under them), or "
                          "pass --force")
    kept = None
    if store.db_path(root).exists():
        kept = root / f"studio.db.before-restore-{time.strftime('%Y%m%d-%H%M%S')}"
        backup(kept, root, overwrite=True)
    with closing(sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)) as src, \
            closing(sqlite3.connect(store.db_path(root), timeout=30)) as dst:
        src.backup(dst)
    with closing(store.connect(root)):  # upgrades an older backup's schema in place
        pass
    return {"restored": str(path), "previous": str(kept) if kept else None, **summary}
