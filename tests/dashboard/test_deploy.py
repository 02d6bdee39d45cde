"""AppTest of the Deploy page and of the ONNX Runtime and TensorRT classify backends, on a LeNet
trained in the foreground and deployed by the trt tasks' own functions (real ONNX Runtime, real
tensorrt_rtx builds on the CPU)."""

from __future__ import annotations

import io
import shutil
import zipfile
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from dashboard.views import classify as classify_view
from engine import jobs
from engine.datasets import open_dataset
from engine.inference import backends as inference_backends
from engine.inference import classify as cl
from engine.state import store
from testkit.apptest import app, open_page
from testkit.finished_jobs import trained_job
from trt import backends, layout, tasks
from trt.layout import variant_path
from trt.runtime import NeedsGPU
from trt.variants import calibration_batch, to_int8

pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed")





def torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.fixture(scope="module")
def deployed(digits_home, tmp_path_factory) -> tuple[Path, str]:
    """A workspace whose job went through every deploy step. Its int8 variant is replaced by
    one with int32-quantized biases, which TensorRT's parser really refuses, so the engines
    table has a refusal with the library's words."""
    home = tmp_path_factory.mktemp("deploy") / "workspace"
    shutil.copytree(digits_home, home)
    job_id = trained_job(home)
    params, quiet = {"job": job_id}, (lambda f, m: None)
    tasks.export(params, quiet, home)
    fp32 = layout.onnx_path(jobs.job_dir(job_id, home))
    calib = calibration_batch(open_dataset("digits", home=home), 64)
    to_int8(fp32, variant_path(fp32, "int8"), calib, quantize_bias=True)
    tasks.build(params | {"max_batch": 64, "workspace_mb": 256}, quiet, home)
    tasks.bench(params | {"batches": [1, 8], "seconds": 0.05}, quiet, home)
    tasks.bundle(params | {"variants": ["fp32"], "engines": ["fp32"]}, quiet, home)
    return home, job_id


@pytest.fixture
def deployed_home(deployed, jobs_home) -> tuple[Path, str]:
    """The deployed workspace copied into this test's jobs_home (whose processes are killed
    at the end, as the Export button starts a scheduler)."""
    src, job_id = deployed
    shutil.copytree(src, jobs_home, dirs_exist_ok=True)
    return jobs_home, job_id


def test_no_model_yet(jobs_home):
    at = open_page(app(), "deploy")
    assert not at.exception, at.exception
    assert any("No trained model" in i.value for i in at.info)


def test_fresh_job_export_button_queues_a_task_and_later_steps_wait(jobs_home):
    job_id = trained_job(jobs_home)
    # Before any export, Classify offers PyTorch only, says why, and links here.
    at = open_page(app(), "classify", job=job_id)
    assert at.selectbox(key="cl_backend").options == ["PyTorch (CPU)"] or torch_cuda()
    assert any("ONNX Runtime (CPU) is not available: no ONNX export" in c.value
               for c in at.caption)
    assert any(link.proto.page.endswith("deploy") for link in at.get("page_link"))
    at = open_page(app(), "deploy", id=job_id)
    assert not at.exception, at.exception
    assert at.selectbox(key="dp_job").value == job_id
    captions = " ".join(c.value for c in at.caption)
    assert "Export the model first" in captions
    later = [b for b in at.button if b.label in ("Build engines", "Benchmark", "Bundle")]
    assert len(later) == 3 and all(b.disabled for b in later)
    assert not at.get("download_button") and not at.dataframe
    at.button(key="dp_export").click().run()
    assert not at.exception, at.exception
    [task] = jobs.list_tasks(job_id, "trt.export")
    assert task["config"]["params"]["job"] == job_id and task["owner"] == "alice"
    assert task["status"] in ("queued", "running", "done")
    # A worker runs the export; once done, a reload shows its check and the variants.
    done = jobs.wait(task["id"], timeout=300)
    assert done["status"] == "done", done.get("message")
    at = open_page(app(), "deploy", id=job_id)
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Top-1 agreement"] == "100.00%"
    assert any(link.proto.page.endswith("classify") for link in at.get("page_link"))
    assert any("Δ vs FP32 (points)" in d.value.columns for d in at.dataframe)
    assert not at.button(key="dp_export").disabled and at.button(key="dp_export").label == \
        "Export again"


