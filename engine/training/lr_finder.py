"""The learning-rate range test (Leslie Smith, 2015; fastai's lr_find).

A throwaway copy of the network, built from its initial weights exactly as training builds it
(the same data, solver, augmentation and start weights), trains for up to `steps` mini-batches
while the learning rate grows exponentially from `start_lr` to `end_lr`. The loss is smoothed
(an exponential moving average, bias-corrected as Adam's moments are) and the test stops when
it diverges: more than `diverge` times the best smoothed loss, or not finite. Two suggestions
come from the curve: the rate where the smoothed loss falls fastest against log(rate) (the
steepest descent), and fastai's older rule, the rate of the lowest smoothed loss divided by 10.
Nothing needs restoring afterwards: the copy is discarded, no job or checkpoint is written.

range_test() is the loop alone (a step function in, a curve out), so it can be checked on a
model whose good range is known; find_lr() runs it on a TrainConfig.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.devices import parse_devices
from engine.training.config import ConfigError, TrainConfig

START_LR, END_LR, STEPS = 1e-7, 10.0, 100
SMOOTHING = 0.9  # the moving average's beta (see range_test)
DIVERGE = 4.0  # stop once the smoothed loss exceeds this many times its best
MIN_POINTS = 5  # fewer recorded steps than this give no suggestion
SKIP_START = 0.1  # the first 10% of the steps asked for are left out of the slopes
MIN_FALL = 0.01  # nor does a curve whose lowest point is less than 1% below its start

Progress = Callable[[int, int, float, float], None]  # (step, steps, lr, smoothed loss)


@dataclass
class LRFinderResult:
    """The recorded curve and the suggestions (None when the curve is too short to read)."""

    lrs: list[float]
    losses: list[float]  # smoothed
    raw_losses: list[float]
    steps: int  # the steps asked for
    stopped: str  # "diverged" (the loss ran away) or "end" (it reached end_lr)
    suggestion: float | None  # the steepest descent of the smoothed loss
    min_lr: float | None  # the rate of the lowest smoothed loss
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def min_div10(self) -> float | None:
        """fastai's earlier rule of thumb: the rate of the lowest loss, divided by 10."""
        return None if self.min_lr is None else self.min_lr / 10

    def summary(self) -> dict[str, Any]:
        """What a person reads: the suggestions and how the test ended, without the curve."""
        return {"suggested_lr": self.suggestion, "min_lr_div10": self.min_div10,
                "min_loss_lr": self.min_lr, "stopped": self.stopped,
                "steps_run": len(self.lrs), "steps": self.steps,
                "seconds": round(self.seconds, 2), **self.extra}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "lrs": self.lrs, "losses": self.losses,
                "raw_losses": self.raw_losses}


