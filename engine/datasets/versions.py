"""Dataset versions: a dataset extended into a new one, its parent recorded and untouched.

A version holds every image of its parent, then the images added (uploads, camera shots,
probe-board images), all in the training split; corrections relabel images the parent
already holds (the Evaluation tab's confident mistakes, "add to training data") and move them
into the training split, out of validation or test. A version keeps its parent's
preprocessing (mean, std, polarity): a model retrained from the parent's job sees images
normalised exactly as before. New class names may be added; they come after the parent's.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.datasets.build import (
    _publish,
    _refuse_taken_name,
    build_size,
    check_name,
    new_build,
)
from engine.datasets.catalog import Dataset, open_dataset
from engine.datasets.errors import DatasetError
from engine.images.loading import ImageError
from engine.state import dataset_files as layout
from engine.state import store
from engine.state.workspace import atomic_save_npy, atomic_write_json, sha256_file, studio_home

SOURCES = ("upload", "camera", "probe", "correction")


@dataclass
class NewImage:
    """One image to add: encoded bytes (PNG, JPEG...) or a uint8 H x W (x C) array."""

    image: bytes | np.ndarray
    label: str
    source: str = "upload"  # upload | camera | probe
    digit: bool | None = None  # frame like MNIST (None: as the dataset was made)
    polarity: str = "auto"


def from_probes(probes: Iterable[dict[str, Any]]) -> list[NewImage]:
    """Probe-board images (engine.evaluation.probes.list_probes) with their labels."""
    return [NewImage(p["image"], str(p["label"]), "probe", bool(p.get("digit", True)),
                     p.get("polarity", "auto")) for p in probes]


def version_info(manifest: dict[str, Any]) -> dict[str, Any]:
    """A dataset's place among versions: number (1 for an original), parent, base name."""
    v = manifest.get("version") or {}
    return {"number": int(v.get("number", 1)), "parent": v.get("parent"),
            "base": v.get("base", manifest["name"]), "added": v.get("added", {}),
            "note": v.get("note", "")}


def extend_dataset(parent: str | Dataset, added: Sequence[NewImage] = (),
                   corrections: dict[int, str] | None = None, *, name: str | None = None,
                   note: str = "", owner: str | None = None,
                   home: str | os.PathLike | None = None) -> Dataset:
    """A new version of `parent` with `added` images and `corrections` ({image index: label});
    DatasetError (one line) when something cannot be added, and then nothing is written."""
    root = studio_home(home)
    ds = parent if isinstance(parent, Dataset) else open_dataset(parent, home=root)
    corrections = dict(corrections or {})
    if not added and not corrections:
        raise DatasetError("nothing to add: give images or corrected labels")
    info = version_info(ds.manifest)
    number = info["number"] + 1
    name = check_name(name or f"{info['base']} v{number}")
    classes = list(ds.classes)
    for label in [a.label for a in added] + list(corrections.values()):
        label = str(label).strip()
        if not label:
            raise DatasetError("every added image needs a class name")
        if label not in classes:
            classes.append(label)
    new_images = _prepare(ds, added)
    new_labels = np.array([classes.index(a.label.strip()) for a in added], dtype=np.int64)

    labels = np.concatenate([np.asarray(ds.labels, dtype=np.int64), new_labels])
    splits = {s: np.asarray(ds.split(s), dtype=np.int64) for s in layout.SPLITS}
    moved = np.array(sorted(corrections), dtype=np.int64)
    if len(moved) and (moved.min() < 0 or moved.max() >= len(ds)):
        raise DatasetError(f"image {int(moved.max())} is not in dataset {ds.name!r} "
                           f"({len(ds)} images)")
    for index, label in corrections.items():
        labels[index] = classes.index(str(label).strip())
    for s in ("val", "test"):
        splits[s] = splits[s][~np.isin(splits[s], moved)]
    appended = np.arange(len(ds), len(ds) + len(added), dtype=np.int64)
    train = splits["train"]
    splits["train"] = np.sort(np.concatenate([train, moved[~np.isin(moved, train)], appended]))

    conn = store.connect(root)
    try:
        _refuse_taken_name(conn, name)
        with new_build(root) as (dataset_id, tmp):
            atomic_save_npy(tmp / layout.IMAGES,
                            np.concatenate([np.asarray(ds.images), new_images]))
            atomic_save_npy(tmp / layout.LABELS, labels)
            for s, index in splits.items():
                atomic_save_npy(tmp / layout.split_file(s), index)
            for f in (layout.MEAN, layout.MEAN_PNG):
                if (ds.path / f).exists():
                    shutil.copy(ds.path / f, tmp / f)
            manifest = _manifest(ds, dataset_id, name, classes, labels, splits, tmp, {
                "parent": ds.id, "parent_name": ds.name, "number": number,
                "base": info["base"], "note": note,
                "added": {"images": len(added), "corrected": len(corrections),
                          "by_source": dict(Counter(a.source for a in added)),
                          "per_class": dict(Counter(a.label.strip() for a in added)),
                          "new_classes": classes[len(ds.classes):]}})
            _publish(conn, tmp, layout.dataset_dir(root, dataset_id), manifest, owner)
    finally:
        conn.close()
    return open_dataset(dataset_id, home=root)


