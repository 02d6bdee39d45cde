"""The measuring half of bench/gpu_check.sh: the MNIST sample dataset (the tests' 8k/2k split
of ../shared/data/mnist-t10k), LeNet trained on CUDA with its images/s, then the inference
benchmark of every backend. Writes gpu_check.json and gpu_check.md into --out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from engine.training import RecordingSink, TrainConfig, train  # noqa: E402
from engine.workspace import atomic_write_json  # noqa: E402
from trt.bench import format_table, run_bench  # noqa: E402

from conftest import MNIST_IMAGES, make_mnist_sample  # noqa: E402


def train_lenet(home: Path, run_dir: Path, device: str) -> dict:
    sink = RecordingSink()
    cfg = TrainConfig(dataset="mnist-sample", network="lenet", epochs=5, lr=0.01, seed=0,
                      device=device)
    started = time.perf_counter()
    result = train(cfg, run_dir, sink=sink, home=home)
    return {"device": device, "epochs": 5, "seconds": time.perf_counter() - started,
            "images_per_s_best_epoch": max(m["images_per_s"] for m in sink.epochs),
            "held_out_accuracy": (result.held_out or {}).get("accuracy")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    out = Path(args.out)
    if not MNIST_IMAGES.exists():
        print(f"error: MNIST files not found in {MNIST_IMAGES.parent}", file=sys.stderr)
        return 2
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        home = make_mnist_sample(Path(tmp))
        training = train_lenet(home, Path(tmp) / "run", device)
        print(f"training on {device}: {training['images_per_s_best_epoch']:,.0f} images/s")
        inference = run_bench(Path(tmp) / "run", seconds=args.seconds,
                              progress=lambda m: print(m, flush=True))
    results = {"training": training, "inference": inference}
    atomic_write_json(out / "gpu_check.json", results)
    table = format_table(inference)
    md = (f"# GPU check ({inference['machine'].get('gpu', 'no GPU')})\n\n"
          f"LeNet training on {device}, MNIST 8k sample, 5 epochs: "
          f"{training['images_per_s_best_epoch']:,.0f} images/s (best epoch), held-out "
          f"accuracy {training['held_out_accuracy']}\n\n## Inference\n\n{table}\n")
    (out / "gpu_check.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
