"""LeNet training images/s on this machine, three ways in one run:

1. the engine's trainer (data held as uint8 tensors, batches gathered by index),
2. the usual torchvision loop: datasets.MNIST + transforms + DataLoader (batch 64, same model),
3. the bare model step on a batch already in memory (no data pipeline at all), in both memory
   formats: the default (NCHW) one the DataLoader loop uses, and channels-last (NHWC), which
   the engine uses for convolutional networks; "within 10%" compares with the faster one.

Data: the MNIST sample split (first 8,000 images of ../shared/data/mnist-t10k).
Targets: engine >= 3x the DataLoader loop, and within 10% of the bare step.
Writes bench/results/train_throughput.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent

from engine.datasets import DatasetOptions, create_dataset  # noqa: E402
from engine.networks import build_network, zoo_spec  # noqa: E402
from engine.training import RecordingSink, TrainConfig, train  # noqa: E402
from testkit.mnist import MNIST_DIR as MNIST  # noqa: E402  (honours $STUDIO_MNIST_DIR)

N_TRAIN, BATCH = 8000, 64


def make_workspace(tmp: Path) -> Path:
    """IDX files of the 8k training part, a dataset of them, and torchvision's raw layout."""
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(MNIST / f"{name}.gz") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    images = (raw / "t10k-images-idx3-ubyte").read_bytes()
    labels = (raw / "t10k-labels-idx1-ubyte").read_bytes()
    (tmp / "imgs").write_bytes(images[:4] + N_TRAIN.to_bytes(4, "big") + images[8:16]
                               + images[16:16 + N_TRAIN * 784])
    (tmp / "lbls").write_bytes(labels[:4] + N_TRAIN.to_bytes(4, "big") + labels[8:8 + N_TRAIN])
    home = tmp / "workspace"
    create_dataset("bench", "idx", {"train_images": str(tmp / "imgs"),
                                    "train_labels": str(tmp / "lbls")},
                   DatasetOptions(val_percent=0.0), home=home)
    return home


def engine_rate(home: Path, tmp: Path, epochs: int, device: str = "cpu") -> float:
    sink = RecordingSink()
    cfg = TrainConfig(dataset="bench", network="lenet", epochs=epochs, batch_size=BATCH,
                      lr=0.01, device=device)
    train(cfg, tmp / "run", sink=sink, home=home)
    return max(m["images_per_s"] for m in sink.epochs)  # best epoch, as for the others


def model_and_opt(device: str = "cpu"):
    torch.manual_seed(0)
    model = build_network(zoo_spec("lenet"), (1, 28, 28), 10).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def step(model, opt, x, y) -> None:
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def dataloader_rate(tmp: Path, epochs: int, workers: int, device: str = "cpu") -> float:
    from torchvision import datasets, transforms

    class T10kMNIST(datasets.MNIST):
        """torchvision's MNIST on the t10k files alone (its own check wants all four)."""

        @property
        def raw_folder(self) -> str:  # torchvision names the folder after the class
            return str(Path(self.root) / "MNIST" / "raw")

        def _check_exists(self) -> bool:
            raw = Path(self.raw_folder)
            return all((raw / f"t10k-{k}-idx{d}-ubyte").exists() for k, d in
                       (("images", 3), ("labels", 1)))

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    ds = torch.utils.data.Subset(T10kMNIST(tmp, train=False, download=False, transform=tf),
                                 range(N_TRAIN))
    cuda = device.startswith("cuda")
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True,
                                         num_workers=workers, persistent_workers=workers > 0,
                                         pin_memory=cuda)
    model, opt = model_and_opt(device)
    best = 0.0
    for _ in range(epochs):
        t0, n = time.perf_counter(), 0
        for x, y in loader:
            step(model, opt, x.to(device, non_blocking=True), y.to(device, non_blocking=True))
            n += len(y)
        if cuda:
            torch.cuda.synchronize()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def bare_rate(epochs: int, memory_format=torch.contiguous_format, device: str = "cpu") -> float:
    model, opt = model_and_opt(device)
    model = model.to(memory_format=memory_format)
    x = torch.randn(BATCH, 1, 28, 28, device=device).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (BATCH,), device=device)
    steps = N_TRAIN // BATCH
    best = 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        for _ in range(steps):
            step(model, opt, x, y)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = max(best, steps * BATCH / (time.perf_counter() - t0))
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (bench/gpu_check.sh)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_throughput.json"))
    a = ap.parse_args()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"error: --device {a.device} needs an NVIDIA GPU with CUDA; this machine has none",
              file=sys.stderr)
        return 2
    if not MNIST.exists():
        print(f"skipped: {MNIST} not found (real MNIST lives in ../shared/data)")
        return 0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        home = make_workspace(tmp)
        bare_nchw = bare_rate(a.epochs, device=a.device)
        bare_nhwc = bare_rate(a.epochs, torch.channels_last, a.device)
        eng = engine_rate(home, tmp, a.epochs, a.device)
        workers = (0, 2) if a.device == "cpu" else (0, 4, 8)
        loaders = {w: dataloader_rate(tmp, a.epochs, w, a.device) for w in workers}
    workers, loader = max(loaders.items(), key=lambda kv: kv[1])
    rows = [("engine trainer", eng, 1.0),
            (f"torchvision DataLoader (best of {'/'.join(map(str, loaders))} workers: "
             f"{workers})", loader, eng / loader),
            ("bare model step (no data), NCHW", bare_nchw, eng / bare_nchw),
            ("bare model step (no data), channels-last", bare_nhwc, eng / bare_nhwc)]
    bare = max(bare_nchw, bare_nhwc)
    print(f"LeNet training on {a.device}, batch {BATCH}, {N_TRAIN} MNIST images, best of "
          f"{a.epochs} epochs; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'pipeline':58} {'images/s':>10} {'engine / this':>14}")
    for name, rate, ratio in rows:
        print(f"{name:58} {rate:10.0f} {ratio:13.2f}x")
    ok_loader, ok_bare = eng >= 3 * loader, eng >= 0.9 * bare
    print(f"target engine >= 3x DataLoader: {'met' if ok_loader else 'NOT met'}; "
          f"engine within 10% of bare step: {'met' if ok_bare else 'NOT met'}")
    result = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
              "processor": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "device": a.device,
              "engine": eng, "dataloader": loader, "dataloader_by_workers": loaders,
              "bare_step": bare, "bare_step_nchw": bare_nchw, "bare_step_channels_last": bare_nhwc,
              "engine_vs_dataloader": eng / loader,
              "engine_vs_bare": eng / bare, "command": "python bench/train_throughput.py"}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
