"""The real MNIST t10k files (../shared/data, never copied into the repository) and the
workspaces tests and benchmarks build from them."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _mnist_dir() -> Path:
    """Real MNIST t10k files: $STUDIO_MNIST_DIR if set, else ../shared/data beside the
    checkout, else the copy bench/stage_device.sh puts in .device/ for a machine that gets
    only the checkout (the GPU machine)."""
    if os.environ.get("STUDIO_MNIST_DIR"):
        return Path(os.environ["STUDIO_MNIST_DIR"])
    shared = ROOT.parent / "shared" / "data" / "mnist-t10k"
    carried = ROOT / ".device" / "mnist-t10k"
    return carried if not shared.exists() and carried.exists() else shared


MNIST_DIR = _mnist_dir()
MNIST_IMAGES = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"


def write_idx(path: Path, array) -> None:
    """Write a uint8 array as a raw IDX file (images: N x H x W, labels: N)."""
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


def read_idx_gz(path: Path):
    import gzip

    import numpy as np

    raw = gzip.open(path).read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def make_mnist_sample(root: Path, name: str = "mnist-sample", val_percent: float = 10.0
                      ) -> Path:
    """A workspace in root holding `name`: the mnist-8k/2k split (first 8,000 images train,
    last 2,000 held out as the test split), with val_percent of the training part for
    validation."""
    from engine.datasets import DatasetOptions, create_dataset

    images, labels = read_idx_gz(MNIST_IMAGES), read_idx_gz(MNIST_LABELS)
    parts = {"train-images": images[:8000], "train-labels": labels[:8000],
             "test-images": images[8000:], "test-labels": labels[8000:]}
    for part, arr in parts.items():
        write_idx(root / part, arr)
    home = root / "workspace"
    create_dataset(name, "idx", {
        "train_images": str(root / "train-images"), "train_labels": str(root / "train-labels"),
        "test_images": str(root / "test-images"), "test_labels": str(root / "test-labels"),
    }, DatasetOptions(val_percent=val_percent), home=home)
    return home


def train_sample_run(home: Path, network: str, epochs: int, out: Path) -> Path:
    """Train `network` on the workspace's "mnist-sample" on the CPU (lr 0.01, seed 0) into
    `out`, printing how long it took: the run the calibration and photo benchmarks start from."""
    import time

    from engine.training import TrainConfig, train

    t = time.perf_counter()
    train(TrainConfig(dataset="mnist-sample", network=network, epochs=epochs, device="cpu",
                      lr=0.01, seed=0), out, home=home)
    print(f"trained {network} for {epochs} epochs in {time.perf_counter() - t:.0f} s",
          flush=True)
    return out
