"""What every source hands to the build: class names and parts (train, val, test).

A part is either arrays already in memory (IDX, torchvision, digits) or files to decode
(folders). Both can be capped per class before any pixel is touched, and both materialize into
uint8 N x H x W x C arrays at the dataset's geometry.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.datasets.options import DatasetOptions
from engine.datasets.progress import Progress
from engine.images.loading import ImageError, fit_batch, fit_image, load_image

CHUNK = 2048  # images per progress report when fitting arrays


@dataclass
class Materialized:
    """A part's images at the dataset's geometry, with the files that had to be skipped."""

    images: np.ndarray
    labels: np.ndarray
    skipped: list[dict[str, str]] = field(default_factory=list)


@dataclass
class ArrayPart:
    """Images already decoded: N x H x W or N x H x W x C uint8, at the source's size."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, keep: np.ndarray) -> ArrayPart:
        return ArrayPart(self.images[keep], self.labels[keep])

    def materialize(self, options: DatasetOptions, progress: Progress) -> Materialized:
        o = options
        n = len(self.labels)
        out = np.empty((n, o.height, o.width, o.channels), dtype=np.uint8)
        for start in range(0, n, CHUNK):
            chunk = self.images[start:start + CHUNK]
            out[start:start + CHUNK] = fit_batch(chunk, o.height, o.width, o.channels,
                                                 o.resize_mode)
            progress(min(start + CHUNK, n) / n, f"fitted {min(start + CHUNK, n)}/{n} images")
        return Materialized(out, self.labels.astype(np.int64, copy=False))


@dataclass
class FilePart:
    """Image files to decode; `names` are what the skipped-files report shows."""

    files: list[Path]
    labels: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, keep: np.ndarray) -> FilePart:
        return FilePart([self.files[i] for i in keep], self.labels[keep],
                        [self.names[i] for i in keep])

    def materialize(self, options: DatasetOptions, progress: Progress) -> Materialized:
        o = options
        n = len(self.files)
        out = np.empty((n, o.height, o.width, o.channels), dtype=np.uint8)
        ok = np.zeros(n, dtype=bool)
        skipped: list[dict[str, str]] = []

        def decode(path: Path) -> np.ndarray | str:
            try:
                return fit_image(load_image(path), o.height, o.width, o.channels, o.resize_mode)
            except ImageError as e:
                return _reason(e)

        # Pillow releases the GIL while decoding and resizing, so threads use every core.
        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, result in enumerate(pool.map(decode, self.files)):
                if isinstance(result, str):
                    skipped.append({"file": self.names[i], "reason": result})
                else:
                    out[i] = result
                    ok[i] = True
                if (i + 1) % 256 == 0 or i + 1 == n:
                    progress((i + 1) / n, f"decoded {i + 1}/{n} images")
        return Materialized(out[ok], self.labels[ok].astype(np.int64, copy=False), skipped)


def _reason(error: ImageError) -> str:
    # "cannot read image 'x.png': why" -> "why": the report already names the file.
    text = str(error)
    return text.split(": ", 1)[1] if ": " in text else text


Part = ArrayPart | FilePart


@dataclass
class SourceData:
    """A source, read: class names, its parts, and the polarity its images are known to have.

    polarity is "white-on-black" (MNIST family), "as-is", or "detect" (decide from the
    training images' borders, for formats like IDX that carry no such information).
    """

    classes: list[str]
    train: Part
    val: Part | None = None
    test: Part | None = None
    polarity: str = "as-is"
    framing: str = "none"  # "mnist" where digits were framed like MNIST (see images.contract)
    skipped: list[dict[str, str]] = field(default_factory=list)  # found while listing files
