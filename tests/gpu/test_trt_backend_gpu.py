"""GPU-only: the Classify page's TensorRT backend answers as PyTorch does. `pytest tests/gpu`."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from engine.datasets import open_dataset

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs an NVIDIA GPU with CUDA (torch.cuda.is_available() is False)"),
]


def test_tensorrt_backend_matches_torch(request, tmp_path):
    from trt import backends
    from trt.builder import build_engine
    from trt.onnx_export import export_onnx
    from trt.runtime import tensorrt_unusable_reason

    why = tensorrt_unusable_reason()  # no library, or one that cannot run on this GPU
    if why:
        pytest.skip(why)
    mnist_lenet = request.getfixturevalue("mnist_lenet")  # trained only where TensorRT runs
    mnist_sample_home = request.getfixturevalue("mnist_sample_home")
    run = tmp_path / "run"
    shutil.copytree(mnist_lenet[0], run)  # the exports land in a copy, not the shared run
    onnx = run / "exports" / "model.onnx"
    export_onnx(run, onnx, check_images=100, home=mnist_sample_home)
    build_engine(onnx, run / "exports" / "engines" / "fp32.engine", max_batch=64)
    assert backends.unavailable_reason(backends.TENSORRT, run / "best.pt") is None
    ds = open_dataset("mnist-sample", home=mnist_sample_home)
    images = np.asarray(ds.images[np.sort(ds.split("test")[:64])])
    want = backends.TorchBackend(run / "best.pt").probabilities(images)
    got = backends.TensorRTBackend(run / "best.pt").probabilities(images)
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.99
    assert np.abs(got - want).max() < 1e-2
