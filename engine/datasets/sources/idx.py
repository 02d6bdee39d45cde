"""IDX files, the format MNIST ships in (gzip-compressed or raw).

Header: two zero bytes, a type byte (0x08 = unsigned byte), a dimension count, then one
big-endian uint32 per dimension. Images are magic 2051 (3 dims), labels 2049 (1 dim).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from engine.datasets.errors import DatasetError
from engine.datasets.sources.base import ArrayPart, SourceData

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
UBYTE = 0x08
_GZIP = b"\x1f\x8b"
_KIND = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """The array in an IDX file, after checking it is the kind (images/labels) expected."""
    path = Path(path)
    label = path.name
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\0\0":
        raise DatasetError(f"{label} is not an IDX file (bad magic number)")
    found = int.from_bytes(data[:4], "big")
    if data[2] != UBYTE:
        raise DatasetError(f"{label}: IDX data type 0x{data[2]:02x} is not supported "
                           "(need unsigned bytes, 0x08)")
    if found != magic:
        what = _KIND.get(found, f"magic {found}")
        raise DatasetError(f"{label}: expected IDX {_KIND[magic]} (magic {magic}), "
                           f"found {what} (magic {found})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{label}: IDX header is truncated")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in dims):
        raise DatasetError(f"{label}: IDX file holds no data (dimensions {dims})")
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DatasetError(f"{label}: IDX header says {dims} ({expected} bytes) but the file "
                           f"has {len(data)} bytes (truncated or wrong file?)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"no such IDX file: {path}") from None
    except IsADirectoryError:
        raise DatasetError(f"{path} is a folder, not an IDX file") from None
    if raw[:2] != _GZIP:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path.name} is not a valid gzip file: {e}") from None


def read_pair(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x H x W) and labels (N) whose counts agree."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DatasetError(f"{Path(images_path).name} holds {len(images)} images but "
                           f"{Path(labels_path).name} holds {len(labels)} labels")
    return images, labels


def read_idx_source(args: dict) -> SourceData:
    """Train images/labels and, when given, a test pair; classes are the label values seen."""
    train_images, train_labels = read_pair(args["train_images"], args["train_labels"])
    has_test = args.get("test_images") is not None or args.get("test_labels") is not None
    if has_test and (args.get("test_images") is None or args.get("test_labels") is None):
        raise DatasetError("give both test_images and test_labels, or neither")
    test = read_pair(args["test_images"], args["test_labels"]) if has_test else None
    values = np.unique(np.concatenate([train_labels] + ([test[1]] if test else [])))
    classes = [str(int(v)) for v in values]

    def part(images: np.ndarray, labels: np.ndarray) -> ArrayPart:
        return ArrayPart(images, np.searchsorted(values, labels).astype(np.int64))

    return SourceData(classes=classes, train=part(train_images, train_labels),
                      test=part(*test) if test else None, polarity="detect")
