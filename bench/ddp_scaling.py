"""Data-parallel scaling on this CPU (issue 20, item 5): the same job on 1 process and on 2 gloo
ranks (torch.distributed, DDP, started by torch's elastic launcher), same global batch.

LeNet on the offline digits (scikit-learn's 1,797, 1,257 of them for training; 2 epochs),
or with --mnist on the MNIST sample split (8k train, first 8,000 images of
../shared/data/mnist-t10k; 1 epoch), batch 64, SGD 0.01, on the CPU. The single process
gets the cores' threads (what the scheduler's budget gives a training alone); each of the 2
ranks gets an equal share of them (what it gives each rank of a 2-process job). Rounds
interleave the two; a run's speed is images/s of its training epochs (rank 0's clock, global
images), the figure is the median over rounds; the wall time also counts starting the ranks.
Prints the baseline, the subject and the ratio, and writes bench/results/ddp_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

# As the scheduler starts a worker (engine/threads.py thread_env): OpenMP threads sleep
# rather than spin while they wait. Spinning pools on shared cores stall a 2-thread training
# to ~100 images/s, which would make any 1-thread-per-rank run look fast. Set before torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent

WHY = ("Why below 1x here: 2 ranks on 2 shared vCPUs split the same cores the single process "
       "already used with 2 threads, so data parallelism adds no compute; each step adds an "
       "all-reduce of LeNet's 431k gradients (1.7 MB) over gloo's TCP loopback and a small "
       "all-reduce that keeps the ranks agreeing on reports and stops, and each rank runs the "
       "small half-batch kernels less efficiently; other engineers' processes share the cores "
       "too. DDP pays where each rank brings its own device (GPUs, NCCL) or its own cores.")


def workspace(root: Path, mnist: bool) -> tuple[Path, str, int]:
    """(STUDIO_HOME, dataset name, epochs): the MNIST sample (asked for, and its files there),
    else the offline digits (two epochs: it has 1,257 training images)."""
    if mnist:
        from testkit.mnist import MNIST_IMAGES, make_mnist_sample

        if not Path(MNIST_IMAGES).exists():
            raise SystemExit(f"--mnist: no MNIST files at {MNIST_IMAGES}")
        return make_mnist_sample(root), "mnist-sample", 1
    from engine.datasets import DatasetOptions, create_dataset

    home = root / "workspace"
    create_dataset("digits", "digits-sample", None,
                   DatasetOptions(val_percent=10.0, test_percent=20.0), home=home)
    return home, "digits", 2


def run_once(home: Path, dataset: str, epochs: int, ranks: int, threads: int, out: Path
             ) -> dict:
    from engine.training import TrainConfig
    from engine.training.distributed import run_training

    cfg = TrainConfig(dataset=dataset, network="lenet", epochs=epochs, batch_size=64, lr=0.01,
                      seed=0, device="cpu" if ranks == 1 else f"cpu:{ranks}")
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the ranks' pools (spawned processes)
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    result = run_training(cfg, out, home=home)
    wall = time.perf_counter() - t0
    seen = sum(m["images_per_s"] * m["epoch_time"] for m in result.history)
    busy = sum(m["epoch_time"] for m in result.history)
    return {"images_per_s": seen / busy, "wall_s": wall,
            "val_accuracy": result.history[-1].get("val_accuracy")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--mnist", action="store_true",
                    help="the MNIST 8k sample instead of the offline digits (minutes here)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "ddp_scaling.json"))
    a = ap.parse_args()
    from engine.threads import usable_cores

    cores = usable_cores()
    with tempfile.TemporaryDirectory() as tmp:
        home, dataset, epochs = workspace(Path(tmp), a.mnist)
        runs: dict[str, list[dict]] = {"1 process": [], "2 gloo ranks": []}
        for r in range(a.rounds):
            for name, ranks in (("1 process", 1), ("2 gloo ranks", 2)):
                runs[name].append(run_once(home, dataset, epochs, ranks,
                                           max(1, cores // ranks), Path(tmp) / f"{name}-{r}"))
                print(f"round {r + 1}/{a.rounds} {name}: "
                      f"{runs[name][-1]['images_per_s']:,.0f} images/s, "
                      f"{runs[name][-1]['wall_s']:.1f} s wall", flush=True)
    med = {k: {f: statistics.median(x[f] for x in v) for f in ("images_per_s", "wall_s")}
           for k, v in runs.items()}
    base, subj = med["1 process"], med["2 gloo ranks"]
    ratio = subj["images_per_s"] / base["images_per_s"]
    same_acc = {k: [x["val_accuracy"] for x in v] for k, v in runs.items()}
    print(f"\nLeNet, {dataset}, {epochs} epoch(s), global batch 64, {cores} usable cores "
          f"(load average {os.getloadavg()[0]:.1f})")
    print(f"{'':16}{'images/s':>12}{'wall s':>10}")
    print(f"{'1 process':16}{base['images_per_s']:>12,.0f}{base['wall_s']:>10.1f}  (baseline)")
    print(f"{'2 gloo ranks':16}{subj['images_per_s']:>12,.0f}{subj['wall_s']:>10.1f}")
    print(f"ratio 2 ranks / 1 process: {ratio:.2f}x images/s, "
          f"{base['wall_s'] / subj['wall_s']:.2f}x wall")
    print(f"validation accuracy per round: {same_acc}")
    print(WHY)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "cores": cores,
        "load_average": os.getloadavg()[0], "dataset": dataset, "epochs": epochs,
        "baseline": base, "subject": subj, "ratio_images_per_s": ratio,
        "val_accuracy": same_acc, "runs": runs, "why": WHY}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
