"""Well-known datasets fetched by torchvision into <home>/downloads/<name>.

These need the network on first use. Offline, creation fails at once with a one-line
DatasetError pointing at the sources that work without it.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.datasets.errors import DownloadUnavailable
from engine.datasets.sources.base import ArrayPart, SourceData

SOCKET_TIMEOUT_S = 20.0
OFFLINE_HINT = "use --source digits-sample, idx, or folder"


@dataclass(frozen=True)
class Download:
    title: str  # as people write it, for messages
    torchvision_class: str
    polarity: str
    digit_classes: bool = False  # name classes "0".."9" rather than torchvision's names


DOWNLOADS: dict[str, Download] = {
    "mnist": Download("MNIST", "MNIST", "white-on-black", digit_classes=True),
    "fashion-mnist": Download("Fashion-MNIST", "FashionMNIST", "white-on-black"),
    "kmnist": Download("KMNIST", "KMNIST", "white-on-black"),
    "cifar10": Download("CIFAR-10", "CIFAR10", "as-is"),
}


def read_download_source(name: str, home: Path) -> SourceData:
    """Train and test splits of a torchvision dataset, downloaded once and kept."""
    spec = DOWNLOADS[name]
    root = home / "downloads" / name
    existed = root.exists()
    try:
        train, test = _fetch(spec, root)
    except Exception as e:
        if not existed and not any(p.is_file() for p in root.rglob("*")):
            shutil.rmtree(root, ignore_errors=True)
        raise DownloadUnavailable(f"could not download {spec.title} (no network?): "
                                  f"{OFFLINE_HINT}", spec.title) from e
    classes = [str(d) for d in range(10)] if spec.digit_classes else list(train.classes)
    return SourceData(classes=classes, train=_part(train), test=_part(test),
                      polarity=spec.polarity, framing="mnist" if spec.digit_classes else "none")


def _fetch(spec: Download, root: Path):
    import torchvision.datasets  # heavy import, only when a download source is used

    cls = getattr(torchvision.datasets, spec.torchvision_class)
    root.mkdir(parents=True, exist_ok=True)
    # torchvision prints each failed mirror; keep that out of the caller's output.
    with _socket_timeout(SOCKET_TIMEOUT_S), contextlib.redirect_stdout(io.StringIO()):
        train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=True)
    return train, test


def _part(ds) -> ArrayPart:
    images = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
    targets = ds.targets.numpy() if hasattr(ds.targets, "numpy") else np.asarray(ds.targets)
    return ArrayPart(np.ascontiguousarray(images, dtype=np.uint8), targets.astype(np.int64))


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    # torchvision's urllib calls have no timeout of their own: a dead network would hang.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
