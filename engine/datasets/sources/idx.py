"""IDX files, the format MNIST ships in (gzip-compressed or raw).

Header: two zero bytes, a type byte (0x08 = unsigned byte), a dimension count, then one
big-endian uint32 per dimension. Images are magic 2051 (3 dims), labels 2049 (1 dim).
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from engine.datasets.errors import DatasetError
from engine.datasets.sources.base import ArrayPart, SourceData
from engine.state import limits

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
UBYTE = 0x08
_GZIP = b"\x1f\x8b"
_KIND = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """The array in an IDX file, after checking it is the kind (images/labels) expected.

    The file is streamed (gzip or raw): the header is read first, its size checked against
    the limit, and no more than the size it declares is ever decompressed, so a small gzip
    bomb cannot fill the memory.
    """
    path = Path(path)
    label = path.name
    with _open(path) as f:
        head = _read(f, 4, label)
        if len(head) < 4 or head[:2] != b"\0\0":
            raise DatasetError(f"{label} is not an IDX file (bad magic number)")
        found = int.from_bytes(head, "big")
        if head[2] != UBYTE:
            raise DatasetError(f"{label}: IDX data type 0x{head[2]:02x} is not supported "
                               "(need unsigned bytes, 0x08)")
        if found != magic:
            what = _KIND.get(found, f"magic {found}")
            raise DatasetError(f"{label}: expected IDX {_KIND[magic]} (magic {magic}), "
                               f"found {what} (magic {found})")
        ndim = head[3]
        raw_dims = _read(f, 4 * ndim, label)
        if len(raw_dims) < 4 * ndim:
            raise DatasetError(f"{label}: IDX header is truncated")
        dims = tuple(int.from_bytes(raw_dims[4 * i:4 * i + 4], "big") for i in range(ndim))
        if any(d == 0 for d in dims):
            raise DatasetError(f"{label}: IDX file holds no data (dimensions {dims})")
        count = math.prod(dims)  # Python ints: no int64 overflow
        cap = limits.IDX_BYTES.value
        if count > cap:
            raise DatasetError(f"{label}: IDX header declares {dims} = {limits.size(count)}, "
                               f"above the {limits.size(cap)} limit "
                               f"({limits.IDX_BYTES.name})")
        data = bytearray(count)
        view = memoryview(data)
        got = 0
        while got < count:
            n = _readinto(f, view[got:], label)
            if n == 0:
                break
            got += n
        extra = _read(f, 1, label)
    header = 4 + 4 * ndim
    if got != count or extra:
        have = "more" if extra else f"{header + got}"
        raise DatasetError(f"{label}: IDX header says {dims} ({header + count} bytes) but the "
                           f"file has {have} bytes (truncated or wrong file?)")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


@contextmanager
def _open(path: Path) -> Iterator[BinaryIO]:
    """The file's bytes as a stream, decompressed on the fly when it is gzip."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DatasetError(f"no such IDX file: {path}") from None
    except IsADirectoryError:
        raise DatasetError(f"{path} is a folder, not an IDX file") from None
    with f:
        gz = f.read(2) == _GZIP
        f.seek(0)
        if not gz:
            yield f
            return
        with gzip.GzipFile(fileobj=f, mode="rb") as stream:
            yield stream


def _read(f: BinaryIO, n: int, label: str) -> bytes:
    try:
        return f.read(n)
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{label} is not a valid gzip file: {e}") from None


def _readinto(f: BinaryIO, view: memoryview, label: str) -> int:
    try:
        return f.readinto(view[:1 << 24]) or 0
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{label} is not a valid gzip file: {e}") from None


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
