"""Expected calibration error before and after temperature scaling, on real MNIST.

Trains LeNet (and the lab's wide LeNet) on MNIST t10k images 0..7999 (10% of them held for
validation; or reuses a run), evaluates the 2,000 held-out images 8000..9999 raw, fits the
temperature on the validation split (engine.evaluation.calibration, as the Evaluation tab's
Calibrate does) and evaluates them again. Baseline: the same network's raw softmax. Accuracy
must not change (temperature never moves an argmax); ECE and NLL should fall.

    .venv/bin/python bench/calibration.py [--epochs 8] [--networks lenet lenet-wide]
        [--run RUN_DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from engine.evaluation.evaluate import calibrate_checkpoint, evaluate_checkpoint
from engine.state.workspace import atomic_write_json
from testkit.mnist import MNIST_IMAGES, make_mnist_sample, train_sample_run

ROOT = Path(__file__).resolve().parent.parent


def measure(run: Path, home: Path) -> dict:
    raw = evaluate_checkpoint(run, split="test", home=home)
    t = time.perf_counter()
    fit = calibrate_checkpoint(run, home=home)
    fit_s = time.perf_counter() - t
    after = evaluate_checkpoint(run, split="test", home=home)
    return {"temperature": fit["temperature"], "fit_seconds": fit_s,
            "val_images": fit["images"], "test_images": raw["images"],
            "accuracy_before": raw["accuracy"], "accuracy_after": after["accuracy"],
            "ece_before": raw["calibration"]["ece"], "ece_after": after["calibration"]["ece"],
            "nll_before": raw["calibration"]["nll"], "nll_after": after["calibration"]["nll"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--networks", nargs="+", default=["lenet", "lenet-wide"])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "calibration.json")
    args = ap.parse_args()
    if not MNIST_IMAGES.exists():
        print(f"skipped: no MNIST t10k files at {MNIST_IMAGES.parent}")
        return 0
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    results: dict = {"data": "MNIST t10k: 0..7999 train (10% val), 8000..9999 test",
                     "epochs": args.epochs, "models": {}}
    with tempfile.TemporaryDirectory(prefix="calibration-") as tmp:
        tmp = Path(tmp)
        home = make_mnist_sample(tmp)
        for network in args.networks:
            run = train_sample_run(home, network, args.epochs, tmp / network)
            results["models"][network] = measure(run, home)
            shutil.rmtree(run, ignore_errors=True)
    print(f"\n2,000 MNIST held-out images, {BINS_TEXT}; T fitted on the validation split\n")
    print("| model | T | accuracy before | after | ECE before (raw) | ECE after | ratio "
          "| NLL before | NLL after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results["models"].items():
        ratio = r["ece_after"] / r["ece_before"] if r["ece_before"] else float("nan")
        print(f"| {name} | {r['temperature']:.3f} | {100 * r['accuracy_before']:.2f}% "
              f"| {100 * r['accuracy_after']:.2f}% | {100 * r['ece_before']:.2f}% "
              f"| {100 * r['ece_after']:.2f}% | {ratio:.2f} | {r['nll_before']:.4f} "
              f"| {r['nll_after']:.4f} |")
    atomic_write_json(args.out, results)
    return 0


BINS_TEXT = "ECE over 15 equal-width confidence bins"

if __name__ == "__main__":
    sys.exit(main())
