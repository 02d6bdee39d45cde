"""GPU-only: training on CUDA (fp32, bf16 and fp16 mixed precision, augmentation on the device,
torch.compile, resume) and checkpoints that move between CUDA and the CPU.
Run with `pytest tests/gpu` or `bash bench/gpu_check.sh`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.inference.predictor import Predictor
from engine.training import AugmentConfig, TrainConfig, train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs an NVIDIA GPU with CUDA (torch.cuda.is_available() is False)"),
]


def _finite_history(result) -> bool:
    return all(math.isfinite(m["train_loss"]) for m in result.history)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_lenet_learns_on_cuda_in_every_precision(mnist_sample_home, tmp_path, precision):
    """The CPU promise (97.5% on the MNIST sample split in 5 epochs) holds on CUDA, within half
    a point for mixed precision and CUDA's non-deterministic kernels."""
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    cfg = TrainConfig(dataset="mnist-sample", network="lenet", epochs=5, lr=0.01, seed=0,
                      device="cuda", precision=precision)
    result = train(cfg, tmp_path / "run", home=mnist_sample_home)
    assert result.status == "done" and result.epochs_completed == 5
    assert _finite_history(result)
    assert result.held_out["accuracy"] >= 0.97, result.held_out
    assert all(m["images_per_s"] > 0 for m in result.history)


def test_augmentation_and_compile_run_on_cuda(digits_home, tmp_path):
    cfg = TrainConfig(dataset="digits", network="lenet", epochs=3, lr=0.01, seed=0,
                      device="cuda", compile=True,
                      augment=AugmentConfig(rotation=10, shift=0.1, zoom=0.1, noise=0.05))
    result = train(cfg, tmp_path / "run", home=digits_home)
    assert result.status == "done" and _finite_history(result)
    # 3 epochs of heavy augmentation: seeds give 0.866-0.916 on the CPU, so 0.85 flaked.
    assert result.held_out["accuracy"] >= 0.8, result.held_out


def test_resume_on_cuda_continues_where_it_stopped(digits_home, tmp_path):
    run = tmp_path / "run"
    first = train(TrainConfig(dataset="digits", epochs=2, seed=0, device="cuda"), run,
                  home=digits_home)
    assert first.epochs_completed == 2
    resumed = train(TrainConfig(dataset="digits", epochs=4, seed=0, device="cuda"), run,
                    resume=True, home=digits_home)
    assert resumed.epochs_completed == 4
    assert [m["epoch"] for m in resumed.history][-2:] == [3, 4]
    assert resumed.held_out["accuracy"] >= 0.9


def test_cuda_checkpoint_predicts_the_same_on_the_cpu(digits_home, tmp_path):
    from engine.datasets import open_dataset

    run = tmp_path / "run"
    train(TrainConfig(dataset="digits", epochs=3, seed=0, device="cuda"), run, home=digits_home)
    ds = open_dataset("digits", home=digits_home)
    images = np.asarray(ds.images[ds.split("test")[:64]])
    on_gpu = Predictor(run, device="cuda").probabilities(images)
    on_cpu = Predictor(run, device="cpu").probabilities(images)
    assert np.abs(on_gpu - on_cpu).max() < 1e-3
    assert (on_gpu.argmax(1) == on_cpu.argmax(1)).all()
