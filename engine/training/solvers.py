"""Solvers by name: the optimizers DIGITS offered, plus AdamW."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from engine.training.config import TrainConfig


def make_optimizer(cfg: TrainConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    lr, wd = cfg.lr, cfg.weight_decay
    s = cfg.solver
    if s in ("sgd", "nesterov"):
        nesterov = s == "nesterov"
        # Nesterov needs momentum; fall back to the usual 0.9 when none is given.
        momentum = cfg.momentum or (0.9 if nesterov else 0.0)
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd,
                               nesterov=nesterov)
    if s == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if s == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if s == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)
    if s == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    if s == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)
    raise ValueError(f"unknown solver {s!r}")
