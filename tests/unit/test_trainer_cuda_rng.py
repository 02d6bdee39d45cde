"""Resuming a checkpoint saved on a machine with more GPUs than this one (CPU-side, with the
CUDA calls faked): set_rng_state_all raised IndexError there."""

from __future__ import annotations

import torch

from engine.training.trainer import restore_cuda_rng


def test_resume_restores_the_gpus_both_machines_have(monkeypatch):
    restored: list[tuple[int, torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device=0: restored.append((device, state)))
    saved = [torch.full((16,), i, dtype=torch.uint8) for i in range(4)]  # saved on 4 GPUs
    restore_cuda_rng(saved)
    assert [d for d, _ in restored] == [0]
    assert torch.equal(restored[0][1], saved[0])


def test_resume_on_more_gpus_leaves_the_others_alone(monkeypatch):
    restored: list[int] = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device=0: restored.append(device))
    restore_cuda_rng([torch.zeros(16, dtype=torch.uint8)] * 2)
    assert restored == [0, 1]
