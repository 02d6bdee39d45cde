"""Issue 16 over real processes: corrupt checkpoints (3), the scheduler start race with
production settings (4), a dead scheduler and worker (8), datasets in use and reused names (9),
who may write into a job (10), and datasets built in a worker process (1).

Every test runs the real scheduler and worker processes in its own workspace (the `jobs_home`
fixture kills them all afterwards) and drives the CLIs as subprocesses, as a user would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import jobs
from engine.datasets import DatasetError, DatasetInUse, create_dataset, list_datasets
from engine.hosting.ownership import uploads_dir
from engine.jobs.health import scheduler_health, start_scheduler_if_needed
from engine.processes import pid_alive
from engine.state import store
from testkit import waiting
from testkit.mnist import write_idx
from testkit.processes import schedulers_of

ROOT = Path(__file__).resolve().parents[2]
RUN = {"dataset": "digits", "network": "lenet", "lr": 0.01, "device": "cpu", "epochs": 2,
       "batch_size": 32}


def wait_until(pred, timeout: float = 120, what: str = "condition"):
    return waiting.wait_until(pred, timeout, what)


def run(*argv: str, user: str | None = None, module: str = "engine"
        ) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("STUDIO_USER", None)
    if user:
        env["STUDIO_USER"] = user
    return subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """The CLI refused with exit status 2 and exactly one line on stderr, no traceback
    (progress bars aside: a terminal redraws them in place)."""
    lines = [ln for ln in r.stderr.replace("\r", "\n").splitlines()
             if ln.strip() and "%|" not in ln and "it/s]" not in ln]
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def trained(owner: str | None = None, **changes) -> dict:
    job_id = jobs.submit({**RUN, **changes}, owner=owner)
    job = jobs.wait(job_id, timeout=300)
    assert job["status"] == "done", job
    for task in jobs.list_tasks(job_id):  # the automatic evaluation of best.pt
        jobs.wait(task["id"], timeout=300)
    return jobs.get_job(job_id)


def flip_bytes(path: Path, count: int = 200, seed: int = 0) -> None:
    data = bytearray(path.read_bytes())
    for i in np.random.default_rng(seed).integers(0, len(data), count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def evaluations(job_id: str) -> list[dict]:
    return jobs.job_evaluations(job_id)


# --- 3: corrupt checkpoints -----------------------------------------------------------------------


def test_corrupt_checkpoints_are_named_in_one_line_and_not_resumable(jobs_home, tmp_path):
    job = trained()
    run_dir = Path(job["dir"])
    assert (run_dir / "best.pt.sha256").exists() and (run_dir / "checkpoints").exists()
    stored = evaluations(job["id"])
    image = tmp_path / "seven.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)

    flip_bytes(run_dir / "best.pt")  # 200 random byte flips: no longer passes unnoticed
    for argv, module in [(("predict", str(run_dir / "best.pt"), str(image)), "engine"),
                         (("evaluate", job["id"]), "engine"),
                         (("classify", job["id"], str(image)), "engine"),
                         (("export", str(run_dir)), "trt")]:
        line = one_line_error(run(*argv, module=module))
        assert "checkpoint best.pt is corrupt" in line, line
        assert "checkpoints/epoch-0002.pt" in line, line  # the intact ones are offered
    assert evaluations(job["id"]) == stored  # nothing was evaluated on a corrupt model

    # the evaluation as a task job fails with the same one line, never a traceback
    task = jobs.submit_task("engine.evaluate", {"checkpoint": "best.pt"}, parent=job["id"])
    t = jobs.wait(task, timeout=120)
    assert t["status"] == "failed" and t["reason"] == "corrupt_checkpoint", t
    assert "checkpoint best.pt is corrupt" in t["message"] and "\n" not in t["message"]

    # a truncated last.pt: the job is no longer offered for resuming, and resume says why
    last = run_dir / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with store.connect(jobs_home) as conn:
        store.update_job(conn, job["id"], status="interrupted")
    j = jobs.get_job(job["id"])
    assert j["resumable"] is False and "last.pt is corrupt" in j["checkpoint_problem"]
    line = one_line_error(run("jobs", "resume", job["id"], "--no-start"))
    assert "cannot be resumed" in line and "last.pt is corrupt" in line
    for name, data in [("empty", b""), ("garbage", os.urandom(3000))]:
        bad = tmp_path / f"{name}.pt"
        bad.write_bytes(data)
        line = one_line_error(run("predict", str(bad), str(image)))
        assert f"checkpoint {name}.pt is corrupt" in line and "weights_only" not in line


# --- 4: the scheduler start race, production settings -------------------------------------------


def _production(monkeypatch) -> None:
    """What a host runs with: the GPU count from torch, default poll and slots."""
    for var in ("STUDIO_GPUS", "STUDIO_SCHEDULER_POLL", "STUDIO_CPU_SLOTS"):
        monkeypatch.delenv(var, raising=False)


def _stop_scheduler(home: Path) -> None:
    status = jobs.scheduler_status(home)
    if status.get("pid") and status["alive"]:
        os.kill(status["pid"], signal.SIGKILL)
    wait_until(lambda: not jobs.scheduler_alive(home), timeout=20, what="the lock to drop")


@pytest.mark.parametrize("parallel", [2, 2, 10])
def test_parallel_submits_when_nothing_runs_never_fail(jobs_home, monkeypatch, parallel):
    _production(monkeypatch)
    assert not jobs.scheduler_alive()
    args = ["jobs", "submit", "--dataset", "digits", "--epochs", "1", "--batch-size", "128",
            "--device", "cpu", "--json"]
    procs = [subprocess.Popen([sys.executable, "-m", "engine", *args, "--name", f"job {i}"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(parallel)]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and "Traceback" not in err, err
        ids.append(json.loads(out)["id"])
    assert len(set(ids)) == parallel == len(jobs.list_jobs())
    schedulers = schedulers_of(jobs_home)
    assert len(schedulers) == 1
    assert jobs.scheduler_health()["alive"]
    for job_id in ids:  # no need to train them all
        if jobs.get_job(job_id, metrics=False, events=False)["status"] in jobs.ACTIVE:
            with contextlib.suppress(jobs.JobError):  # it may end meanwhile
                jobs.cancel(job_id)
    _stop_scheduler(jobs_home)


def test_a_scheduler_that_cannot_start_is_one_line_and_the_job_stays_queued(jobs_home,
                                                                            monkeypatch):
    from engine.jobs import scheduler

    monkeypatch.setattr(scheduler, "python", lambda: str(jobs_home / "no-such-python"))
    with pytest.raises(jobs.JobError, match="queued, but the job scheduler did not start") as e:
        jobs.submit(RUN)
    assert "\n" not in str(e.value)
    [queued] = jobs.list_jobs()
    assert queued["status"] == "queued"


# --- 8: dead scheduler and dead worker ------------------------------------------------------------


def test_dead_scheduler_and_worker_are_reported_and_recovered(jobs_home):
    job_id = jobs.submit({**RUN, "epochs": 12})  # 11 epochs after the first to freeze it in
    waiting.wait_until(lambda: jobs.job_metrics(job_id), 120, "a first epoch", step=0.02)
    worker = jobs.get_job(job_id)["pid"]
    os.kill(worker, signal.SIGSTOP)  # mid-run however fast this machine is
    os.kill(jobs.scheduler_status()["pid"], signal.SIGKILL)
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: not jobs.scheduler_alive(), timeout=20, what="the lock to drop")
    wait_until(lambda: not pid_alive(worker), timeout=20, what="the worker to die")
    assert jobs.get_job(job_id)["status"] == "running"  # what the issue saw: forever

    health = scheduler_health()
    assert health["alive"] is False and health["needs_start"] is True
    assert health["reason"].startswith("the job scheduler is not running")
    assert "have no live worker" in health["reason"]
    [stale] = health["stale"]
    assert stale["id"] == job_id and "is gone" in stale["why"]
    assert "is gone" in jobs.get_job(job_id)["worker_problem"]

    health = start_scheduler_if_needed()
    assert health["alive"] and health["reason"] is None
    j = jobs.wait(job_id, timeout=300)
    assert j["status"] == "done" and [m["epoch"] for m in jobs.job_metrics(job_id)] == list(
        range(1, 13))
    assert scheduler_health()["stale"] == []


# --- 9: datasets in use, names reused -------------------------------------------------------------


def test_a_dataset_in_use_needs_confirmation_and_a_reused_name_is_never_used(jobs_home):
    create_dataset("reuse", "digits-sample", None, {"max_per_class": 40, "seed": 1})
    job = trained(dataset="reuse", epochs=1)
    pin = json.loads((Path(job["dir"]) / "dataset.json").read_text())
    assert pin["name"] == "reuse" and pin["id"].startswith("ds-") and pin["sha256"]
    stored = evaluations(job["id"])

    line = one_line_error(run("datasets", "delete", "reuse"))
    assert "used by 1 job" in line and "--force" in line
    with pytest.raises(DatasetInUse):
        from engine.datasets import delete_dataset

        delete_dataset("reuse")
    assert run("datasets", "delete", "reuse", "--force").returncode == 0

    create_dataset("reuse", "digits-sample", None, {"max_per_class": 20, "seed": 2})
    line = one_line_error(run("evaluate", job["id"]))
    assert f"({pin['id']}), has been deleted" in line and "is a different one" in line
    task = jobs.submit_task("engine.evaluate", {"checkpoint": "best.pt"}, parent=job["id"])
    t = jobs.wait(task, timeout=120)
    assert t["status"] == "failed" and "has been deleted" in t["message"]
    assert evaluations(job["id"]) == stored  # nothing stored from the wrong data

    with store.connect(jobs_home) as conn:  # resuming it would train on the new 'reuse'
        store.update_job(conn, job["id"], status="interrupted")
    jobs.resume(job["id"])
    j = jobs.wait(job["id"], timeout=120)
    assert j["status"] == "failed" and "has been deleted" in j["message"], j

    # look-alike and case-only variants of an existing name are refused
    for name in ("REUSE", "rеuse", "ｒｅｕｓｅ"):  # upper case, Cyrillic е, full width
        with pytest.raises(DatasetError, match="reuse"):
            create_dataset(name, "digits-sample")


# --- 10: who may write into a job ---------------------------------------------------------------


def test_only_the_owner_writes_into_a_job(jobs_home):
    job = trained(owner="alice", epochs=1)
    run_dir = Path(job["dir"])
    stored = evaluations(job["id"])

    with pytest.raises(PermissionError, match="belongs to alice"):
        jobs.submit_task("trt.export", {}, owner="bob", parent=job["id"])
    with pytest.raises(PermissionError, match="belongs to alice"):
        jobs.submit_task("engine.evaluate", {}, owner="bob", parent=job["id"])
    line = one_line_error(run("export", str(run_dir), user="bob", module="trt"))
    assert "belongs to alice" in line and "bob" in line
    assert not (run_dir / "exports").exists()
    assert "belongs to alice" in one_line_error(run("evaluate", job["id"], user="bob"))
    assert "belongs to alice" in one_line_error(run("evaluate", job["id"], "--user", "bob"))
    assert "belongs to alice" in one_line_error(run("jobs", "delete", job["id"], user="bob"))
    assert evaluations(job["id"]) == stored
    assert not uploads_dir(job["id"], "bob").is_relative_to(run_dir)
    assert uploads_dir(job["id"], "alice").is_relative_to(run_dir)

    # the owner may; CLI-created datasets belong to the acting user
    assert run("evaluate", job["id"], user="alice").returncode == 0
    assert len(evaluations(job["id"])) >= 1
    assert run("datasets", "create", "carols", "--source", "digits-sample",
               user="carol").returncode == 0
    assert {d["name"]: d["owner"] for d in list_datasets()}["carols"] == "carol"
    line = one_line_error(run("datasets", "delete", "carols", user="dave"))
    assert "belongs to carol" in line


# --- 1: datasets built in a worker process -----------------------------------------------------


def test_datasets_are_built_in_a_worker_process(jobs_home, tmp_path):
    from engine.jobs.build_dataset import build_dataset_in_worker

    seen = []
    ds = build_dataset_in_worker("small", "digits-sample", None, {"max_per_class": 20},
                                 owner="alice", progress=lambda f, m: seen.append(f))
    assert len(ds) > 0 and ds.name == "small"
    [build] = [j for j in jobs.list_jobs(kind="task") if j["config"]["task"] == "engine.dataset"]
    assert build["status"] == "done" and build["owner"] == "alice"
    assert build["pid"] != os.getpid()  # decoded elsewhere
    assert seen and max(seen) <= 1.0

    labels = tmp_path / "labels"
    write_idx(labels, np.arange(20) % 2)
    import gzip

    with gzip.open(tmp_path / "bomb.gz", "wb") as gz:  # says 20 images, holds 64 MiB
        gz.write(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (20, 28, 28)))
        for _ in range(64):
            gz.write(bytes(1 << 20))
    with pytest.raises(DatasetError, match="header says") as e:
        build_dataset_in_worker("bomb", "idx", {"train_images": str(tmp_path / "bomb.gz"),
                                                "train_labels": str(labels)})
    assert "\n" not in str(e.value)
    with pytest.raises(DatasetError, match="above the"):  # the worker refuses, before decoding
        build_dataset_in_worker("huge", "digits-sample", None, {"height": 4096,
                                                                 "width": 4096,
                                                                 "channels": 3})
    assert not any(p.name.startswith(".tmp-") for p in (jobs_home / "datasets").iterdir())