def check_settings(start_lr: float, end_lr: float, steps: int, smoothing: float,
                   diverge: float) -> None:
    """A ConfigError naming the first range-test setting that cannot work."""
    def finite(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if not (finite(start_lr) and start_lr > 0):
        raise ConfigError(f"the start learning rate must be a positive number, not {start_lr!r}")
    if not (finite(end_lr) and end_lr > start_lr):
        raise ConfigError(f"the end learning rate must be above the start ({start_lr:g}), "
                          f"not {end_lr!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 10 <= steps <= 10_000:
        raise ConfigError(f"the range test's steps must be a whole number from 10 to 10,000, "
                          f"not {steps!r}")
    if not (finite(smoothing) and 0 <= smoothing < 1):
        raise ConfigError(f"the smoothing must be a number in [0, 1), not {smoothing!r}")
    if not (finite(diverge) and diverge > 1):
        raise ConfigError(f"the divergence factor must be a number above 1, not {diverge!r}")


def lr_at(step: int, steps: int, start_lr: float, end_lr: float) -> float:
    """The rate of step `step` (0-based): exponential from start_lr (step 0) to end_lr (the
    last)."""
    return start_lr * (end_lr / start_lr) ** (step / max(steps - 1, 1))


def suggest(lrs: list[float], losses: list[float], skip_start: int = 0
            ) -> tuple[float | None, float | None]:
    """(steepest descent, lowest loss) rates of a smoothed curve; Nones when it is too short,
    no steepest point when the loss never fell.

    The slope is taken against log(rate) (the axis the rate grows along) from `skip_start` on
    (the first steps' average is of a few noisy batches: a lucky second batch would look
    like a steep fall) up to the lowest point: past it the curve climbs and its slopes say
    nothing about where to train. pytorch-lr-finder skips the same first 10%."""
    if len(lrs) < MIN_POINTS:
        return None, None
    loss = np.asarray(losses, dtype=np.float64)
    lowest = int(np.argmin(loss))
    first = min(skip_start, max(lowest - 2, 0))
    if lowest - first < 2 or loss[lowest] > (1 - MIN_FALL) * loss[0]:  # it never really fell
        return None, float(lrs[lowest])
    log_lr = np.log(np.asarray(lrs[first:lowest + 1], dtype=np.float64))
    slope = np.gradient(loss[first:lowest + 1], log_lr)
    # Not the lowest point itself: its slope is one-sided, the last step down into it.
    return float(lrs[first + int(np.argmin(slope[:-1]))]), float(lrs[lowest])


def range_test(step: Callable[[float], float], *, start_lr: float = START_LR,
               end_lr: float = END_LR, steps: int = STEPS, smoothing: float = SMOOTHING,
               diverge: float = DIVERGE, progress: Progress | None = None) -> LRFinderResult:
    """Call `step(lr)` (one optimizer step at that rate, returning its loss) at exponentially
    growing rates, recording the smoothed loss, until `steps` or divergence.

    The smoothing's beta defaults to 0.9, not fastai's 0.98: over 100 steps a 0.98 average lags
    about 49 steps, several decades of rate, which moves the steepest point to the right."""
    check_settings(start_lr, end_lr, steps, smoothing, diverge)
    t0 = time.perf_counter()
    lrs: list[float] = []
    losses: list[float] = []
    raw: list[float] = []
    avg, best, stopped = 0.0, math.inf, "end"
    for i in range(steps):
        lr = lr_at(i, steps, start_lr, end_lr)
        loss = float(step(lr))
        if not math.isfinite(loss):
            stopped = "diverged"
            break
        avg = smoothing * avg + (1 - smoothing) * loss
        smooth = avg / (1 - smoothing ** (i + 1))
        lrs.append(lr)
        losses.append(smooth)
        raw.append(loss)
        if progress is not None:
            progress(i + 1, steps, lr, smooth)
        if smooth > diverge * best:
            stopped = "diverged"
            break
        best = min(best, smooth)
    suggestion, min_lr = suggest(lrs, losses, skip_start=int(steps * SKIP_START))
    return LRFinderResult(lrs, losses, raw, steps, stopped, suggestion, min_lr,
                          time.perf_counter() - t0)


def _one_device(cfg: TrainConfig) -> str:
    """The device the test runs on: the first of a data-parallel run's (the loss curve of one
    rank at the global batch size is the same curve)."""
    request = parse_devices(cfg.device, cfg.devices)
    if request.gpus:
        return f"cuda:{request.gpus[0]}"
    return request.kind


def find_lr(cfg: TrainConfig, *, home: str | os.PathLike | None = None,
            start_lr: float = START_LR, end_lr: float = END_LR, steps: int = STEPS,
            smoothing: float = SMOOTHING, diverge: float = DIVERGE,
            progress: Progress | None = None) -> LRFinderResult:
    """The range test for a training configuration: its network, start weights, data, solver
    (momentum, weight decay), augmentation, batch size, precision and seed; the learning-rate
    policy is replaced by the test's exponential ramp. Nothing is written to the workspace."""
    import torch

    from engine.training.ranks import Ranks
    from engine.training.trainer import _setup, _step, resolve_device

    check_settings(start_lr, end_lr, steps, smoothing, diverge)
    cfg.validate()
    # The trainer's own setup on a copy: the ramp sets cfg.lr each step, with no policy on top.
    test_cfg = dataclasses.replace(cfg, lr=start_lr, lr_policy="fixed", warmup_epochs=0.0,
                                   compile=False, device=_one_device(cfg), devices=1)
    ranks = Ranks.single(resolve_device(test_cfg.device))
    with tempfile.TemporaryDirectory(prefix="lr-find-") as scratch:  # init.json, if any
        run = _setup(test_cfg, scratch, home, lambda _msg: None, False, ranks)
    run.model.train()
    batches = _endless_batches(run)

    def one_step(lr: float) -> float:
        run.cfg.lr = lr
        xb, yb = next(batches)
        loss, _ = _step(run, xb, yb, 0.0)
        return float(loss.detach().float())

    with torch.enable_grad():
        result = range_test(one_step, start_lr=start_lr, end_lr=end_lr, steps=steps,
                            smoothing=smoothing, diverge=diverge, progress=progress)
    result.extra = {"device": str(ranks.device), "batch_size": cfg.batch_size,
                    "solver": cfg.solver, "train_images": len(run.train_split)}
    return result


def _endless_batches(run: Any) -> Iterator[tuple[Any, Any]]:
    """Training batches in the trainer's shuffled order, epoch after epoch for a small
    dataset; a last short batch is skipped (its noisier loss would be a bump in the curve)."""
    import torch

    size = run.cfg.batch_size
    while True:
        perm = torch.randperm(len(run.train_split), generator=run.gen)
        full = 0
        for xb, yb in run.train_split.batches(perm, size):
            if len(yb) < size and full:
                break
            full += 1
            yield xb, yb
