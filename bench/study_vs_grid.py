"""Trials to reach the grid's best (issue 27): a grid sweep over learning rate x momentum
(as `jobs submit --lr a,b,c` does) against an Optuna study over the same ranges with the same
sampler and pruner settings a study uses (engine/jobs/studies.py: TPE, median pruning),
LeNet on the offline digits sample (10% val), 3 epochs a trial, seeded. Trials train in this
process (the queue adds only start-up time per job, the same for both).

    .venv/bin/python bench/study_vs_grid.py [--budget 16] [--epochs 3]

Figure: how many study trials (and epochs, pruned ones counted as far as they ran) it takes
to reach the grid's best validation accuracy, beside the grid's trials and epochs. Writes
bench/results/study_vs_grid.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import optuna

from engine.datasets import DatasetOptions, create_dataset
from engine.jobs import studies
from engine.training import TrainConfig, train
from engine.training.errors import TrainingDiverged
from engine.training.sink import MetricsSink

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
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    home = tmp / "workspace"
    create_dataset("digits", "digits-sample", None, DatasetOptions(val_percent=10.0), home=home)
    base = {"dataset": "digits", "network": "lenet", "device": "cpu", "epochs": a.epochs,
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
    t0, epochs_used, reached, trials = time.time(), 0, None, []
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
        if reached is None and not pruned and value is not None and value >= target:
            reached = {"trials": n + 1, "epochs": epochs_used, "seconds": time.time() - t0}
    out = {"grid": {"trials": len(grid), "epochs": sum(g["epochs"] for g in grid),
                    "best": target, "seconds": grid_s},
           "study": {"reached": reached, "budget": a.budget, "best": study.best_value,
                     "pruned": sum(t["pruned"] for t in trials),
                     "epochs": epochs_used}, "trials": trials, "grid_runs": grid}
    print(f"{'':8} {'trials':>7} {'epochs':>7} {'best val acc':>13}")
    print(f"{'grid':8} {len(grid):7d} {out['grid']['epochs']:7d} {target:13.4f}")
    r = reached or {"trials": None, "epochs": None}
    print(f"{'study':8} {r['trials'] or '-':>7} {r['epochs'] or '-':>7} {study.best_value:13.4f}"
          f"   (to reach the grid's best; {out['study']['pruned']} of {a.budget} pruned)")
    if reached:
        print(f"ratio: {len(grid) / reached['trials']:.2f}x fewer trials, "
              f"{out['grid']['epochs'] / reached['epochs']:.2f}x fewer epochs")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "study_vs_grid.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
