"""Quotas (issue 19): each limit refuses a job at submission with its name in one line; the
class default and a user's own limit; only an instructor sets them; the running-jobs limit
makes a job wait and the Job page says why."""

from __future__ import annotations

import time
from contextlib import closing

import pytest

from engine import jobs
from engine.cli.main import main as cli
from engine.hosting import quotas, roles
from engine.state import store
from testkit.apptest import app, errors, open_page

DIGITS = {"dataset": "digits", "epochs": 1}


def _queue(owner: str = "alice", **config) -> str:
    return jobs.submit({**DIGITS, **config}, owner=owner, start_scheduler=False)


def _past_run(owner: str, device: str, minutes: float) -> None:
    """A finished job of `owner` that ran `minutes` on `device` within the last hour."""
    job_id = _queue(owner)
    now = time.time()
    with closing(store.connect()) as conn, store.transaction(conn):
        store.update_job(conn, job_id, status="done", assigned_device=device,
                         started=now - 3600, finished=now - 3600 + 60 * minutes)


def test_queued_jobs_limit_refuses_and_a_sweep_is_all_or_nothing(jobs_home):
    quotas.set_limit("alice", "queued_jobs", 2, by=None)
    _queue()
    with pytest.raises(jobs.QuotaExceeded) as e:
        jobs.submit_sweep({**DIGITS}, lrs=[0.1, 0.01], owner="alice", start_scheduler=False)
    assert str(e.value) == ("job refused: alice already has 2 queued jobs (limit 2, quota "
                            "queued_jobs)")
    assert len(jobs.list_jobs(owner="alice")) == 1  # the sweep's first job was rolled back
    _queue()
    with pytest.raises(jobs.QuotaExceeded, match="already has 2 queued jobs"):
        _queue()
    _queue("bob")  # others are not limited


def test_epochs_per_job_limit(jobs_home):
    quotas.set_limit(quotas.CLASS_DEFAULT, "epochs_per_job", 3, by=None)
    with pytest.raises(jobs.QuotaExceeded) as e:
        _queue("bob", epochs=5)
    assert str(e.value) == ("job refused: 5 epochs is over bob's limit of 3 epochs per job "
                            "(quota epochs_per_job)")
    _queue("bob", epochs=3)
    quotas.set_limit("bob", "epochs_per_job", 10, by=None)  # his own limit beats the default
    _queue("bob", epochs=5)


def test_cpu_and_gpu_time_per_day_limits(jobs_home):
    _past_run("alice", "cpu", 50)
    _past_run("alice", "cuda:0", 20)
    quotas.set_limit("alice", "cpu_minutes_per_day", 30, by=None)
    with pytest.raises(jobs.QuotaExceeded) as e:
        _queue(device="cpu")
    assert str(e.value) == ("job refused: alice used 50.0 minutes of CPU time in the last 24 "
                            "hours (limit 30, quota cpu_minutes_per_day)")
    with pytest.raises(jobs.QuotaExceeded, match="CPU time"):
        _queue()  # "auto" on a machine without GPUs (STUDIO_GPUS=0) spends CPU time
    _queue(device="cuda:0")  # GPU time is not limited yet
    quotas.set_limit("alice", "gpu_minutes_per_day", 20, by=None)
    with pytest.raises(jobs.QuotaExceeded) as e:
        _queue(device="cuda:0")
    assert "alice used 20.0 minutes of GPU time in the last 24 hours (limit 20, quota " \
           "gpu_minutes_per_day)" in str(e.value)
    with closing(store.connect()) as conn:
        gpu_s, cpu_s = quotas.device_time(conn, "alice")
    assert (round(gpu_s), round(cpu_s)) == (1200, 3000)


def test_workspace_disk_limit(jobs_home):
    folder = jobs_home / "uploads" / "users" / "alice"
    folder.mkdir(parents=True)
    (folder / "big.bin").write_bytes(b"\0" * (2 << 20))
    quotas.set_limit("alice", "disk_mib", 1, by=None)
    with pytest.raises(jobs.QuotaExceeded) as e:
        _queue()
    assert str(e.value) == ("job refused: alice uses 2.0 MiB of workspace disk (limit 1 MiB, "
                            "quota disk_mib); delete old jobs or datasets first")


def test_only_an_instructor_sets_quotas_and_values_are_checked(jobs_home, monkeypatch,
                                                               capsys):
    monkeypatch.delenv("STUDIO_INSTRUCTORS", raising=False)
    with pytest.raises(PermissionError, match="only an instructor sets quotas"):
        quotas.set_limit("alice", "queued_jobs", 1, by="alice")
    roles.set_role("teacher", roles.INSTRUCTOR)
    quotas.set_limit("alice", "queued_jobs", 1, by="teacher")
    with pytest.raises(ValueError, match="unknown quota 'gpus'"):
        quotas.set_limit("alice", "gpus", 1, by="teacher")
    with pytest.raises(ValueError, match="must be a number >= 0"):
        quotas.set_limit("alice", "queued_jobs", "-1", by="teacher")
    assert quotas.all_limits() == {"alice": {"queued_jobs": 1.0}}
    # The CLI: a student is refused in one line; the refusal of a job names the limit.
    assert cli(["quotas", "set", "alice", "queued_jobs", "5", "--user", "alice"]) == 2
    assert capsys.readouterr().err.strip() == \
        "error: only an instructor sets quotas (alice is a student)"
    _queue()
    assert cli(["jobs", "submit", "--dataset", "digits", "--epochs", "1", "--owner", "alice",
                "--no-start"]) == 2
    assert capsys.readouterr().err.strip() == ("error: job refused: alice already has 1 "
                                               "queued job (limit 1, quota queued_jobs)")
    assert cli(["quotas", "set", "alice", "queued_jobs", "unlimited", "--user", "teacher"]) == 0
    assert quotas.all_limits() == {}


def test_running_limit_makes_a_job_wait_and_the_job_page_says_why(jobs_home):
    quotas.set_limit("alice", "running_jobs", 1, by=None)
    first, second = _queue(), _queue()
    other = _queue("bob")
    with closing(store.connect()) as conn, store.transaction(conn):
        store.update_job(conn, first, status="running", assigned_device="cpu",
                         started=time.time(), heartbeat=time.time())
    from engine.jobs.progress import queue_position

    place = queue_position(second)
    assert place["held"] == "alice already runs 1 job (limit 1)"
    assert (place["position"], place["queued"]) == (2, 2)  # bob's job goes first
    assert queue_position(other)["held"] is None
    at = open_page(app("alice"), "job", id=second)
    assert not errors(at)
    infos = [i.value for i in at.info]
    assert ("Queued: number 2 of 2 in the queue, waiting: alice already runs 1 job (limit 1)."
            in infos), infos
