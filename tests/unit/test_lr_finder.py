"""The learning-rate range test (issue 27 item 4): the loop on a model whose good range is
known, divergence, bad settings, the real pipeline on the offline digits, and the CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.training import ConfigError, TrainConfig
from engine.training.lr_finder import find_lr, lr_at, range_test, suggest

ROOT = Path(__file__).resolve().parents[2]


def _separable(n: int = 512):
    """Two well-separated Gaussian blobs, one-hot targets, and the top eigenvalue of the
    mean-squared-error loss's Hessian for a linear model on them (SGD diverges above 2/it)."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.5 + (y[:, None] * 2 - 1) * torch.tensor([2.0, 1.0])
    target = F.one_hot(y, 2).float()
    xa = torch.cat([x, torch.ones(n, 1)], 1).double().numpy()
    top = float(np.linalg.eigvalsh(2 / (n * 2) * xa.T @ xa).max())  # mse_loss means over n*2
    return x, target, top


def _trainer(x, target, seed: int = 0, batch: int = 64):
    """A fresh linear model and a function doing one SGD step at a given rate."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    gen = torch.Generator().manual_seed(1)

    def step(lr: float) -> float:
        idx = torch.randperm(len(x), generator=gen)[:batch]
        for group in opt.param_groups:
            group["lr"] = lr
        loss = F.mse_loss(model(x[idx]), target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return model, step


@pytest.mark.parametrize("seed", [0, 3, 8])
def test_suggestion_lies_where_the_loss_falls_fastest(seed):
    x, target, top = _separable()
    result = range_test(_trainer(x, target, seed)[1])
    # Independently of the finder: train at fixed rates from the same start for 20 steps, and
    # call good the rates whose loss fell by at least 90% of the most any rate made it fall.
    grid = np.logspace(-4, 1, 21)
    final = []
    for lr in grid:
        model, step = _trainer(x, target, seed)
        with torch.no_grad():
            start = F.mse_loss(model(x), target).item()
        for _ in range(20):
            step(float(lr))
        with torch.no_grad():
            final.append(F.mse_loss(model(x), target).item())
    fall = start - np.nan_to_num(np.asarray(final), nan=np.inf, posinf=np.inf)
    good = grid[fall >= 0.9 * fall.max()]
    assert len(good) >= 2 and good.max() < 2 / top
    # Inside it, give or take the grid's spacing (a quarter of a decade).
    pitch = grid[1] / grid[0]
    assert good.min() / pitch <= result.suggestion <= good.max(), (result.suggestion, good)
    assert result.suggestion < 2 / top  # below the rate where SGD on this quadratic diverges
    assert good.min() / pitch <= result.min_div10 <= good.max()
    # Diverged, and not before the theory says it can.
    assert result.stopped == "diverged" and len(result.lrs) < result.steps
    assert result.lrs[-1] > 1 / top
    assert result.losses[-1] > 4 * min(result.losses)


def test_divergence_stops_the_test_early():
    calls: list[float] = []

    def step(lr: float) -> float:  # flat, then a blow-up once the rate passes 1e-3
        calls.append(lr)
        return 1.0 if lr <= 1e-3 else 100.0

    result = range_test(step, steps=100)
    first_high = next(i for i in range(100) if lr_at(i, 100, 1e-7, 10) > 1e-3)
    assert len(calls) == first_high + 1 and result.stopped == "diverged"
    assert result.suggestion is None  # the loss never fell: nothing to suggest
    nan = range_test(lambda lr: math.nan if lr > 1e-5 else 2.0, steps=50)
    assert nan.stopped == "diverged" and all(lr <= 1e-5 for lr in nan.lrs)


def test_the_ramp_and_the_steepest_point():
    assert lr_at(0, 100, 1e-7, 10) == pytest.approx(1e-7)
    assert lr_at(99, 100, 1e-7, 10) == pytest.approx(10)
    lrs = list(np.logspace(-6, 0, 61))
    # A loss that falls fastest (in log rate) at 1e-3, lowest at 1e-1.
    losses = [2 - math.tanh(2 * (math.log10(lr) + 3)) + (0.5 if lr > 0.1 else 0) for lr in lrs]
    steep, lowest = suggest(lrs, losses)
    assert steep == pytest.approx(1e-3, rel=0.3) and lowest == pytest.approx(0.1, rel=0.3)
    assert suggest(lrs[:3], losses[:3]) == (None, None)  # too short to read


@pytest.mark.parametrize("kwargs, words", [
    ({"start_lr": 0.0}, "start learning rate must be a positive number"),
    ({"end_lr": 1e-9}, "end learning rate must be above the start"),
    ({"steps": 3}, "steps must be a whole number from 10"),
    ({"smoothing": 1.0}, "smoothing must be a number in [0, 1)"),
    ({"diverge": 1.0}, "divergence factor must be a number above 1"),
])
def test_bad_settings_are_refused(kwargs, words):
    with pytest.raises(ConfigError, match=None) as e:
        range_test(lambda lr: 1.0, **kwargs)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_find_lr_on_digits_writes_nothing(digits_home):
    before = sorted(p.relative_to(digits_home) for p in digits_home.rglob("*"))
    cfg = TrainConfig(dataset="digits", network="lenet", batch_size=32, device="cpu",
                      lr_policy="cosine", warmup_epochs=1.0)
    seen: list[tuple[int, float]] = []
    result = find_lr(cfg, home=digits_home, steps=30, progress=lambda s, n, lr, loss:
                     seen.append((s, lr)))
    assert [s for s, _ in seen] == list(range(1, len(result.lrs) + 1))
    assert [lr for _, lr in seen] == result.lrs  # the ramp, not the config's policy
    assert result.stopped == "diverged" and result.lrs[-1] < 10
    assert result.suggestion is not None and 1e-5 < result.suggestion < 1
    assert result.extra["train_images"] > 1000 and result.extra["device"] == "cpu"
    assert cfg.lr == 0.01 and cfg.lr_policy == "cosine"  # the caller's config is untouched
    again = find_lr(cfg, home=digits_home, steps=30)
    assert again.raw_losses == result.raw_losses  # seeded: the same curve twice on the CPU
    assert sorted(p.relative_to(digits_home) for p in digits_home.rglob("*")) == before


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", "lr-find", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "STUDIO_HOME": str(home)})


def test_cli_prints_the_suggestion(digits_home):
    p = _cli(digits_home, "--dataset", "digits", "--batch-size", "32", "--steps", "30",
             "--device", "cpu")
    assert p.returncode == 0, p.stderr
    lines = dict(line.split(": ", 1) for line in p.stdout.strip().splitlines())
    suggested = float(lines["suggested learning rate (steepest descent)"])
    assert 1e-5 < suggested < 1 and float(lines["minimum / 10"]) > 0
    assert lines["stopped"].startswith("diverged at step")

    bad = _cli(digits_home, "--dataset", "digits", "--start-lr", "1", "--end-lr", "0.1")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == ("error: the end learning rate must be above the start (1), "
                                  "not 0.1")
    missing = _cli(digits_home, "--steps", "20")
    assert missing.returncode == 2 and "--dataset is required" in missing.stderr
