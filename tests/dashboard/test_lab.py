"""AppTest of the Lab page (the guided lab), the Probe boards page's bulk upload, thumbnails
and score row, and New model's one-click recipe. Jobs are trained in-process (the scheduler is
not started), so the tests stay short."""

from __future__ import annotations

import shutil

import pytest

from engine import jobs
from engine.evaluation import probes
from engine.lab import guide as lab
from testkit.apptest import app, errors, open_page
from testkit.digit_images import digit_photo, zip_of
from testkit.finished_jobs import finish_queued


@pytest.fixture
def no_scheduler(monkeypatch):
    """Jobs stay queued; the lab's datasets, which a worker builds (test_lab checks that), are
    built here instead, since no scheduler starts that worker."""
    from engine.datasets import create_dataset

    monkeypatch.setattr("engine.jobs.api.ensure_scheduler", lambda home=None, **kw: 0)
    monkeypatch.setattr("engine.lab.guide.build_dataset_in_worker", create_dataset)


def test_lab_signed_out():
    at = open_page(app(None), "lab")
    assert not at.exception
    assert any("Sign in" in w.value for w in at.warning)


def test_lab_guided_path(home, no_scheduler):
    at = open_page(app(), "lab")
    assert not at.exception and not errors(at)
    assert [b.label for b in at.button if b.label.startswith("Run step")] == [
        f"Run step {n}" for n in range(1, 5)]
    assert any("0 of 4 experiments done" in str(p.proto.text) for p in at.get("progress"))
    # Closed, a step's settings draw no widget (the page's largest cost); open, they do.
    assert not at.get("number_input")
    for step in ("small", "wide"):
        at.session_state[f"lab_{step}_sample_open"] = True
    at.run()
    # Pre-filled and editable: the small dataset's cap, the wide step's network.
    assert at.number_input(key="lab_small_sample_max").value == 100
    assert at.selectbox(key="lab_wide_sample_net").value == "lenet-wide"
    at.number_input(key="lab_small_sample_epochs").set_value(1).run()
    # Each step says what Run will use, edits included.
    runs = [c.value for c in at.caption if c.value.startswith("Runs ")]
    assert len(runs) == 4 and runs[0].startswith("Runs lenet for 1 epoch (batch ")
    assert runs[1].startswith("Runs lenet for 10 epochs")
    at.button(key="lab_run_small").click().run()
    assert not at.exception and not errors(at)
    assert any("Step 1 queued" in s.value for s in at.success)
    [state] = [s for s in lab.lab_state("alice") if s.job]
    assert state.step.key == "small" and state.job["config"]["epochs"] == 1
    assert at.button(key="lab_run_small").disabled  # no second run while it is queued

    # The user's own photos, labels from their names.
    at.file_uploader(key="lab_bulk_files_0").set_value(
        [(f"{d}_photo.png", digit_photo(d), "image/png") for d in (1, 4, 7)])
    at.run()
    assert not at.exception
    assert at.selectbox(key="lab_bulk_polarity").value == "as-is"
    next(b for b in at.button if b.label == "Add 3 images to the board").click().run()
    assert not at.exception and not errors(at)
    board = lab.lab_board("alice", create=False)
    assert [p["label"] for p in probes.list_probes(board, "alice")] == ["1", "4", "7"]
    assert any("The table fills in" in i.value for i in at.info)

    finish_queued(home, state.job["id"])
    at.run()
    assert not at.exception and not errors(at)
    assert any("1 of 4 experiments done" in str(p.proto.text) for p in at.get("progress"))
    assert any("✅ done · held-out accuracy" in m.value for m in at.markdown)
    scores, table = at.dataframe[0].value, at.dataframe[1].value
    assert list(scores.columns) == ["1. Small dataset"]
    assert scores.iloc[0, 0].endswith("/3 (" + scores.iloc[0, 0].split("(")[1])
    assert table["label"].tolist() == ["1", "4", "7"]
    assert table["thumbnail"].str.startswith("data:image/png;base64,").all()
    assert any("Board score per experiment" in c.proto.spec for c in at.get("vega_lite_chart"))
    assert any("Still to come" in c.value for c in at.caption)
    assert at.button(key="lab_run_small").label == "Run step 1 again"


