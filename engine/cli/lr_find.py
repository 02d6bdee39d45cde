"""`python -m engine lr-find`: the learning-rate range test for the settings `train` takes.

It takes every training option (generated from TrainConfig, as `train` does) and trains a
throwaway copy for up to --steps mini-batches while the rate grows from --start-lr to
--end-lr; it prints the suggested rate and writes nothing to the workspace.
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from engine.cli.train import add_train_options, config_from_args
from engine.training.lr_finder import (
    DIVERGE,
    END_LR,
    SMOOTHING,
    START_LR,
    STEPS,
    check_settings,
    find_lr,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lr-find", help="suggest a learning rate: the range test (lr_find)",
                       description="Train a throwaway copy of the network while the learning "
                                   "rate grows exponentially; suggest the rate where the "
                                   "smoothed loss falls fastest.")
    add_train_options(p)
    p.add_argument("--start-lr", type=float, default=START_LR,
                   help=f"the first step's rate (default {START_LR:g})")
    p.add_argument("--end-lr", type=float, default=END_LR,
                   help=f"the last step's rate (default {END_LR:g})")
    p.add_argument("--steps", type=int, default=STEPS,
                   help=f"mini-batches at most, from 10 to 10,000 (default {STEPS})")
    p.add_argument("--smoothing", type=float, default=SMOOTHING,
                   help=f"beta of the loss's moving average, in [0, 1) (default {SMOOTHING})")
    p.add_argument("--diverge", type=float, default=DIVERGE,
                   help=f"stop when the smoothed loss exceeds this many times its best "
                        f"(default {DIVERGE:g})")
    p.add_argument("--json", action="store_true",
                   help="print the suggestions and the whole curve as JSON")
    p.set_defaults(func=cmd_lr_find)


def cmd_lr_find(a: argparse.Namespace) -> dict:
    check_settings(a.start_lr, a.end_lr, a.steps, a.smoothing, a.diverge)
    cfg = config_from_args(a)
    with tqdm(total=a.steps, desc="range test", unit="step", file=sys.stderr,
              leave=False) as bar:
        def progress(step: int, steps: int, lr: float, loss: float) -> None:
            bar.n = step
            bar.set_postfix(lr=f"{lr:.2e}", loss=f"{loss:.4f}")
            bar.refresh()

        result = find_lr(cfg, start_lr=a.start_lr, end_lr=a.end_lr, steps=a.steps,
                         smoothing=a.smoothing, diverge=a.diverge, progress=progress)
    if a.json:
        return result.to_dict()
    if result.suggestion is None:
        print("no suggestion: the loss did not fall before it diverged; try a lower "
              "--start-lr or a smaller --batch-size", file=sys.stderr)
    return {"suggested learning rate (steepest descent)": _rate(result.suggestion),
            "minimum / 10": _rate(result.min_div10),
            "stopped": (f"diverged at step {len(result.lrs)} of {result.steps} "
                        f"(lr {result.lrs[-1]:.3g})" if result.stopped == "diverged" and
                        result.lrs else f"after {len(result.lrs)} steps"),
            "device": result.extra["device"], "seconds": round(result.seconds, 1)}


def _rate(value: float | None) -> str:
    return "none" if value is None else f"{value:.3g}"
