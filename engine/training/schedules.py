"""Learning-rate policies as functions of (fractional) epoch: the DIGITS set plus cosine,
one-cycle and a linear warm-up. One function serves training and the dashboard's preview."""

from __future__ import annotations

import bisect
import math

from engine.training.config import TrainConfig


def lr_factor(cfg: TrainConfig, t: float) -> float:
    """Multiplier of the base rate at epoch `t` (0 <= t <= epochs)."""
    T = float(cfg.epochs)
    p = cfg.lr_policy
    if p == "fixed":
        f = 1.0
    elif p == "step":
        f = cfg.gamma ** math.floor(t / cfg.step_size)
    elif p == "multistep":
        f = cfg.gamma ** bisect.bisect_right(sorted(cfg.milestones), t)
    elif p == "exp":
        f = cfg.gamma ** t
    elif p == "inv":
        f = (1.0 + cfg.gamma * t) ** (-cfg.power)
    elif p == "poly":
        f = max(0.0, 1.0 - t / T) ** cfg.power
    elif p == "sigmoid":
        f = 1.0 / (1.0 + math.exp(-cfg.gamma * (t - cfg.step_size)))
    elif p == "cosine":
        f = 0.5 * (1.0 + math.cos(math.pi * min(t, T) / T))
    elif p == "onecycle":
        f = _one_cycle(t / T)
    else:
        raise ValueError(f"unknown learning-rate policy {p!r}")
    if cfg.warmup_epochs > 0 and t < cfg.warmup_epochs:
        f *= t / cfg.warmup_epochs
    return f


def _one_cycle(x: float, peak: float = 0.3, start: float = 1 / 25, end: float = 1e-4) -> float:
    # As torch's OneCycleLR: cosine up from lr/25 to lr over the first 30%, then down to lr*1e-4.
    if x <= peak:
        return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * x / peak))
    x = min(1.0, (x - peak) / (1 - peak))
    return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * x))


def lr_schedule(cfg: TrainConfig, points_per_epoch: int = 1) -> list[tuple[float, float]]:
    """(epoch, learning rate) pairs for a preview chart."""
    n = cfg.epochs * points_per_epoch
    return [(i / points_per_epoch, cfg.lr * lr_factor(cfg, i / points_per_epoch))
            for i in range(n + 1)]