def test_lab_settings_keep_their_edits_when_closed(home, no_scheduler):
    """Streamlit forgets the widgets of a closed expander; the edits must not go with them."""
    at = open_page(app(), "lab")
    at.session_state["lab_small_sample_open"] = True
    at.run()
    at.number_input(key="lab_small_sample_epochs").set_value(3)
    at.text_input(key="lab_small_sample_ds").set_value("my-small").run()
    at.session_state["lab_small_sample_open"] = False
    at.run()
    assert not at.exception and not errors(at)
    assert not at.get("number_input")
    runs = [c.value for c in at.caption if c.value.startswith("Runs ")]
    assert runs[0].startswith("Runs lenet for 3 epochs") and runs[0].endswith("on my-small.")
    at.session_state["lab_small_sample_open"] = True
    at.run()  # reopened: the widgets show the edits, not the pre-filled values
    assert at.number_input(key="lab_small_sample_epochs").value == 3
    assert at.text_input(key="lab_small_sample_ds").value == "my-small"
    at.session_state["lab_small_sample_open"] = False
    at.run()
    at.button(key="lab_run_small").click().run()
    assert not at.exception and not errors(at)
    [state] = [s for s in lab.lab_state("alice") if s.job]
    assert state.job["config"]["epochs"] == 3


def test_probe_boards_bulk_upload(home, digits_home, no_scheduler):
    from tests.unit.test_probes import trained_job

    shutil.rmtree(home)
    shutil.copytree(digits_home, home)
    trained_job(home, "lenet-1", epochs=1)
    board = probes.create_board("photos", "alice")
    at = open_page(app(), "probes")
    assert not at.exception and not errors(at)
    key = f"probes_bulk_{board}"
    at.file_uploader(key=f"{key}_files_0").set_value([
        ("digits.zip", zip_of({"1/a.png": digit_photo(1), "4/b.png": digit_photo(4)}),
         "application/zip"),
        ("mystery.png", digit_photo(7), "image/png"),
        ("broken.png", b"not a png", "image/png")])
    at.run()
    assert not at.exception
    assert any("broken.png" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Add 3 images to the board").click().run()
    assert any("Nothing added: give a true label to mystery.png" in e for e in errors(at))
    assert probes.list_probes(board, "alice") == []

    at.file_uploader(key=f"{key}_files_0").set_value([
        ("digits.zip", zip_of({"1/a.png": digit_photo(1), "4/b.png": digit_photo(4)}),
         "application/zip"),
        ("7_mystery.png", digit_photo(7), "image/png")])
    at.run()
    next(b for b in at.button if b.label == "Add 3 images to the board").click().run()
    assert not at.exception and not errors(at)
    assert [p["label"] for p in probes.list_probes(board, "alice")] == ["1", "4", "7"]
    assert any("Added 3 images" in s.value for s in at.success)
    scores, table = at.dataframe[0].value, at.dataframe[1].value
    assert scores.index.tolist() == ["score"] and list(scores.columns) == ["lenet-1"]
    assert scores.iloc[0, 0].split(" ")[0].endswith("/3")
    assert table["thumbnail"].str.startswith("data:image/png;base64,").all()
    assert table["label"].tolist() == ["1", "4", "7"]

    # Others see the board and its scores, but no uploader.
    at = open_page(app("bob"), "probes")
    assert not at.exception
    assert not at.get("file_uploader")


def test_new_model_recipe_in_one_click(home, digits_home, no_scheduler):
    shutil.rmtree(home)
    shutil.copytree(digits_home, home)
    at = open_page(app(), "new_model")
    assert not at.exception and not errors(at)
    at.button(key="nm_preset_real-world-digits").click().run()
    assert not at.exception and not errors(at)
    assert at.selectbox(key="nm_network").value == "lenet-real"
    assert at.selectbox(key="nm_policy").value == "onecycle"
    assert at.slider(key="nm_invert").value == 0.5
    at.number_input(key="nm_epochs").set_value(1)  # still editable
    at.button(key="nm_submit").click().run()
    assert not at.exception and not errors(at)
    [job] = jobs.list_jobs()
    cfg = job["config"]
    assert (cfg["network"], cfg["solver"], cfg["lr_policy"], cfg["epochs"]) == (
        "lenet-real", "nesterov", "onecycle", 1)
    assert cfg["augment"]["invert"] == 0.5 and cfg["augment"]["rotation"] == 12.0
