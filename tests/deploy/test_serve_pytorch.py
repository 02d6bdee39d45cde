"""The server's pytorch backend: a run's checkpoint in PyTorch (a GPU without TensorRT), answering
as the bundle's ONNX model does, and refusing what it cannot serve in one line."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

from testkit import trained_digits
from trt.serve import ServeConfig, ServedModel, create_app

ROOT = Path(__file__).resolve().parents[2]
digits_run = trained_digits.digits_run
digits_bundle = trained_digits.digits_bundle
digit_images = trained_digits.digit_images


@pytest.fixture(scope="module")
def torch_model(digits_run, digits_home) -> ServedModel:
    return ServedModel(digits_run, backend="pytorch", name="lenet", device="cpu",
                       home=digits_home)


@pytest.fixture(scope="module")
def ort_model(digits_bundle) -> ServedModel:
    return ServedModel(digits_bundle, backend="onnxruntime", name="lenet")


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def rows_of(model: ServedModel, images: list[np.ndarray]) -> np.ndarray:
    return model.bundle.contract.normalize(np.stack([model.bundle.prepare(im) for im in images]))


def test_pytorch_backend_answers_as_onnxruntime(torch_model, ort_model, digit_images):
    images, labels = digit_images
    assert torch_model.backend == "pytorch-cpu"
    assert torch_model.describe_backend() == (
        "pytorch-cpu (TensorRT not used: PyTorch was asked for)")
    rows = rows_of(torch_model, images)
    np.testing.assert_allclose(torch_model.run(rows), ort_model.run(rows), atol=1e-4)

    with TestClient(create_app(torch_model, ServeConfig(max_batch=8, max_delay_ms=2))) as c:
        meta = c.get("/v2/models/lenet").json()
        assert meta["platform"] == "digits-studio/pytorch-cpu"
        body = {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                            "data": rows.ravel().tolist()}]}
        r = c.post("/v2/models/lenet/infer", json=body)
        assert r.status_code == 200, r.text
        got = np.asarray(r.json()["outputs"][0]["data"], np.float32).reshape(len(images), -1)
        np.testing.assert_allclose(got, ort_model.run(rows), atol=1e-4)
        answer = c.post("/classify", files=[("file", ("a.png", png(images[0]), "image/png"))])
        answer = answer.json()
    [ort_answer] = ort_model.results(ort_model.run(rows[:1]), 5)
    assert answer["results"][0]["label"] == ort_answer["label"]
    assert answer["results"][0]["confidence"] == pytest.approx(ort_answer["confidence"],
                                                               abs=1e-4)


def test_pytorch_backend_refuses_what_it_cannot_run(digits_run, digits_bundle, digits_home):
    with pytest.raises(ValueError, match="give the run folder or its .pt, not the bundle"):
        ServedModel(digits_bundle, backend="pytorch")
    with pytest.raises(ValueError, match="for the pytorch backend only"):
        ServedModel(digits_bundle, backend="onnxruntime", device="cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        ServedModel(digits_run, backend="pytorch", device="gpu", home=digits_home)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda' asked for, but no NVIDIA GPU is available"):
            ServedModel(digits_run, backend="pytorch", device="cuda", home=digits_home)
    with pytest.raises(FileNotFoundError):
        ServedModel(digits_run / "nowhere", backend="pytorch")


def test_pytorch_backend_refuses_a_checkpoint_that_does_not_match_the_bundle(
        digits_run, digits_bundle):
    from trt.bundle import Bundle
    from trt.runtime import TorchRunner

    runner = TorchRunner(digits_run, "cpu")
    runner.predictor.classes = [*runner.predictor.classes[:-1], "not-a-digit"]
    with pytest.raises(ValueError, match="was not made from checkpoint best.pt"):
        Bundle(digits_bundle, runner=runner)


def test_serve_cli_with_the_pytorch_backend(digits_run, digits_bundle, digit_images):
    proc = subprocess.Popen([sys.executable, "-m", "trt", "serve", str(digits_run), "--port", "0",
                             "--backend", "pytorch", "--device", "cpu"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
        assert "[pytorch-cpu (TensorRT not used: PyTorch was asked for); dynamic batching" \
               in banner, banner + proc.stderr.read()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    bad = subprocess.run([sys.executable, "-m", "trt", "serve", str(digits_bundle), "--backend",
                          "pytorch"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
    [line] = bad.stderr.strip().splitlines()
    assert "give the run folder" in line and "Traceback" not in bad.stderr
