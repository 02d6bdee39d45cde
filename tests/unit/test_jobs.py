"""Jobs: the SQLite queue, the scheduler and real worker processes on the offline sample.

Integration tests start real processes (a scheduler, one worker per job); the `jobs_home`
fixture kills every process it started, whatever happens.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine import jobs
from engine.jobs.scheduler import Scheduler
from engine.jobs.settings import SchedulerSettings
from engine.processes import pid_alive
from engine.state import store
from engine.training import ConfigError
from testkit import waiting
from testkit.processes import schedulers_of

ROOT = Path(__file__).resolve().parents[2]
# Several epochs, so that a cancel or a kill after the first lands mid-run.
RUN = {"dataset": "digits", "network": "lenet", "lr": 0.01, "device": "cpu", "epochs": 4,
       "batch_size": 16}
# The jobs the tests freeze mid-run: long enough (an epoch takes 0.1-0.3 s on the hosts seen)
# that a second job sharing the machine is still mid-run when the first has been frozen.
PAUSED = {**RUN, "epochs": 12}
ALL_EPOCHS = list(range(1, PAUSED["epochs"] + 1))


def wait_until(pred, timeout: float = 90, what: str = "condition"):
    return waiting.wait_until(pred, timeout, what)


def job(job_id: str) -> dict:
    return jobs.get_job(job_id)


def epochs_of(job_id: str) -> list[int]:
    return [m["epoch"] for m in jobs.job_metrics(job_id)]


def pause_mid_run(job_id: str) -> int:
    """Freeze the job's worker (SIGSTOP) after its first epoch, before its last: what the
    test does next happens mid-run however fast or slow this machine is. Returns the pid."""
    waiting.wait_until(lambda: epochs_of(job_id), 90, f"a first epoch of {job_id}", step=0.02)
    pid = job(job_id)["pid"]
    os.kill(pid, signal.SIGSTOP)
    assert job(job_id)["status"] == "running" and len(epochs_of(job_id)) < PAUSED["epochs"]
    return pid


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


# --- schema and API without processes ------------------------------------------------------------


def test_schema_migrates_once_and_records_users(home):
    with store.connect(home) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        assert version == len(store.MIGRATIONS)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"users", "jobs", "metrics", "events"} <= tables
        store.ensure_user(conn, "alice")
        store.ensure_user(conn, "alice")
        assert store.list_users(conn) == ["alice"]
    with store.connect(home) as conn:  # reopening does not migrate again
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version


def test_submit_validates_before_queueing(jobs_home):
    with pytest.raises(ConfigError, match="no dataset 'nope'"):
        jobs.submit({**RUN, "dataset": "nope"}, start_scheduler=False)
    with pytest.raises(ConfigError, match="learning rate"):
        jobs.submit({**RUN, "lr": -1}, start_scheduler=False)
    with pytest.raises(ConfigError, match="unknown device"):
        jobs.submit({**RUN, "device": "tpu"}, start_scheduler=False)
    with pytest.raises(ConfigError, match="unknown training settings"):
        jobs.submit({**RUN, "learning_rate": 0.1}, start_scheduler=False)
    with pytest.raises(ValueError):
        jobs.submit({**RUN, "network": "no-such-net"}, start_scheduler=False)
    assert jobs.list_jobs() == []


def test_sweep_makes_one_job_per_combination(jobs_home, capsys):
    ids = jobs.submit_sweep(RUN, lrs=[0.1, 0.01], batch_sizes=[32, 64], owner="alice",
                            start_scheduler=False)
    assert len(ids) == 4
    rows = [job(i) for i in ids]
    assert {(r["config"]["lr"], r["config"]["batch_size"]) for r in rows} == {
        (0.1, 32), (0.1, 64), (0.01, 32), (0.01, 64)}
    assert len({r["sweep"] for r in rows}) == 1 and rows[0]["sweep"]
    assert all(r["status"] == "queued" and r["owner"] == "alice" for r in rows)
    assert [j["id"] for j in jobs.list_jobs(sweep=rows[0]["sweep"])] == ids[::-1]

    from engine.cli.main import main

    assert main(["jobs", "submit", "--dataset", "digits", "--lr", "0.1,0.01", "--batch-size",
                 "32,64", "--epochs", "1", "--no-start", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["jobs"]) == 4 and len(jobs.list_jobs(sweep=out["sweep"])) == 4
    assert main(["jobs", "submit", "--dataset", "digits", "--lr", "0.1,x", "--no-start"]) == 2
    assert "--lr" in capsys.readouterr().err


def test_only_the_owner_may_cancel_or_delete(jobs_home, capsys):
    job_id = jobs.submit(RUN, owner="alice", name="alice's", start_scheduler=False)
    assert job(job_id)["owner"] == "alice"
    with pytest.raises(PermissionError, match="belongs to alice"):
        jobs.cancel(job_id, user="bob")
    with pytest.raises(PermissionError, match="belongs to alice"):
        jobs.delete(job_id, user="bob")
    with pytest.raises(PermissionError):
        jobs.resume(job_id, user="bob", start_scheduler=False)

    from engine.cli.main import main

    assert main(["jobs", "cancel", job_id, "--user", "bob"]) == 2
    assert "only its owner" in capsys.readouterr().err
    assert job(job_id)["status"] == "queued"

    # Anyone may clone; the clone is theirs and remembers its parent.
    clone_id = jobs.clone(job_id, {"lr": 0.01, "augment.invert": 0.5}, owner="bob",
                          start_scheduler=False)
    c = job(clone_id)
    assert c["owner"] == "bob" and c["parent"] == job_id
    assert c["config"]["lr"] == 0.01 and c["config"]["augment"]["invert"] == 0.5
    assert [j["id"] for j in jobs.list_jobs(owner="bob")] == [clone_id]

    assert jobs.cancel(job_id, user="alice") == "cancelled"  # queued: at once
    assert job(job_id)["status"] == "cancelled"
    jobs.delete(job_id, user="alice")
    assert [j["id"] for j in jobs.list_jobs()] == [clone_id]
    assert job(clone_id)["parent"] is None  # parent gone, clone stays


def _row(device: str, config: dict) -> store.Job:
    """A queued job's row as the scheduler reads it from the store."""
    return store.Job(id="20261204-000000-abcdef", config=config, created=0.0, queued=0.0,
                     device=device)


