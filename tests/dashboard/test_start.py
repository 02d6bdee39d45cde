"""AppTest of issue 17 in the dashboard: New model's "Start from", the lineage line on the
job page and Compare, and kept weights files."""

from __future__ import annotations

import pickle

import pytest
import torch

from engine import jobs
from engine.training import ConfigError
from engine.training.weights_files import keep_weights_file, kept_weights_files
from testkit.apptest import app, errors, open_page
from testkit.finished_jobs import finished_job


def test_start_from_an_earlier_job_and_see_the_lineage(jobs_home):
    parent = finished_job(jobs_home, epochs=1, evaluate=False)
    at = open_page(app(), "new_model")
    assert not at.exception and not errors(at)
    at.radio(key="nm_start_kind").set_value("An earlier job").run()
    assert at.selectbox(key="nm_start_job").value == parent
    at.selectbox(key="nm_start_ckpt").set_value("last")
    at.selectbox(key="nm_freeze").set_value("all-but-head")
    at.number_input(key="nm_pre_lr").set_value(0.5)
    at.number_input(key="nm_epochs").set_value(1)
    at.text_input(key="nm_name").set_value("child")
    at.button(key="nm_submit").click().run()
    assert not at.exception and not errors(at), errors(at)
    child = next(j for j in jobs.list_jobs() if j["name"] == "child")
    cfg = child["config"]
    assert (cfg["init_from"], cfg["freeze"], cfg["pretrained_lr_factor"]) == \
        (f"{parent}:last", "all-but-head", 0.5)
    assert jobs.wait(child["id"], timeout=300)["status"] == "done"
    line = f"{parent} (finished) -[last]-> {child['id']} (child)"

    at = open_page(app(), "job", id=child["id"])
    assert not at.exception and not errors(at)
    assert any(line in c.value for c in at.caption)

    at = app()
    at.session_state["compare_ids"] = [parent, child["id"]]
    at = open_page(at, "compare")
    assert any(f"started from: {line}" in c.value for c in at.caption)

    # "Retrain": New model opened from the job starts from its best weights.
    at = open_page(app(), "new_model", start=child["id"], dataset="digits")
    assert not at.exception and not errors(at)
    assert at.radio(key="nm_start_kind").value == "An earlier job"
    assert at.selectbox(key="nm_start_job").value == child["id"]
    assert at.selectbox(key="nm_start_ckpt").value == "best"


def test_kept_weights_files_refuse_code(home, tmp_path):
    good = tmp_path / "w.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, good)
    kept = keep_weights_file("my weights.pth", good.read_bytes(), home)
    assert kept.parent == home / "weights" and kept.name.endswith("-my_weights.pth")
    assert keep_weights_file("my weights.pth", good.read_bytes(), home) == kept  # once

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    with pytest.raises(ConfigError, match="refused: it holds code"):
        keep_weights_file("evil.pt", pickle.dumps({"a": Payload()}), home)
    with pytest.raises(ConfigError, match="is empty"):
        keep_weights_file("empty.pt", b"", home)
    assert kept_weights_files(home) == [kept]
