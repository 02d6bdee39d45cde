"""Deploy page, issue 18 sections: serve a job's model, accuracy vs latency, imported models."""

from __future__ import annotations

import shutil

import pytest

from engine import jobs
from testkit.apptest import app, open_page
from testkit.finished_jobs import trained_job
from trt import tasks
from trt.serve import process


@pytest.fixture(scope="module")
def measured(digits_home, tmp_path_factory):
    """A workspace whose job has its damage report (fp32 and int8)."""
    home = tmp_path_factory.mktemp("serve-page") / "workspace"
    shutil.copytree(digits_home, home)
    job_id = trained_job(home)
    tasks.damage({"job": job_id, "precisions": ["fp32", "int8"], "batches": [1, 4]},
                 lambda f, m: None, home)
    return home, job_id


def test_damage_section_shows_tables_and_chart(measured, jobs_home):
    src, job_id = measured
    shutil.copytree(src, jobs_home, dirs_exist_ok=True)
    at = open_page(app(), "deploy", id=job_id)
    assert not at.exception, at.exception
    headers = [h.value for h in at.subheader]
    assert {"Serve", "Accuracy vs latency", "Bring your own model"} <= set(headers)
    frames = [d.value for d in at.dataframe]
    assert any({"Variant", "Δ vs FP32 (points)"} <= set(f.columns)
               and list(f["Variant"]) == ["fp32", "int8"]
               for f in frames)
    per_class = next(f for f in frames if "Now confused with" in f.columns)
    assert sorted(per_class["Class"]) == [str(i) for i in range(10)]
    assert at.selectbox(key="dp_damage_variant").value == "int8"
    assert at.button(key="FormSubmitter:dp_serve_form-Start server")


def test_start_and_stop_the_server_from_the_page(measured, jobs_home):
    src, job_id = measured
    shutil.copytree(src, jobs_home, dirs_exist_ok=True)
    run = jobs.job_dir(job_id, jobs_home)
    at = open_page(app(), "deploy", id=job_id)
    assert at.selectbox(key="dp_serve_backend").options == [
        "auto", "tensorrt", "onnxruntime", "pytorch"]
    at.selectbox(key="dp_serve_backend").set_value("pytorch")  # the checkpoint, in PyTorch
    try:
        at.button(key="FormSubmitter:dp_serve_form-Start server").click().run(timeout=240)
        assert not at.exception, at.exception
        info = process.status(run)
        assert info is not None
        assert info["backend"].startswith("pytorch-"), info
        assert any(info["url"] in s.value for s in at.success)
        assert any(f"{info['url']}/classify" in c.value for c in at.code)
        at.button(key="dp_serve_stop").click().run()
        assert not at.exception, at.exception
        assert process.status(run) is None
    finally:
        process.stop(run)