def _prepare(ds: Dataset, added: Sequence[NewImage]) -> np.ndarray:
    """The added images as the dataset stores them (its contract's prepare)."""
    c, h, w = ds.shape
    out = np.zeros((len(added), h, w, c), dtype=np.uint8)
    for i, a in enumerate(added):
        if a.source not in SOURCES:
            raise DatasetError(f"unknown image source {a.source!r}; one of {SOURCES}")
        try:
            out[i] = ds.contract.prepare(a.image, digit=a.digit, polarity=a.polarity)
        except (ImageError, ValueError, OSError) as e:
            raise DatasetError(f"added image {i + 1} ({a.label}): {e}") from None
    return out


def _manifest(ds: Dataset, dataset_id: str, name: str, classes: list[str], labels: np.ndarray,
              splits: dict[str, np.ndarray], tmp: Any, version: dict[str, Any]
              ) -> dict[str, Any]:
    m = dict(ds.manifest)
    counts = {s: {c: int(n) for c, n in zip(
        classes, np.bincount(labels[index], minlength=len(classes)), strict=True)}
        for s, index in splits.items()}
    m.update(id=dataset_id, name=name, source="version", classes=classes, counts=counts,
             total=int(len(labels)), created=time.time(), version=version,
             size_bytes=build_size(tmp),
             sha256=sha256_file(tmp / layout.IMAGES))
    m["hash"] = m["sha256"]
    atomic_write_json(tmp / layout.MANIFEST, m)
    return m


def dataset_versions(id_or_name: str, home: str | os.PathLike | None = None
                     ) -> list[dict[str, Any]]:
    """Every version in the dataset's family (its original and all its descendants), oldest
    first: id, name, number, parent, total and what each added."""
    with store.opened(home) as conn:
        rows = {r["id"]: r for r in store.list_datasets(conn)}
    found = open_dataset(id_or_name, home=home)
    root_id = found.id
    while version_info(rows[root_id]["manifest"])["parent"] in rows:
        root_id = version_info(rows[root_id]["manifest"])["parent"]
    family, frontier = [root_id], [root_id]
    while frontier:
        children = [i for i, r in rows.items()
                    if version_info(r["manifest"])["parent"] in frontier and i not in family]
        family += children
        frontier = children
    out = []
    for i in family:
        m = rows[i]["manifest"]
        v = version_info(m)
        out.append({"id": i, "name": m["name"], "number": v["number"], "parent": v["parent"],
                    "total": m.get("total"), "added": v["added"], "note": v["note"],
                    "created": m.get("created")})
    return sorted(out, key=lambda d: (d["number"], d["created"] or 0))
