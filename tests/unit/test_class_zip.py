"""A dataset made only of camera pictures (issue 17): the pictures become a zip of class
folders that the folder source builds like any upload; bad class names and a single class are
refused with the reason."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from engine.datasets import DatasetError, DatasetOptions, create_dataset
from engine.datasets.class_zip import class_folders_zip
from engine.datasets.versions import NewImage


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), colour, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_pictures_become_a_dataset_of_their_classes(home, tmp_path):
    shots = [NewImage(jpeg((200, 30, 30)), "red", "camera") for _ in range(6)]
    shots += [NewImage(jpeg((30, 30, 200)), "blue ball", "camera") for _ in range(6)]
    archive = class_folders_zip(shots)
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert names[0] == "red/0001.jpg" and names[-1] == "blue ball/0012.jpg"
    path = tmp_path / "camera.zip"
    path.write_bytes(archive)
    ds = create_dataset("camera", "folder", {"path": str(path)},
                        DatasetOptions(height=32, width=32, channels=3, val_percent=0))
    assert sorted(ds.classes) == ["blue ball", "red"]
    assert len(ds) == 12
    images, labels = ds.images, ds.labels
    assert images.shape[1:] == (32, 32, 3)  # colour kept
    reds = images[labels == ds.classes.index("red")]
    assert reds[..., 0].mean() > reds[..., 2].mean() + 100


def test_bad_pictures_are_refused_with_the_reason():
    one = [NewImage(jpeg((0, 0, 0)), "cat", "camera")] * 3
    with pytest.raises(DatasetError, match=r"at least two classes \(only 'cat' so far\)"):
        class_folders_zip(one)
    with pytest.raises(DatasetError, match="cannot be a class name"):
        class_folders_zip([NewImage(jpeg((0, 0, 0)), "a/b", "camera"), *one])
    with pytest.raises(DatasetError, match="not a JPEG"):
        class_folders_zip([NewImage(b"hello", "dog", "camera"), *one])
