"""Issue 13 items 7, 12, 13 and issue 16 item 8 on the engine side: one epoch definition,
the queue position and what a job waits for, the loss curve inside epochs, an ETA from the
speed after warm-up, and a stale heartbeat with no scheduler noticed."""

from __future__ import annotations

import time
from contextlib import closing

import pytest

from engine import jobs
from engine.jobs.health import scheduler_health
from engine.jobs.progress import epoch_position, queue_position
from engine.jobs.sink import add_curve_point
from engine.state import store
from engine.training import RecordingSink, TrainConfig, train
from engine.training import trainer as trainer_module


def test_one_epoch_definition_running_and_cancelled():
    progress = {"epoch": 1, "epochs": 3, "step": 37, "steps": 100}
    running = epoch_position({"status": "running", "progress": progress}, metrics_count=1)
    cancelled = epoch_position({"status": "cancelled", "progress": progress}, metrics_count=1)
    assert running == cancelled  # cancelling does not change what the numbers mean
    assert (running.completed, running.total, running.step, running.steps) == (1, 3, 37, 100)
    assert running.text() == "1 / 3, epoch 2 at step 37 / 100"
    end_of_epoch = epoch_position({"status": "running", "progress": {
        "epoch": 2, "epochs": 3, "step": 0, "steps": None}}, metrics_count=2)
    assert end_of_epoch.text() == "2 / 3"
    done = epoch_position({"status": "done", "config": {"epochs": 3},
                           "progress": {"epoch": 3, "epochs": 3}}, metrics_count=3)
    assert done.text() == "3 / 3"


def test_queue_position_and_what_it_waits_for(jobs_home):
    first = jobs.submit({"dataset": "digits", "epochs": 1}, owner="alice", start_scheduler=False)
    second = jobs.submit({"dataset": "digits", "epochs": 1, "device": "cpu"}, owner="bob",
                         start_scheduler=False)
    place = queue_position(second)
    assert place["position"] == 2 and place["queued"] == 2
    assert "scheduler" in place["waits_for"] and "not running" in place["waits_for"]
    assert queue_position(first)["position"] == 1
    health = scheduler_health()
    assert health["needs_start"] and health["queued"] == 2 and not health["stale"]
    jobs.cancel(first)
    assert queue_position(first) is None
    assert queue_position(second)["position"] == 1


def test_stale_heartbeat_without_scheduler_is_noticed(jobs_home):
    job_id = jobs.submit({"dataset": "digits", "epochs": 1}, owner="alice",
                         start_scheduler=False)
    with closing(store.connect(jobs_home)) as conn, store.transaction(conn):
        store.update_job(conn, job_id, status="running", heartbeat=time.time() - 120,
                         assigned_device="cpu", pid=None)
    health = scheduler_health()
    assert not health["alive"] and health["needs_start"]
    assert [j["id"] for j in health["stale"]] == [job_id]
    assert health["stale"][0]["silent_s"] >= 119
    fresh = scheduler_health(now=time.time() - 110)  # seen 10 s after its last beat: not stale
    assert not fresh["stale"] and not fresh["needs_start"]


def test_curve_points_stay_ordered_and_bounded():
    curve: list[list[float]] = []
    for i in range(10):
        add_curve_point(curve, i / 10, 1.0 - i / 20, cap=8)
    assert len(curve) <= 8 and [p[0] for p in curve] == sorted(p[0] for p in curve)
    add_curve_point(curve, 0.55, 0.3, cap=8)  # a resumed run behind the last point
    assert curve[-1] == [0.55, 0.3] and all(p[0] < 0.55 for p in curve[:-1])


def test_progress_reports_loss_inside_the_first_epoch_and_eta_after_warm_up(
        digits_home, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "PROGRESS_INTERVAL_S", 0.0)  # report every step
    sink = RecordingSink()
    cfg = TrainConfig(dataset="digits", network="lenet", epochs=2, batch_size=64, seed=0)
    train(cfg, tmp_path / "run", sink=sink, home=digits_home)
    first_epoch = [p for p in sink.progress if p["epoch"] == 0]
    steps = first_epoch[0]["steps"]
    assert len(first_epoch) == steps  # a loss point per step inside the first epoch
    assert all(p["loss"] > 0 for p in first_epoch)
    # No ETA while warming up (rather than one inflated by the first steps), then one.
    warm = trainer_module.WARMUP_STEPS
    assert all(p["eta_s"] is None for p in first_epoch[:warm - 1])
    assert all(p["eta_s"] is not None for p in first_epoch[warm + 1:])
    # The reported losses are means of the steps since the last report: together they
    # make the epoch's mean training loss.
    mean = sum(p["loss"] * 1 for p in first_epoch[:-1]) / (steps - 1)
    assert mean == pytest.approx(sink.epochs[0]["train_loss"], rel=0.2)
    # The second epoch has an ETA from its first step (the first epoch's speed).
    assert sink.progress[steps]["epoch"] == 1 and sink.progress[steps]["eta_s"] is not None
