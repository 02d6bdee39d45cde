"""GPU-only: a temperature-scaled checkpoint gives the same calibrated probabilities on CUDA
(PyTorch, and TensorRT where a library runs on this GPU) as on the CPU. `pytest tests/gpu`."""

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


def test_calibrated_probabilities_agree_on_the_gpu(mnist_lenet, mnist_sample_home, tmp_path):
    from engine.evaluation.calibration import set_temperature
    from engine.inference.backends import TorchBackend
    from trt.runtime import tensorrt_unusable_reason

    run = tmp_path / "run"
    shutil.copytree(mnist_lenet[0], run)
    set_temperature(run / "best.pt", 2.5)
    ds = open_dataset("mnist-sample", home=mnist_sample_home)
    images = np.asarray(ds.images[np.sort(ds.split("test")[:256])])
    cpu = TorchBackend(run / "best.pt", device="cpu")
    cuda = TorchBackend(run / "best.pt", device="cuda")
    assert cuda.contract.temperature == 2.5
    want, raw = cpu.probabilities(images), cpu.probabilities(images, calibrated=False)
    assert np.abs(want - raw).max() > 1e-2
    np.testing.assert_allclose(cuda.probabilities(images), want, atol=1e-4, rtol=0)
    np.testing.assert_allclose(cuda.probabilities(images, calibrated=False), raw, atol=1e-4,
                               rtol=0)
    why = tensorrt_unusable_reason()
    if why:
        pytest.skip(f"PyTorch CUDA agrees; TensorRT not checked: {why}")
    from trt import backends
    from trt.builder import build_engine
    from trt.onnx_export import export_onnx

    onnx = run / "exports" / "model.onnx"
    export_onnx(run, onnx, check_images=100, home=mnist_sample_home)
    build_engine(onnx, run / "exports" / "engines" / "fp32.engine", max_batch=256)
    got = backends.TensorRTBackend(run / "best.pt").probabilities(images)
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=0)
