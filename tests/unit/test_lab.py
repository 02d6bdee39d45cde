"""engine.lab.guide: the DLI lab's four steps, their pre-filled settings, which job ran each step,
the lab board and the comparison of the finished steps on it."""

from __future__ import annotations

import pytest

from engine import jobs
from engine.datasets import DatasetError, open_dataset
from engine.evaluation import probe_import, probes
from engine.lab import guide as lab
from engine.state import store
from testkit.digit_images import digit_photo
from testkit.finished_jobs import finish_queued


def test_steps_and_their_forms():
    assert lab.STEP_KEYS == ("small", "full", "inverted", "wide")
    src = lab.offline_source()
    small, full, inverted, wide = (lab.step_form(k, "alice", src) for k in lab.STEP_KEYS)
    assert small.dataset_options["max_per_class"] == 100
    assert full.dataset_options["max_per_class"] is None
    assert not full.dataset_options["add_inverted"] and inverted.dataset_options["add_inverted"]
    assert [f.train["network"] for f in (small, full, inverted, wide)] == [
        "lenet", "lenet", "lenet", "lenet-wide"]
    assert wide.dataset_name == inverted.dataset_name != full.dataset_name  # shared data
    assert "alice" in small.dataset_name
    small.train["epochs"] = 99  # forms are copies: editing one changes no default
    assert lab.step_form("small", "alice", src).train["epochs"] != 99
    with pytest.raises(ValueError, match="unknown lab step"):
        lab.step_form("huge", "alice", src)


def test_run_steps_record_state_and_share_datasets(home):
    src = lab.offline_source()
    assert [s.status for s in lab.lab_state("alice")] == ["to do"] * 4
    assert lab.next_step(lab.lab_state("alice")).key == "small"
    with pytest.raises(PermissionError):
        lab.run_step("small", "", src, start_scheduler=False)

    form = lab.step_form("inverted", "alice", src)
    form.train["epochs"] = 3
    inv = lab.run_step("inverted", "alice", src, form, start_scheduler=False)
    wide = lab.run_step("wide", "alice", src, start_scheduler=False)
    cfg_inv = jobs.get_job(inv, metrics=False, events=False)["config"]
    cfg_wide = jobs.get_job(wide, metrics=False, events=False)["config"]
    assert cfg_inv["epochs"] == 3 and cfg_wide["network"] == "lenet-wide"
    assert cfg_inv["dataset"] == cfg_wide["dataset"]  # made once, reused
    ds = open_dataset(cfg_inv["dataset"])
    assert ds.manifest["options"]["add_inverted"] is True

    states = {s.step.key: s for s in lab.lab_state("alice")}
    assert states["inverted"].status == "queued" and states["inverted"].job["id"] == inv
    assert states["small"].job is None and lab.lab_state("bob")[2].job is None  # per user
    assert lab.next_step(list(states.values())).key == "small"
    # A running step's job says how far it is (the step's badge: "running 25%").
    with store.opened() as conn:
        store.update_job(conn, inv, status="running", progress={"epoch": 0, "epochs": 4,
                                                                 "step": 1, "steps": 1})
    running = next(s for s in lab.lab_state("alice") if s.step.key == "inverted")
    assert running.status == "running" and running.job.fraction == pytest.approx(0.25)
    with store.opened() as conn:
        store.update_job(conn, inv, status="queued", progress=None)

    # The same dataset name with other options is refused, before any job is queued.
    clash = lab.step_form("full", "alice", src)
    clash.dataset_name = form.dataset_name
    with pytest.raises(DatasetError, match="already exists with other settings"):
        lab.run_step("full", "alice", src, clash, start_scheduler=False)
    bad = lab.step_form("full", "alice", src)
    bad.train["lr"] = -1
    with pytest.raises(ValueError, match="learning rate"):
        lab.run_step("full", "alice", src, bad, start_scheduler=False)
    assert len(jobs.list_jobs()) == 2

    # A rerun replaces the step's job; deleting it falls back to the earlier run.
    again = lab.run_step("wide", "alice", src, start_scheduler=False)
    assert lab.lab_state("alice")[3].job["id"] == again
    jobs.delete(again)
    assert lab.lab_state("alice")[3].job["id"] == wide


def test_idx_source(home, tmp_path):
    assert lab.idx_source("alice") is None
    with pytest.raises(ValueError, match="train labels"):
        lab.save_idx_files("alice", {"train_images": b"x"})
    with pytest.raises(ValueError, match="go together"):
        lab.save_idx_files("alice", {"train_images": b"x", "train_labels": b"y",
                                     "test_images": b"z"})
    src = lab.save_idx_files("alice", {"train_images": b"x", "train_labels": b"y"})
    assert src.kind == "idx" and set(src.args) == {"train_images", "train_labels"}
    assert lab.idx_source("alice") == src
    other = lab.save_idx_files("alice", {"train_images": b"x2", "train_labels": b"y"})
    assert other.slug != src.slug  # other files: other dataset names
    assert lab.step_form("small", "alice", other).dataset_name != \
        lab.step_form("small", "alice", src).dataset_name
    # Files that are not IDX are refused when the first dataset is made, with the reason.
    with pytest.raises(DatasetError):
        lab.run_step("small", "alice", other, start_scheduler=False)
    assert jobs.list_jobs() == []


def test_comparison_fills_in_as_steps_finish(home):
    src = lab.offline_source()
    assert lab.compare("alice").score is None
    board = lab.lab_board("alice")
    assert lab.lab_board("alice") == board  # one lab board per user
    assert probes.get_board(board, "alice")["name"] == lab.BOARD_NAME
    found = probe_import.read_uploads([(f"{d}_photo.png", digit_photo(d)) for d in (1, 4, 7)])
    probe_import.add_all(board, found.candidates, "alice", polarity=lab.BOARD_POLARITY)

    small = lab.run_step("small", "alice", src, start_scheduler=False)
    full = lab.run_step("full", "alice", src, start_scheduler=False)
    waiting = lab.compare("alice")
    assert waiting.score is None and waiting.images == 3 and waiting.chart_rows() == []

    finish_queued(home, small)
    one = lab.compare("alice")
    assert one.score.columns == ["1. Small dataset"]
    assert [p["label"] for p in one.score.probes] == ["1", "4", "7"]

    finish_queued(home, full)
    two = lab.compare("alice")
    assert two.score.columns == ["1. Small dataset", "2. Full dataset"]
    frame = two.score.frame()
    assert frame.loc["score", "2. Full dataset"].endswith("/3")
    assert " : " in frame["1. Small dataset"].iloc[0]
    rows = two.chart_rows()
    assert [(r["step"], r["images"]) for r in rows] == [(1, 3), (2, 3)]
    assert all(0 <= r["score"] <= 1 and r["correct"] == round(r["score"] * 3) for r in rows)


def test_a_step_builds_its_dataset_in_a_worker(jobs_home):
    """From the dashboard (a scheduler runs), the step's dataset is decoded by a worker
    process, a task job, never in the dashboard's own process."""
    job_id = lab.run_step("small", "alice", lab.offline_source())
    [build] = [j for j in jobs.list_jobs(kind="task")
               if j["config"]["task"] == "engine.dataset"]
    assert build["status"] == "done" and build["owner"] == "alice"
    dataset = jobs.get_job(job_id, metrics=False, events=False)["config"]["dataset"]
    assert open_dataset(dataset).name == build["config"]["params"]["name"]
    jobs.cancel(job_id)
