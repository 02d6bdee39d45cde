"""`studio backup` / `studio restore` (issue 19): SQLite's online backup API while a job writes
metrics; restore refuses a running scheduler and bad files, and keeps the database it replaces."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli.main import main as cli
from engine.state import store
from engine.state.backup import BackupError, check_backup, restore
from engine.state.scheduler_lock import LOCK_FILE
from testkit.accounts import job_row

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys, time
from engine.state import store
job, n = sys.argv[1], int(sys.argv[2])
with store.opened() as conn:
    for epoch in range(n):
        store.put_metrics(conn, job, {"epoch": epoch, "train_loss": 1.0 / (epoch + 1)})
        if epoch == 20:
            print("writing", flush=True)
        time.sleep(0.002)
"""


def _metrics(db: Path, job: str) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT epoch FROM metrics WHERE job = ? ORDER BY "
                                           "epoch", (job,))]


def test_backup_and_restore_round_trip_while_a_job_writes_metrics(home, tmp_path, capsys):
    job = job_row(home, "alice", status="running")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, job, "2000"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"  # the job is writing now
        out = tmp_path / "backups" / "studio-1.db"
        assert cli(["backup", str(out), "--json"]) == 0
        assert '"metrics"' in capsys.readouterr().out
        assert writer.poll() is None, "the writer finished before the backup: not concurrent"
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0  # the backup never made a write fail ("database is locked")
    saved = _metrics(out, job)
    assert 21 <= len(saved) < 2000 and saved == list(range(len(saved)))  # a consistent prefix
    assert check_backup(out)["jobs"] == 1
    assert len(_metrics(store.db_path(home), job)) == 2000

    # Damage the workspace (a job deleted, metrics lost), then restore the backup.
    with store.opened(home) as conn:
        store.delete_job(conn, job)
    result = restore(out, home)
    assert _metrics(store.db_path(home), job) == saved
    with store.opened(home) as conn:
        assert store.get_job(conn, job)["owner"] == "alice"
    kept = Path(result["previous"])
    assert kept.exists() and check_backup(kept)["jobs"] == 0  # the replaced one is kept


def test_restore_refuses_a_running_scheduler_and_bad_files(home, tmp_path, capsys):
    job_row(home, "alice")
    good = tmp_path / "good.db"
    assert cli(["backup", str(good)]) == 0
    assert cli(["backup", str(good)]) == 2
    assert "exists; pick another name or pass --overwrite" in capsys.readouterr().err
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 10)
    assert cli(["restore", str(junk)]) == 2
    assert "is not an SQLite database" in capsys.readouterr().err
    assert cli(["restore", str(tmp_path / "missing.db")]) == 2
    assert "no backup file at" in capsys.readouterr().err
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running scheduler holds
        with pytest.raises(BackupError, match="a job scheduler is running on this workspace"):
            restore(good, home)
        assert cli(["restore", str(good), "--force"]) == 0
    finally:
        os.close(fd)
    time.sleep(0.01)
    assert cli(["restore", str(good)]) == 0
