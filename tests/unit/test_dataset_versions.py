"""Dataset versions (issue 17): extend a dataset with uploads, probe images and corrected
labels; the parent stays as it was; counts are right; versions are listed."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from engine.datasets import DatasetError, open_dataset
from engine.datasets.versions import (
    NewImage,
    dataset_versions,
    extend_dataset,
    from_probes,
    version_info,
)
from engine.state.workspace import sha256_file


def _png(value: int = 0, size: int = 40) -> bytes:
    """A dark '1' on white paper, as a phone photo of a digit would be."""
    img = np.full((size, size), 255, np.uint8)
    img[5:35, 18:23] = value
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def ws(digits_home, tmp_path):
    home = tmp_path / "workspace"
    shutil.copytree(digits_home, home)
    return home


def test_extend_keeps_the_parent_and_counts_right(ws):
    parent = open_dataset("digits", home=ws)
    before = {f: sha256_file(parent.path / f) for f in ("images.npy", "labels.npy", "test.npy",
                                                       "manifest.json")}
    test_before = parent.split("test").copy()
    wrong = int(test_before[0])  # a test image whose label is "corrected" to 7
    added = [NewImage(_png(), "1", "upload"), NewImage(_png(), "1", "camera"),
             NewImage(_png(), "star", "camera")]
    v2 = extend_dataset("digits", added, {wrong: "7"}, note="my ones", home=ws)
    # The parent: not one byte changed.
    assert {f: sha256_file(parent.path / f) for f in before} == before
    assert v2.name == "digits v2" and v2.classes == parent.classes + ["star"]
    info = version_info(v2.manifest)
    assert info["parent"] == parent.id and info["number"] == 2
    assert info["added"] == {"images": 3, "corrected": 1,
                             "by_source": {"upload": 1, "camera": 2},
                             "per_class": {"1": 2, "star": 1}, "new_classes": ["star"]}
    assert len(v2) == len(parent) + 3
    assert len(v2.split("train")) == len(parent.split("train")) + 4  # 3 added + 1 moved
    assert len(v2.split("test")) == len(test_before) - 1 and wrong not in v2.split("test")
    assert v2.labels[wrong] == v2.classes.index("7")
    counts = v2.manifest["counts"]
    assert counts["train"]["star"] == 1
    assert counts["train"]["1"] == parent.manifest["counts"]["train"]["1"] + 2
    assert sum(counts["test"].values()) == len(v2.split("test"))
    # Added images are prepared as the dataset's own: light ink on dark, MNIST-framed.
    new = v2.images[len(parent):]
    assert new.shape == (3, 28, 28, 1) and new[0].mean() < 60 and new[0].max() > 200
    assert v2.contract.to_dict() == parent.contract.to_dict()

    v3 = extend_dataset(v2, from_probes([{"image": _png(), "label": "1", "digit": True,
                                          "polarity": "auto"}]), home=ws)
    assert v3.name == "digits v3" and version_info(v3.manifest)["added"]["by_source"] == \
        {"probe": 1}
    family = dataset_versions("digits v2", ws)
    assert [(d["name"], d["number"], d["parent"]) for d in family] == [
        ("digits", 1, None), ("digits v2", 2, parent.id), ("digits v3", 3, v2.id)]


def test_bad_additions_are_refused_and_leave_nothing(ws):
    names = sorted(p.name for p in (ws / "datasets").iterdir())
    with pytest.raises(DatasetError, match="nothing to add"):
        extend_dataset("digits", [], home=ws)
    with pytest.raises(DatasetError, match=r"added image 2 \(3\)"):
        extend_dataset("digits", [NewImage(_png(), "1"), NewImage(b"not an image", "3")],
                       home=ws)
    with pytest.raises(DatasetError, match="is not in dataset"):
        extend_dataset("digits", corrections={10**6: "1"}, home=ws)
    with pytest.raises(DatasetError, match="needs a class name"):
        extend_dataset("digits", [NewImage(_png(), " ")], home=ws)
    extend_dataset("digits", [NewImage(_png(), "1")], name="mine", home=ws)
    with pytest.raises(DatasetError, match="already exists"):
        extend_dataset("digits", [NewImage(_png(), "1")], name="mine", home=ws)
    assert len(sorted(p.name for p in (ws / "datasets").iterdir())) == len(names) + 1
