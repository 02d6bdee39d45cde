"""Time to accuracy on the MNIST 8k/2k split (issue 15, item 2), product and peer in one run.

Data: ../shared/data/mnist-t10k (or $STUDIO_MNIST_DIR): images 0..7,999 train, 8,000..9,999
are held out; both sides train on all 8,000 and are scored on the same 2,000.

- Product: `python -m engine train --dataset mnist-8k --network lenet --epochs E ...` as a user
  types it, one process per E (1, 2, 3, ...): wall time from starting the command to its exit,
  and the held-out accuracy it reports (imports, opening the dataset, training, checkpoints and
  the held-out pass all included). Two recipes: the CLI's defaults (SGD 0.01, momentum 0.9,
  fixed rate) and the recipe for small grey images (Adam 0.003 with one-cycle).
- Peer: bench/peers/mnist_examples.py, pytorch/examples' mnist/main.py idiom (its 2-conv
  network, Adadelta, torchvision MNIST + DataLoader), timed from its process start to the end
  of each epoch's test pass.

Prints the time to 97.5% and to 98% held-out for each, and the ratio peer / product (target:
the product >= 5x faster to 98%). Product and peer runs alternate; with --rounds > 1 each time
is the median over rounds. Writes bench/results/time_to_accuracy.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from testkit.mnist import MNIST_DIR, make_mnist_sample  # noqa: E402

TARGETS = (0.975, 0.98)
RECIPES = {
    "defaults": [],
    "adam-onecycle": ["--solver", "adam", "--lr", "0.003", "--lr-policy", "onecycle"],
}


def prepare(tmp: Path) -> Path:
    """The peer's raw folder and the product's workspace (dataset creation is not timed: it
    is done once, like torchvision's download)."""
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(MNIST_DIR / f"{name}.gz") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return make_mnist_sample(tmp, name="mnist-8k", val_percent=0.0)


def product(home: Path, tmp: Path, epochs: int, recipe: list[str]) -> tuple[float, float]:
    """(wall seconds, held-out accuracy) of one `python -m engine train` command."""
    out = tmp / f"run-{time.monotonic_ns()}"
    cmd = [sys.executable, "-m", "engine", "train", "--dataset", "mnist-8k", "--network",
           "lenet", "--epochs", str(epochs), "--device", "cpu", "--out", str(out), "--json",
           *recipe]
    env = {**os.environ, "STUDIO_HOME": str(home)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp, timeout=600)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"engine train failed: {done.stderr.strip()[-500:]}")
    shutil.rmtree(out, ignore_errors=True)
    return wall, json.loads(done.stdout)["held_out"]["accuracy"]


def peer(tmp: Path, epochs: int) -> list[dict]:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "peers" / "mnist_examples.py"),
                           str(tmp), "--epochs", str(epochs)], capture_output=True, text=True,
                          timeout=1800)
    if done.returncode:
        raise RuntimeError(f"peer failed: {done.stderr.strip()[-500:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def first_time(points: list[tuple[float, float]], target: float) -> float | None:
    """The time of the first (time, accuracy) point, in order, at or above target."""
    return next((t for t, acc in points if acc >= target), None)


def fmt(t: float | None) -> str:
    return "not reached" if t is None else f"{t:.1f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--max-epochs", type=int, default=3, help="product runs 1..this many")
    ap.add_argument("--peer-epochs", type=int, default=3)
    ap.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "time_to_accuracy.json"))
    a = ap.parse_args()
    recipes = [r for r in a.recipes.split(",") if r]
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        ap.error(f"unknown recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    runs: dict = {"peer": [], **{r: [] for r in recipes}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = prepare(tmp)
        for r in range(a.rounds):
            for epochs in range(1, a.max_epochs + 1):
                if epochs == 1:  # the peer between the product's runs: interleaved
                    points = peer(tmp, a.peer_epochs)
                    runs["peer"].append(points)
                    print(f"round {r + 1} peer: " + ", ".join(
                        f"epoch {p['epoch']} {p['accuracy']:.4f} at {p['elapsed_s']:.1f} s"
                        for p in points), flush=True)
                for recipe in recipes:
                    wall, acc = product(home, tmp, epochs, RECIPES[recipe])
                    runs[recipe].append({"round": r, "epochs": epochs, "wall_s": wall,
                                         "accuracy": acc})
                    print(f"round {r + 1} product {recipe} {epochs} epoch(s): {acc:.4f} in "
                          f"{wall:.1f} s", flush=True)

    def product_time(recipe: str, target: float) -> float | None:
        per_round = []
        for r in range(a.rounds):
            pts = sorted((p["epochs"], p["wall_s"], p["accuracy"]) for p in runs[recipe]
                         if p["round"] == r)
            per_round.append(first_time([(w, acc) for _, w, acc in pts], target))
        reached = [t for t in per_round if t is not None]
        return statistics.median(reached) if len(reached) == len(per_round) else None

    def peer_time(target: float) -> float | None:
        times = [first_time([(p["elapsed_s"], p["accuracy"]) for p in pts], target)
                 for pts in runs["peer"]]
        return statistics.median(times) if all(t is not None for t in times) else None

    print(f"\nMNIST 8k train / 2k held out, CPU, {a.rounds} round(s); wall time from the "
          "command's start")
    rows = []
    print(f"{'to held-out':12} {'peer (examples)':>16} " + " ".join(
        f"{'product ' + r:>24} {'ratio':>6}" for r in recipes))
    for target in TARGETS:
        pt = peer_time(target)
        line = f"{target:12.1%} {fmt(pt):>16} "
        row = {"target": target, "peer_s": pt}
        for recipe in recipes:
            t = product_time(recipe, target)
            ratio = pt / t if pt and t else None
            line += f"{fmt(t):>24} {'' if ratio is None else f'{ratio:5.1f}x':>6} "
            row[recipe] = {"seconds": t, "ratio": ratio}
        rows.append(row)
        print(line)
    print("target: product >= 5x faster to 98%")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
                               "cpus": os.cpu_count(), "rounds": a.rounds, "recipes": RECIPES,
                               "runs": runs, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
