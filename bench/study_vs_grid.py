"""Trials to reach the grid's best (issue 27): a grid sweep over learning rate x momentum
(as `jobs submit --lr a,b,c` does) against an Optuna study over the same ranges with the same
sampler and pruner settings a study uses (engine/jobs/studies.py: TPE, median pruning),
LeNet on the offline digits sample (10% val) or, with --data mnist, MNIST 8k (20% val), 3
epochs a trial, seeded. Trials train in this process (the queue adds only start-up time per
job, the same for both).

    .venv/bin/python bench/study_vs_grid.py [--budget 16] [--epochs 3] [--data mnist]

Figure: how many study trials (and epochs, pruned ones counted as far as they ran) it takes
to reach the grid's best validation accuracy, beside the grid's trials and epochs. Writes
bench/results/study_vs_grid.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import optuna

from engine.datasets import DatasetOptions, create_dataset
from engine.jobs import studies
from engine.training import TrainConfig, train
from engine.training.errors import TrainingDiverged
from engine.training.sink import MetricsSink
from testkit.mnist import make_mnist_sample

ROOT = Path(__file__).resolve().parent.parent
LRS = (0.001, 0.003, 0.01, 0.03, 0.1)
MOMENTA = (0.0, 0.5, 0.9)


class Reporter(MetricsSink):
    """Reports each epoch's validation accuracy to the trial and raises the stop flag when the
    pruner says so: what the study driver does through the job's metrics rows."""

    def __init__(self, trial: optuna.Trial | None) -> None:
        self.trial, self.pruned, self.epochs = trial, False, 0

    def on_epoch(self, m: dict) -> None:
        self.epochs = m["epoch"]
        if self.trial is not None and m.get("val_accuracy") is not None:
            self.trial.report(m["val_accuracy"], m["epoch"])
            self.pruned = self.trial.should_prune()


def run(cfg: dict, home: Path, out: Path, trial=None) -> tuple[float | None, int, bool]:
    """(best val accuracy or None if training diverged, epochs run, pruned)."""
    sink = Reporter(trial)
    try:
        result = train(TrainConfig.from_dict(cfg), out, sink=sink,
                       should_stop=lambda: sink.pruned, home=home)
    except TrainingDiverged:
        return None, sink.epochs + 1, False
    best = max(h["val_accuracy"] for h in result.history if h.get("val_accuracy") is not None)
    return best, sink.epochs, sink.pruned


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--tolerance", type=float, default=0.25,
                    help="also report trials to within this many accuracy points")
    ap.add_argument("--data", choices=["digits", "mnist"], default="digits",
                    help="the offline digits (179 validation images: one image is 0.56 points) "
                         "or MNIST 8k from ../shared with 20%% validation (1,600 images)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    if a.data == "mnist":
        home, dataset = make_mnist_sample(tmp, val_percent=20.0), "mnist-sample"
    else:
        home, dataset = tmp / "workspace", "digits"
        create_dataset("digits", "digits-sample", None, DatasetOptions(val_percent=10.0),
                       home=home)
    base = {"dataset": dataset, "network": "lenet", "device": "cpu", "epochs": a.epochs,
            "batch_size": 32, "seed": 0}
    t0 = time.time()
    grid = []
    for i, (lr, m) in enumerate(itertools.product(LRS, MOMENTA)):
        value, epochs, _ = run({**base, "lr": lr, "momentum": m}, home, tmp / f"g{i}")
        grid.append({"lr": lr, "momentum": m, "value": value, "epochs": epochs})
    grid_s = time.time() - t0
    target = max(g["value"] for g in grid if g["value"] is not None)
    spec = {"n_trials": a.budget, "seed": 0, "pruner": "median"}
    study = optuna.create_study(direction="maximize", sampler=studies.sampler_for(spec),
                                pruner=studies.pruner_for(spec))
    dists = studies.distributions(studies.validate_space(
        [studies.parse_param(f"lr={LRS[0]}:{LRS[-1]}:log"),
         studies.parse_param(f"momentum={MOMENTA[0]}:{MOMENTA[-1]}")], base))
    t0, epochs_used, reached, near, trials = time.time(), 0, None, None, []
    for n in range(a.budget):
        trial = study.ask(dists)
        value, epochs, pruned = run({**base, **trial.params}, home, tmp / f"s{n}", trial)
        epochs_used += epochs
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        trials.append({**trial.params, "value": value, "pruned": pruned, "epochs": epochs})
        if not pruned and value is not None:
            if reached is None and value >= target:
                reached = {"trials": n + 1, "epochs": epochs_used, "seconds": time.time() - t0}
            if near is None and value >= target - a.tolerance / 100:
                near = {"trials": n + 1, "epochs": epochs_used, "value": value}
    out = {"grid": {"trials": len(grid), "epochs": sum(g["epochs"] for g in grid),
                    "best": target, "seconds": grid_s},
           "study": {"reached": reached, "budget": a.budget, "best": study.best_value,
                     "pruned": sum(t["pruned"] for t in trials),
                     "epochs": epochs_used, "near": near, "tolerance_points": a.tolerance},
           "trials": trials, "grid_runs": grid}
    print(f"{'':8} {'trials':>7} {'epochs':>7} {'best val acc':>13}")
    print(f"{'grid':8} {len(grid):7d} {out['grid']['epochs']:7d} {target:13.4f}")
    r = reached or {"trials": None, "epochs": None}
    print(f"{'study':8} {r['trials'] or '-':>7} {r['epochs'] or '-':>7} {study.best_value:13.4f}"
          f"   (to reach the grid's best; {out['study']['pruned']} of {a.budget} pruned)")
    if reached:
        print(f"ratio: {len(grid) / reached['trials']:.2f}x fewer trials, "
              f"{out['grid']['epochs'] / reached['epochs']:.2f}x fewer epochs")
    if near:
        print(f"within {a.tolerance:g} points of the grid's best ({near['value']:.4f}): "
              f"{near['trials']} trials, {near['epochs']} epochs")
    if not reached:
        print(f"the study did not reach the grid's best in {a.budget} trials "
              f"({out['grid']['epochs']} grid epochs against {epochs_used} study epochs)")
    out.update(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               command="python bench/study_vs_grid.py " + " ".join(sys.argv[1:]),
               machine=f"{platform.machine()}, {os.cpu_count()} CPUs (shared)")
    name = "study_vs_grid" + ("" if a.data == "digits" else f"-{a.data}") + (
        "" if a.budget == 16 else f"-{a.budget}") + ".json"
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / name).write_text(
        json.dumps(out, indent=1, default=lambda o: o.item()))  # numpy scalars


if __name__ == "__main__":
    main()
