"""GPU-only: the server on TensorRT, and TensorRT's per-layer profile. Run with
`pytest tests/gpu`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs an NVIDIA GPU with CUDA (torch.cuda.is_available() is False)"),
]


@pytest.fixture(scope="module")
def engine_bundle(mnist_lenet, mnist_sample_home, tmp_path_factory):
    from trt.builder import build_engine
    from trt.bundle import make_bundle
    from trt.library import tensorrt_available

    if not tensorrt_available():
        pytest.skip("no TensorRT library (tensorrt or tensorrt_rtx) is installed")
    run_dir, _ = mnist_lenet
    out = tmp_path_factory.mktemp("serve-gpu")
    bundle = out / "bundle.zip"
    make_bundle(run_dir, bundle, home=mnist_sample_home)
    engine = out / "fp32.engine"
    build_engine(run_dir / "exports" / "model.onnx", engine, max_batch=64)
    with_engine = out / "with-engine.zip"
    make_bundle(run_dir, with_engine, engines=[engine], home=mnist_sample_home)
    return bundle, with_engine, engine


def test_server_runs_tensorrt_and_answers_as_onnxruntime(engine_bundle):
    from starlette.testclient import TestClient

    from trt.serve import ServeConfig, ServedModel, create_app

    _, with_engine, _ = engine_bundle
    trt_model = ServedModel(with_engine, backend="tensorrt", name="lenet")
    ort_model = ServedModel(with_engine, backend="onnxruntime", name="lenet")
    assert trt_model.backend == "tensorrt" and trt_model.fallback_reason is None
    x = np.random.default_rng(0).standard_normal((8, 1, 28, 28)).astype(np.float32)
    body = {"inputs": [{"name": "input", "shape": [8, 1, 28, 28], "datatype": "FP32",
                        "data": x.ravel().tolist()}]}
    with TestClient(create_app(trt_model, ServeConfig(max_batch=8))) as c:
        r = c.post("/v2/models/lenet/infer", json=body)
    assert r.status_code == 200, r.text
    got = np.asarray(r.json()["outputs"][0]["data"], np.float32).reshape(8, 10)
    assert np.abs(got - ort_model.run(x)).max() < 1e-2


def test_tensorrt_layer_profile(engine_bundle):
    from trt.damage import tensorrt_profile

    rows = tensorrt_profile(engine_bundle[2], batch=8, runs=5)
    assert rows and all(r["ms_per_run"] >= 0 for r in rows)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