def test_scheduler_picks_devices_first_in_first_out():
    s = Scheduler.__new__(Scheduler)
    s.settings, s.gpus = SchedulerSettings(cpu_slots=1), 2
    use = collections.Counter()
    auto = _row("auto", {})
    assert s._pick(auto, use) == "cuda:0"
    use["cuda:0"] += 1
    assert s._pick(auto, use) == "cuda:1"
    use["cuda:1"] += 1
    assert s._pick(auto, use) == "cpu"  # no GPU free: the CPU
    assert s._pick(_row("cuda:1", {}), use) is None  # waits for its GPU
    assert s._pick(_row("auto", {"precision": "bf16"}), use) is None
    use["cpu"] += 1
    assert s._pick(_row("cpu", {}), use) is None
    with pytest.raises(ValueError, match="does not exist"):
        s._pick(_row("cuda:2", {}), use)
    s.gpus = 0
    with pytest.raises(ValueError, match="needs a GPU"):
        s._pick(_row("auto", {"precision": "fp16"}), collections.Counter())


# --- real scheduler and workers ------------------------------------------------------------------


def test_submit_runs_to_done_with_metrics_and_records_failures(jobs_home, monkeypatch, capsys):
    monkeypatch.setenv("STUDIO_CPU_SLOTS", "2")
    good = jobs.submit({**RUN, "epochs": 2, "batch_size": 64, "lr": 0.05}, name="good")
    bad = jobs.submit({**RUN, "epochs": 2, "lr": 1e8}, name="diverges")
    from engine.cli.main import main

    assert main(["jobs", "show", good, "--follow", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "done", shown
    assert [m["epoch"] for m in shown["metrics"]] == [1, 2]
    assert all(0 <= m["val_accuracy"] <= 1 and m["train_loss"] > 0 for m in shown["metrics"])
    with store.connect(jobs_home) as conn:  # real columns, for queries across jobs
        row = conn.execute("SELECT val_accuracy, lr FROM metrics WHERE job = ? AND epoch = 2",
                           (good,)).fetchone()
    assert row["lr"] == 0.05 and row["val_accuracy"] == shown["metrics"][1]["val_accuracy"]
    assert shown["result"]["epochs_completed"] == 2 and shown["fraction"] == 1.0
    assert shown["assigned_device"] == "cpu" and shown["started"] <= shown["finished"]
    kinds = [e["kind"] for e in shown["events"]]
    assert kinds[0] == "submitted" and "started" in kinds and kinds[-1] == "done"
    d = jobs.job_dir(good)
    assert (d / "config.json").exists() and (d / "best.pt").exists()
    assert (d / "checkpoints" / "epoch-0002.pt").exists()
    assert "epoch 2" in jobs.read_log(good)

    failed = jobs.wait(bad, timeout=90)
    assert failed["status"] == "failed" and failed["reason"] == "diverged"
    assert "learning rate" in failed["message"]
    with pytest.raises(jobs.JobError, match="no checkpoint"):
        jobs.resume(bad, start_scheduler=False)

    assert main(["jobs", "list"]) == 0
    listing = capsys.readouterr().out
    assert good in listing and "done" in listing and "failed" in listing
    assert main(["jobs", "logs", good, "--tail", "1"]) == 0
    assert "held-out" in capsys.readouterr().out

    # Training that ends queues the evaluation of its best checkpoint, stored in SQLite.
    evaluation = wait_until(lambda: jobs.list_tasks(good, "engine.evaluate"), timeout=30,
                            what="the automatic evaluation")[0]
    evaluation = jobs.wait(evaluation["id"], timeout=90)
    assert evaluation["status"] == "done", evaluation
    assert evaluation["kind"] == "task" and evaluation["parent"] == good
    stored = jobs.job_evaluations(good)
    assert len(stored) == 1 and stored[0]["checkpoint"] == "best.pt"
    assert stored[0]["split"] == "test" and stored[0]["images"] > 300
    assert stored[0]["accuracy"] == evaluation["result"]["accuracy"]
    assert sum(map(sum, stored[0]["confusion"])) == stored[0]["images"]
    assert not jobs.list_tasks(bad)  # a failed run gets no evaluation
    assert evaluation["id"] not in [j["id"] for j in jobs.list_jobs()]  # tasks list apart
    assert evaluation["id"] in [j["id"] for j in jobs.list_jobs(kind="task")]
    with pytest.raises(jobs.JobError, match="task"):
        jobs.resume(evaluation["id"], start_scheduler=False)
    with pytest.raises(jobs.JobError, match="only training jobs"):
        jobs.clone(evaluation["id"], start_scheduler=False)
    with pytest.raises(ValueError, match="unknown task"):
        jobs.submit_task("engine.nothing", {}, parent=good, start_scheduler=False)
    missing = jobs.wait(jobs.submit_task("engine.evaluate", {"checkpoint": "epoch-9.pt"},
                                         parent=good), timeout=60)
    assert missing["status"] == "failed" and missing["reason"] == "config"
    assert "no checkpoint" in missing["message"] and len(jobs.job_evaluations(good)) == 1
    jobs.delete(good)  # its tasks and their stored evaluations go with it
    assert not jobs.list_jobs(kind="task") and not jobs.job_dir(evaluation["id"]).exists()


def test_cancel_mid_run_then_resume_finishes_all_epochs(jobs_home):
    job_id = jobs.submit(PAUSED)
    pid = pause_mid_run(job_id)
    with pytest.raises(jobs.JobError, match="cancel it first"):
        jobs.delete(job_id)
    assert jobs.cancel(job_id) == "cancelling"
    os.kill(pid, signal.SIGCONT)
    j = jobs.wait(job_id, timeout=60)
    assert j["status"] == "cancelled" and j["reason"] == "cancelled", j
    assert j["checkpoint"] and j["resumable"]
    assert j["result"]["epochs_completed"] < PAUSED["epochs"]

    jobs.resume(job_id)
    j = jobs.wait(job_id, timeout=120)
    assert j["status"] == "done", j
    assert epochs_of(job_id) == ALL_EPOCHS
    assert j["result"]["epochs_completed"] == PAUSED["epochs"]
    assert "resumed at epoch" in jobs.read_log(job_id)
    kinds = [e["kind"] for e in j["events"]]
    assert kinds.count("started") == 2 and "cancelled" in kinds and "resumed" in kinds

    jobs.delete(job_id)
    assert not jobs.job_dir(job_id).exists() and jobs.list_jobs() == []


def test_killed_worker_is_interrupted_then_resumes(jobs_home):
    job_id = jobs.submit(PAUSED)
    os.kill(pause_mid_run(job_id), signal.SIGKILL)
    j = wait_until(lambda: (x := job(job_id))["status"] == "interrupted" and x, timeout=30,
                   what="the job to be marked interrupted")
    assert j["reason"] == "worker_died" and "SIGKILL" in j["message"]
    assert j["checkpoint"]

    jobs.resume(job_id)
    j = jobs.wait(job_id, timeout=120)
    assert j["status"] == "done", j
    assert epochs_of(job_id) == ALL_EPOCHS
    assert "resumed at epoch" in jobs.read_log(job_id)


def test_scheduler_killed_and_restarted_recovers_running_jobs(jobs_home, monkeypatch):
    monkeypatch.setenv("STUDIO_CPU_SLOTS", "2")
    keeps, dies = jobs.submit(PAUSED, name="keeps running"), jobs.submit(PAUSED, name="worker dies")
    old = jobs.scheduler_status()["pid"]
    keeps_pid, dies_pid = pause_mid_run(keeps), pause_mid_run(dies)
    os.kill(old, signal.SIGKILL)
    os.kill(dies_pid, signal.SIGKILL)  # dies while no scheduler watches
    wait_until(lambda: not jobs.scheduler_alive(), timeout=10, what="the lock to drop")
    assert job(keeps)["status"] == job(dies)["status"] == "running"

    new = jobs.ensure_scheduler()
    assert new != old and pid_alive(new)
    wait_until(lambda: "adopted" in [e["kind"] for e in jobs.job_events(keeps)],
               timeout=30, what="the live worker to be adopted")
    os.kill(keeps_pid, signal.SIGCONT)
    for job_id in (keeps, dies):
        j = jobs.wait(job_id, timeout=150)
        assert j["status"] == "done", j
        assert epochs_of(job_id) == ALL_EPOCHS
    assert job(keeps)["attempts"] == 1
    kinds = [e["kind"] for e in job(dies)["events"]]
    assert "interrupted" in kinds and "recovered" in kinds
    assert "resumed at epoch" in jobs.read_log(dies)


def test_eight_concurrent_submissions_all_run(jobs_home, monkeypatch):
    monkeypatch.setenv("STUDIO_CPU_SLOTS", "4")
    args = ["jobs", "submit", "--dataset", "digits", "--epochs", "1", "--batch-size", "128",
            "--device", "cpu", "--json"]
    procs = [subprocess.Popen([sys.executable, "-m", "engine", *args, "--name", f"job {i}"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(8)]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        ids.append(json.loads(out)["id"])
    assert len(set(ids)) == 8 and len(jobs.list_jobs()) == 8
    schedulers = schedulers_of(jobs_home)
    assert len(schedulers) == 1, "one scheduler per workspace"
    for job_id in ids:
        j = jobs.wait(job_id, timeout=180)
        assert j["status"] == "done", j
        assert epochs_of(job_id) == [1]


def test_on_demand_scheduler_exits_when_idle(jobs_home):
    pid = jobs.ensure_scheduler(idle_exit_s=0.5)
    assert jobs.ensure_scheduler() == pid  # one at a time
    assert jobs.scheduler_status()["on_demand"]
    wait_until(lambda: not jobs.scheduler_alive(), timeout=30, what="the idle exit")
    r = cli("scheduler", "--status", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["alive"] is False


def test_the_api_hands_out_typed_live_jobs_that_read_as_mappings(jobs_home, capsys):
    from engine.cli.main import main

    job_id = jobs.submit(RUN, name="typed", owner="alice", start_scheduler=False)
    [listed] = jobs.list_jobs()
    shown = jobs.get_job(job_id)
    assert isinstance(listed, jobs.LiveJob) and isinstance(shown, jobs.LiveJob)
    assert shown.status == shown["status"] == "queued" and shown.fraction is None
    assert shown.metrics == [] and shown.checkpoint is False and shown.resumable is False
    assert shown.dir == str(jobs.job_dir(job_id)) and shown.config["network"] == RUN["network"]
    assert listed.metrics is None  # list_jobs does not read metrics
    assert dict(shown)["name"] == "typed" and {**shown}["owner"] == "alice"
    with pytest.raises(KeyError):
        shown["no_such_field"]
    with pytest.raises(AttributeError):  # frozen: a change is a copy (replace)
        shown.status = "done"
    assert shown.replace(status="done").status == "done" and shown.status == "queued"
    assert main(["jobs", "show", job_id, "--json"]) in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["id"] == job_id and out["resumable"] is False and out["metrics"] == []