def test_queued_step_shows_progress_and_can_be_cancelled(jobs_home):
    job_id = trained_job(jobs_home)
    task = jobs.submit_task("trt.export", {}, owner="alice", parent=job_id,
                            start_scheduler=False)  # no worker: it stays queued
    at = open_page(app(), "deploy", id=job_id)
    assert not at.exception, at.exception
    [bar] = at.get("progress")
    assert "queued" in bar.proto.text
    assert at.button(key="dp_export").disabled  # one export at a time
    at = open_page(app("bob"), "deploy", id=job_id)
    at.button(key="dp_cancel_trt.export").click().run()
    assert any("belongs to alice" in e.value for e in at.error)
    assert jobs.get_job(task)["status"] == "queued"
    at = open_page(app(), "deploy", id=job_id)
    at.button(key="dp_cancel_trt.export").click().run()
    assert not at.exception, at.exception
    assert jobs.get_job(task)["status"] == "cancelled"
    assert any("trt.export cancelled" in w.value for w in at.warning)
    assert not at.button(key="dp_export").disabled


def test_page_shows_every_step(deployed_home):
    home, job_id = deployed_home
    at = open_page(app(), "deploy", id=job_id)
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Top-1 agreement"] == "100.00%"
    assert float(metrics["Max |logit difference|"]) < 1e-3
    tables = [d.value for d in at.dataframe]
    [variants] = [t for t in tables if "Δ vs FP32 (points)" in t.columns]
    assert variants["precision"].tolist() == ["FP32", "FP16", "INT8"]
    assert variants["Δ vs FP32 (points)"].iloc[0] == 0
    assert variants["accuracy %"].iloc[0] > 80
    [engines] = [t for t in tables if "build s" in t.columns]
    status = dict(zip(engines["precision"], engines["status"], strict=True))
    assert status == {"FP32": "built", "FP16": "built", "INT8": "refused"}
    int8 = engines.set_index("precision").loc["INT8"]
    assert "could not parse" in int8["reason"] and "Int32" in int8["reason"]
    assert engines.set_index("precision").loc["FP32", "library"].startswith("tensorrt")
    assert any("INT8 refused" in w.value for w in at.warning)
    [bench] = [t for t in tables if "p50 ms" in t.columns]
    assert set(bench["backend"]) == {"pytorch-cpu", "onnxruntime-cpu"}
    assert sorted(set(bench["batch"])) == [1, 8]
    assert len(at.get("vega_lite_chart")) == 2  # latency and throughput
    [download] = at.get("download_button")
    assert "bundle.zip" in download.proto.label
    steps = [b for b in at.button if b.label in ("Build engines", "Benchmark", "Bundle")]
    assert len(steps) == 3 and not any(b.disabled for b in steps)


def test_failed_step_shows_the_jobs_message(deployed_home):
    home, job_id = deployed_home
    task = jobs.submit_task("trt.build", {}, parent=job_id, start_scheduler=False)
    with closing(store.connect()) as conn, store.transaction(conn):
        store.update_job(conn, task, status="failed", reason="error",
                         message="FileNotFoundError: export the model to ONNX first")
    at = open_page(app(), "deploy", id=job_id)
    assert not at.exception, at.exception
    assert any("trt.build failed" in e.value and "export the model to ONNX first" in e.value
               for e in at.error)


def test_bundle_zip_holds_the_engine(deployed):
    home, job_id = deployed
    with zipfile.ZipFile(io.BytesIO((layout.bundle_path(jobs.job_dir(job_id, home)))
                                    .read_bytes())) as z:
        names = z.namelist()
    assert any(n.endswith(".engine") for n in names)
    assert any(n.endswith(".onnx") for n in names)


