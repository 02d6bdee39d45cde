"""GPU-only: one job on several GPUs (DDP over NCCL) against one GPU, and a request for more
GPUs than the machine has. Run with `pytest tests/gpu` or `bash bench/gpu_check.sh`."""

from __future__ import annotations

import pytest
import torch

from engine.training import ConfigError, TrainConfig, load_checkpoint, train
from engine.training.distributed import run_training

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(GPUS == 0, reason="needs an NVIDIA GPU with CUDA "
                                         "(torch.cuda.is_available() is False)"),
]
# Smooth (tanh, average pooling), as in tests/test_ddp.py: rounding differences stay small.
TINY = {"name": "tiny", "layers": [
    {"type": "conv", "out": 6, "kernel": 5}, {"type": "avgpool", "kernel": 2},
    {"type": "tanh"}, {"type": "flatten"}, {"type": "linear", "out": "classes"}]}
RUN = dict(dataset="mnist-sample", network=TINY, epochs=1, lr=0.05, batch_size=64, seed=0)


def test_more_gpus_than_exist_are_refused(mnist_sample_home, tmp_path):
    with pytest.raises(ConfigError, match=f"asks for {GPUS + 1} GPUs.*this machine has {GPUS}"):
        run_training(TrainConfig(**RUN, device="cuda", devices=GPUS + 1), tmp_path / "x",
                     home=mnist_sample_home)


@pytest.mark.skipif(GPUS < 2, reason=f"needs 2 or more GPUs (this machine has {GPUS})")
def test_two_gpus_train_what_one_does_and_resume_on_one(mnist_sample_home, tmp_path):
    one = train(TrainConfig(**RUN, device="cuda:0"), tmp_path / "one", home=mnist_sample_home)
    two = run_training(TrainConfig(**RUN, device="cuda:0,1"), tmp_path / "two",
                       home=mnist_sample_home)
    a = load_checkpoint(tmp_path / "one" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "two" / "last.pt")["model"]
    for k in a:  # CUDA kernels are not bit-deterministic: a looser tolerance than the CPU's
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4)
    assert abs(two.held_out["accuracy"] - one.held_out["accuracy"]) <= 0.005
    more = train(TrainConfig(**{**RUN, "epochs": 2}, device="cuda:0"), tmp_path / "two",
                 resume=True, home=mnist_sample_home)
    assert more.status == "done" and more.epochs_completed == 2
