"""Issue 13 item 14: benchmark results in words with a warning for noisy cells, and bundles
that carry no workspace paths and whose README lists exactly the files they hold."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from engine import jobs
from testkit.apptest import app, open_page
from testkit.finished_jobs import finished_job
from trt import layout
from trt.bench_report import noise_warnings, summary
from trt.bundle import make_bundle

ROWS = [
    {"backend": "pytorch-cpu", "batch": 1, "p50_ms": 0.56, "p90_ms": 0.6, "p99_ms": 0.7,
     "images_per_s": 1700.0},
    {"backend": "onnxruntime-cpu", "batch": 1, "p50_ms": 0.02, "p90_ms": 0.03,
     "p99_ms": 0.272, "images_per_s": 50000.0},
    {"backend": "tensorrt", "batch": 1, "p50_ms": 0.75, "p90_ms": 0.8, "p99_ms": 0.9,
     "images_per_s": 1300.0},
    {"backend": "pytorch-cpu", "batch": 8, "p50_ms": 1.0, "p90_ms": 1.1, "p99_ms": 1.2,
     "images_per_s": 8000.0},
]


def test_summary_says_how_many_times_faster():
    lines = summary(ROWS)
    assert lines[0].startswith("ONNX Runtime (CPU) is 28x faster than PyTorch (CPU) at batch 1")
    assert lines[1].startswith("TensorRT is 1.3x slower than PyTorch (CPU) at batch 1")
    assert len(lines) == 2


def test_noisy_cells_are_named():
    [warning] = noise_warnings(ROWS)
    assert warning.startswith("ONNX Runtime (CPU) at batch 1: p99 0.3 ms is 14x its median")


@pytest.fixture(scope="module")
def trained(digits_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("report") / "workspace"
    shutil.copytree(digits_home, home)
    return home, finished_job(home, epochs=1, evaluate=False)


def test_bundle_has_no_workspace_paths_and_lists_its_files(trained, tmp_path):
    home, job_id = trained
    out = tmp_path / "bundle.zip"
    make_bundle(jobs.job_dir(job_id, home), out, variants=["fp32", "fp16"], home=home)
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        metadata = z.read("metadata.json").decode()
        readme = z.read("README.md").decode()
    assert str(home) not in metadata and str(tmp_path) not in metadata
    assert '"/' not in metadata  # no absolute path at all
    meta = json.loads(metadata)
    assert meta["run"] == job_id and set(meta["variants"]) == {"fp32", "fp16"}
    assert meta["variants"]["fp16"]["onnx"] == "model-fp16.onnx"
    assert {"model.onnx", "model-fp16.onnx"} <= names
    assert "`model.onnx`" in readme and "`model-fp16.onnx`" in readme
    assert "model-int8" not in readme and "<precision>" not in readme
    assert "engines/" not in readme  # no engine in this bundle


def test_deploy_page_speaks_in_words_and_warns_of_noise(trained, jobs_home):
    home, job_id = trained
    shutil.copytree(home, jobs_home, dirs_exist_ok=True)
    out = layout.exports_dir(jobs.job_dir(job_id, jobs_home))
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(b"placeholder")  # the steps after export are offered
    (out / "bench.json").write_text(json.dumps({"rows": ROWS, "skipped": {}, "ratios": {}}))
    at = open_page(app(), "deploy", id=job_id)
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "ONNX Runtime (CPU) is 28x faster than PyTorch (CPU) at batch 1" in text
    assert any("Noisy figures" in w.value and "ONNX Runtime (CPU) at batch 1" in w.value
               for w in at.warning)
    assert not any("vs_pytorch" in c.value for c in at.caption)
