"""Gallery images: the dataset's pictures at the asked indexes, in the asked order, enlarged
pixel for pixel and PNG-encoded (lossless: what the network saw, not a JPEG of it)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from dashboard.gallery import dataset_images
from engine.images.pictures import enlarge


class FakeDataset:
    def __init__(self, path: Path, images: np.ndarray) -> None:
        self.path, self.images = path, images


def test_images_come_back_in_the_asked_order_and_exactly(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28, 1), dtype=np.uint8)
    ds = FakeDataset(tmp_path / "ds", images)
    indexes = [17, 3, 9, 3, 0]  # unsorted, with a repeat
    pngs = dataset_images(ds, indexes, px=84)
    assert len(pngs) == len(indexes)
    for i, png in zip(indexes, pngs, strict=True):
        img = Image.open(io.BytesIO(png))
        assert img.format == "PNG" and img.size == (84, 84)
        assert np.array_equal(np.asarray(img), enlarge(images[i], 84))
    assert dataset_images(ds, []) == []
    # Another dataset at another path is another cache entry, not the first one's images.
    other = FakeDataset(tmp_path / "other", 255 - images)
    first = Image.open(io.BytesIO(dataset_images(other, [17], px=84)[0]))
    assert np.array_equal(np.asarray(first), enlarge(255 - images[17], 84))
