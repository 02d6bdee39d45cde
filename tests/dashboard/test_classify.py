"""AppTest of Classify and Probe boards with a LeNet trained by the real scheduler: drawing (the
canvas stand-in), uploads, inside the model, adding to a board, the comparison table, ownership."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dashboard.views import classify as view
from engine import jobs
from engine.evaluation import probes
from engine.inference import backends
from testkit.apptest import app, open_page
from testkit.drawings import draw_one


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).convert("RGB" if fmt == "JPEG" else "RGBA").save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def trained(jobs_home) -> str:
    job_id = jobs.submit({"dataset": "digits", "network": "lenet", "epochs": 2}, owner="alice",
                         name="lenet-2")
    assert jobs.wait(job_id, timeout=300)["status"] == "done"
    return job_id


def test_no_model_yet(jobs_home):
    at = open_page(app(), "classify")
    assert not at.exception
    assert any("No trained model" in i.value for i in at.info)


def test_canvas_functions(trained):
    backend = backends.get_backend("pytorch-cpu", jobs.job_dir(trained))
    assert view.canvas_image({"objects": []}, draw_one()) is None  # no strokes yet
    assert view.canvas_image(None, None) is None
    image = view.canvas_image({"objects": [{"type": "path"}]}, draw_one())
    assert view.canvas_prediction(backend, image, "MNIST").label == "1"
    assert view.canvas_prediction(backend, draw_one("paper"), "paper").label == "1"
    blank = np.zeros((280, 280, 4), np.uint8)
    assert view.canvas_prediction(backend, blank, "MNIST") is None


def test_classify_and_board(trained):
    at = open_page(app(), "classify")
    assert not at.exception, at.exception
    assert any("Draw something" in i.value for i in at.info)
    assert at.selectbox(key="cl_backend").value == "pytorch-cpu"
    assert at.selectbox(key=f"cl_ckpt_{trained}").options[0] == "best.pt"

    at.session_state[view.CANVAS_STAND_IN] = draw_one("MNIST")
    at.run()
    assert not at.exception, at.exception
    [pred] = [m for m in at.metric if m.label == "Prediction"]
    assert pred.value == "1"
    assert len(at.get("vega_lite_chart")) == 1  # top-k bars
    stats = at.dataframe[0].value  # inside the model: activation statistics
    assert {"layer", "mean", "std", "min", "max", "zero %"} <= set(stats.columns)
    assert len(stats) == 8  # one row per LeNet layer

    at.text_input(key="cl_board_name_draw").set_value("real world")
    at.selectbox(key="cl_label_draw").set_value("1")
    next(b for b in at.button if b.label == "Add to probe board").click().run()
    assert not at.exception, at.exception
    assert any("Added to board" in s.value for s in at.success)
    [board] = probes.list_boards("alice")
    assert board["name"] == "real world" and board["probes"] == 1

    # A paper-style drawing goes onto the same (now existing) board, with a wrong label.
    at.radio(key="cl_style").set_value("paper")
    at.session_state[view.CANVAS_STAND_IN] = draw_one("paper")
    at.run()
    assert at.selectbox(key="cl_board_draw").value == board["id"]
    at.selectbox(key="cl_label_draw").set_value("7")
    next(b for b in at.button if b.label == "Add to probe board").click().run()
    [p1, p2] = probes.list_probes(board["id"], "alice")
    assert (p1["polarity"], p2["polarity"], p2["label"]) == ("as-is", "invert", "7")

    # Uploads: one image gets the full view, many a table.
    del at.session_state[view.CANVAS_STAND_IN]
    at.run()
    at.file_uploader(key="cl_upload").set_value(("one.jpg", png(draw_one("paper"), "JPEG"),
                                                 "image/jpeg"))
    at.run()
    assert not at.exception, at.exception
    assert [m.value for m in at.metric if m.label == "Prediction"] == ["1"]
    at.file_uploader(key="cl_upload").set_value([
        ("a.png", png(draw_one("MNIST")), "image/png"),
        ("b.jpg", png(draw_one("paper"), "JPEG"), "image/jpeg"),
        ("blank.png", png(np.zeros((64, 64, 3), np.uint8)), "image/png")])
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert table["file"].tolist() == ["a.png", "b.jpg", "blank.png"]
    assert table["top-1"].tolist() == ["1", "1", "—"]
    assert table["top-5"][0].count("(") == 5
    # A drawing and one upload at once: each tab has its own inside views and board form.
    at.file_uploader(key="cl_upload").set_value(("one.jpg", png(draw_one("paper"), "JPEG"),
                                                 "image/jpeg"))
    at.session_state[view.CANVAS_STAND_IN] = draw_one("MNIST")
    at.run()
    assert not at.exception, at.exception
    drawn, uploaded = [m.value for m in at.metric if m.label == "Prediction"]
    assert uploaded == "1"
    assert {"cl_zoom_draw_filters", "cl_zoom_upload_filters"} <= {s.key for s in at.selectbox}
    assert at.toggle(key="cl_cam_on").value is False  # the camera starts only when asked

    # The board: the score row (always in view), then one column per job with green/red
    # cells and a thumbnail per image, CSV.
    at = open_page(app(), "probes")
    assert not at.exception, at.exception
    scores, df = at.dataframe[0].value, at.dataframe[1].value
    assert list(df.columns) == ["thumbnail", "label", "lenet-2"]
    assert scores.loc["score", "lenet-2"] == "1/2 (50%)"
    assert df["lenet-2"].iloc[0].startswith("1 : ")
    assert at.get("download_button")
    assert [b.label for b in at.button].count("Delete") == 2
    next(b for b in at.button if b.label == "Delete").click().run()
    assert len(probes.list_probes(board["id"], "alice")) == 1

    # Bob sees the shared board but cannot change it.
    at = open_page(app("bob"), "probes")
    assert not at.exception, at.exception
    assert "Delete" not in [b.label for b in at.button]
    assert "Delete board" not in [b.label for b in at.button]
    assert any("only they can change it" in c.value for c in at.caption)
    assert at.dataframe[0].value.loc["score", "lenet-2"] == "0/1 (0%)"  # the "7" is left


def test_styler_colours(trained):
    board = probes.create_board("b", "alice")
    probes.add_probe(board, png(draw_one()), "1", "as-is", user="alice")
    probes.add_probe(board, png(draw_one()), "2", "as-is", user="alice")
    html = probes_view_html(probes.score_board(board, [trained]))
    assert "#d4edc9" in html and "#f8d0cc" in html


def probes_view_html(score) -> str:
    from dashboard.views import probes as pv

    return pv.styled(score).to_html()