def test_onnxruntime_backend_agrees_with_torch(deployed):
    home, job_id = deployed
    run = jobs.job_dir(job_id, home)
    ds = open_dataset("digits", home=home)
    index = np.sort(ds.split("test")[:16])
    images = np.asarray(ds.images[index])
    torch_backend = inference_backends.TorchBackend(run / "best.pt")
    ort_backend = backends.OnnxBackend(run / "best.pt")
    assert ort_backend.classes == torch_backend.classes
    expected = torch_backend.probabilities(images)
    got = ort_backend.probabilities(images)
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert np.abs(got - expected).max() < 1e-4
    # Through the classify path (prepare, then classify) for a few single images.
    for image in images[:4]:
        a = cl.classify(torch_backend, image[..., 0], digit=False)
        b = cl.classify(ort_backend, image[..., 0], digit=False)
        assert a.label == b.label


def test_backend_cache_key_follows_the_export(deployed, tmp_path):
    home, job_id = deployed
    ckpt = jobs.job_dir(job_id, home) / "best.pt"
    assert backends.cache_key("pytorch-cpu", ckpt) == {}
    before = backends.cache_key("onnxruntime-cpu", ckpt)["stamp"]
    onnx = layout.onnx_path(jobs.job_dir(job_id, home))
    copy = tmp_path / "model.onnx"
    shutil.copy2(onnx, copy)
    try:
        onnx.write_bytes(onnx.read_bytes())  # a re-export: same graph, new file
        assert backends.cache_key("onnxruntime-cpu", ckpt)["stamp"] > before
    finally:
        shutil.copy2(copy, onnx)


def test_backend_choices_explain_tensorrt_needs_a_gpu(deployed):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: tests/gpu covers the runtime")
    home, job_id = deployed
    ckpt = str(jobs.job_dir(job_id, home) / "best.pt")
    backends.register()
    usable, why = classify_view.backend_choices(ckpt)
    assert "onnxruntime-cpu" in usable and "pytorch-cpu" in usable
    assert "tensorrt" not in usable
    assert "needs an NVIDIA GPU" in why["TensorRT (NVIDIA GPU)"]
    with pytest.raises(NeedsGPU, match="needs an NVIDIA GPU"):
        inference_backends.get_backend("tensorrt", ckpt)
    # Another checkpoint than the exported one: ONNX Runtime says why it cannot stand in.
    epoch = jobs.job_dir(job_id, home) / "checkpoints" / "epoch-1.pt"
    if epoch.exists():
        assert "export is of best.pt" in backends.unavailable_reason("onnxruntime-cpu", epoch)


def test_classify_page_offers_onnxruntime_and_says_why_not_tensorrt(deployed_home):
    import torch

    home, job_id = deployed_home
    at = open_page(app(), "classify", job=job_id)
    assert not at.exception, at.exception
    options = at.selectbox(key="cl_backend").options
    assert "ONNX Runtime (CPU)" in options
    if not torch.cuda.is_available():
        assert "TensorRT (NVIDIA GPU)" not in options
        assert any("TensorRT (NVIDIA GPU) is not available" in c.value
                   and "needs an NVIDIA GPU" in c.value for c in at.caption)
    at.selectbox(key="cl_backend").set_value("onnxruntime-cpu").run()
    assert not at.exception, at.exception
    at.session_state[classify_view.CANVAS_STAND_IN] = _draw_one()
    at.run()
    assert not at.exception, at.exception
    [pred] = [m for m in at.metric if m.label == "Prediction"]
    assert pred.value == "1"
    # Inside-the-model views stay, from PyTorch on the same checkpoint, and say so (issue 13.16).
    assert any("came from onnxruntime-cpu" in i.value and "PyTorch running the same checkpoint"
               in i.value for i in at.info)


def _draw_one() -> np.ndarray:
    from testkit.drawings import draw_one

    return draw_one("MNIST")
