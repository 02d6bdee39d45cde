"""AppTest of the Evaluation tab's calibration: the reliability diagram and ECE of the stored
evaluation, and the Calibrate button, whose task fits a temperature and re-evaluates, after
which the tab shows ECE before and after temperature scaling."""

from __future__ import annotations

import pyarrow as pa

from engine import jobs
from engine.inference.predictor import Predictor
from testkit.apptest import app, open_job
from testkit.finished_jobs import finished_job


def _reliability_charts(at) -> list:
    return [c for c in at.get("vega_lite_chart") if "\"gap\"" in c.proto.spec]


def _frames(chart) -> list:
    """The data sets Streamlit sends beside a chart's spec (Arrow IPC streams)."""
    return [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]


def test_evaluation_tab_shows_the_reliability_diagram_and_ece(jobs_home):
    job_id = finished_job(jobs_home)
    [stored] = jobs.job_evaluations(job_id)
    cal = stored["calibration"]
    at = open_job(app("alice"), job_id)
    assert not at.exception, at.exception
    assert any(s.value == "Calibration" for s in at.subheader)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["ECE"] == f"{cal['ece']:.2%}"
    assert metrics["Temperature"] == "1 (uncalibrated)"
    [chart] = _reliability_charts(at)
    spec = chart.proto.spec
    assert "raw softmax (uncalibrated)" in spec and '"strokeDash"' in spec  # the diagonal
    # Every non-empty bin is a bar (its accuracy), with its count as a label.
    [bins] = [f for f in _frames(chart) if "accuracy" in f and "count" in f]
    filled = [r for r in cal["reliability"] if r["count"]]
    assert bins["count"].tolist() == [r["count"] for r in filled]
    assert bins["accuracy"].tolist() == [r["accuracy"] for r in filled]
    assert bins["count"].sum() == stored["images"]
    assert at.button(key="cal_submit").label == "Calibrate (temperature scaling)"


def test_calibrate_button_fits_t_and_the_tab_shows_ece_before_and_after(jobs_home):
    job_id = finished_job(jobs_home)
    at = open_job(app("alice"), job_id)
    at.button(key="cal_submit").click().run()
    assert not at.exception, at.exception
    [task] = jobs.list_tasks(job_id, "engine.calibrate")
    assert task["config"]["params"] == {"checkpoint": "best.pt", "job": job_id}
    done = jobs.wait(task["id"], timeout=240)
    assert done["status"] == "done", done.get("message")
    t = done["result"]["temperature"]
    assert Predictor(jobs.job_dir(job_id) / "best.pt").contract.temperature == t != 1.0

    at = open_job(app("alice"), job_id)
    assert not at.exception, at.exception
    newest = jobs.job_evaluations(job_id)[0]["calibration"]
    assert newest["temperature"] == t
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["ECE before"] == f"{newest['ece_raw']:.2%}"
    assert metrics["ECE after"] == f"{newest['ece']:.2%}"
    assert metrics["Temperature"] == f"{t:.3f}"
    [chart] = _reliability_charts(at)
    assert "raw (T = 1)" in chart.proto.spec and "temperature-scaled" in chart.proto.spec
    assert at.button(key="cal_submit").label == "Calibrate again"


def test_classify_page_shows_calibrated_confidence_next_to_raw():
    import numpy as np

    from dashboard.views.classify import confidence_text, uploads_table
    from engine.inference.results import Prediction
    from engine.service.classify import Classified

    seen = np.zeros((28, 28, 1), np.uint8)
    plain = Prediction([("7", 0.993)], np.array([0.007, 0.993]), seen)
    scaled = Prediction([("7", 0.912)], np.array([0.088, 0.912]), seen,
                        raw=np.array([0.007, 0.993]))
    assert confidence_text(plain) == "99.3% confidence"
    assert confidence_text(scaled) == "91.2% calibrated · 99.3% raw"
    table = uploads_table([Classified("a.png", "pytorch-cpu", True, "auto", scaled)])
    assert table["confidence"].tolist() == ["91.2% (raw 99.3%)"]
