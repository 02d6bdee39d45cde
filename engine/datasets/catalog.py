"""Datasets that exist: open one, list them, delete one.

SQLite says which datasets exist; their files say what is in them.
"""

from __future__ import annotations

import os
import shutil
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from engine.datasets.errors import DatasetError
from engine.hosting import access
from engine.images.contract import Contract
from engine.state import dataset_files as layout
from engine.state import store
from engine.state.runs import pinned_dataset
from engine.state.workspace import read_json, studio_home


class Dataset:
    """A created dataset: arrays are loaded on first use, images memory-mapped."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.id: str = manifest["id"]
        self.name: str = manifest["name"]
        self.classes: list[str] = list(manifest["classes"])
        self._splits: dict[str, np.ndarray] = {}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width): the input shape a network sees."""
        m = self.manifest
        return (int(m["channels"]), int(m["height"]), int(m["width"]))

    @cached_property
    def contract(self) -> Contract:
        """The preprocessing contract training and inference share."""
        return Contract.from_dict(self.manifest["preprocess"], self.shape)

    @property
    def preprocess(self) -> dict[str, Any]:
        """The contract in its stored form (as checkpoints, exports and bundles carry it)."""
        return self.contract.to_dict()

    @cached_property
    def images(self) -> np.ndarray:
        """All images, N x H x W x C uint8, memory-mapped read-only."""
        return np.load(self.path / layout.IMAGES, mmap_mode="r")

    @cached_property
    def labels(self) -> np.ndarray:
        return np.load(self.path / layout.LABELS).astype(np.int64, copy=False)

    @cached_property
    def mean(self) -> np.ndarray:
        """The mean training image, float32 H x W x C in 0..255."""
        return np.load(self.path / layout.MEAN)

    def split(self, name: str) -> np.ndarray:
        """Sorted indexes into images/labels for "train", "val" or "test" (maybe empty)."""
        if name not in layout.SPLITS:
            raise ValueError(f"split must be one of {', '.join(layout.SPLITS)}, not {name!r}")
        if name not in self._splits:
            path = self.path / layout.split_file(name)
            index = np.load(path).astype(np.int64, copy=False) if path.exists() else np.arange(0)
            index.flags.writeable = False  # shared by every caller: nobody may change it
            self._splits[name] = index
        return self._splits[name]

    def held_out_split(self) -> str:
        """The split that measures a model on images it never trained on: "test", else "val"
        (a dataset made with Test % = 0, the default). Raises DatasetError if it has neither."""
        for name in ("test", "val"):
            if len(self.split(name)):
                return name
        raise DatasetError(f"dataset {self.name!r} has no test or validation images to "
                           "measure a model on")

    def __len__(self) -> int:
        return int(self.manifest["total"])

    def __repr__(self) -> str:
        c, h, w = self.shape
        return f"Dataset({self.id}, {self.name!r}, {len(self)} images, {c}x{h}x{w})"


def open_dataset(id_or_name: str, home: str | os.PathLike | None = None) -> Dataset:
    """The dataset with this id or name, or DatasetError if there is none."""
    root = studio_home(home)
    row = _find(root, id_or_name)
    path = layout.dataset_dir(root, row["id"])
    manifest_path = path / layout.MANIFEST
    if not manifest_path.exists():
        raise DatasetError(f"dataset {row['name']!r} ({row['id']}) has no files at {path}")
    return Dataset(path, read_json(manifest_path))


def list_datasets(home: str | os.PathLike | None = None,
                  owner: str | None = None, *, viewer: str | None = None
                  ) -> list[dict[str, Any]]:
    """Newest first: id, name, owner, source, created and a summary of each manifest; only
    those `viewer` may see (engine/access)."""

    with store.opened(studio_home(home)) as conn:
        rows = access.filter_datasets(conn, store.list_datasets(conn, owner=owner), viewer)
    return [_summary(row) for row in rows]


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    m = row["manifest"]
    counts = m.get("counts", {})
    return {
        "id": row["id"],
        "name": row["name"],
        "owner": row["owner"],
        "shared": bool(row.get("shared")),
        "locked": bool(row.get("locked")),
        "source": row["source"],
        "created": row["created"],
        "classes": list(m.get("classes", [])),
        "num_classes": len(m.get("classes", [])),
        "total": m.get("total"),
        "train": sum(counts.get("train", {}).values()),
        "val": sum(counts.get("val", {}).values()),
        "test": sum(counts.get("test", {}).values()),
        "height": m.get("height"),
        "width": m.get("width"),
        "channels": m.get("channels"),
        "resize_mode": m.get("options", {}).get("resize_mode"),
        "size_bytes": m.get("size_bytes"),
        "sha256": m.get("sha256"),
        "skipped": m.get("report", {}).get("skipped", 0),
    }


class DatasetInUse(DatasetError):
    """The dataset is used by jobs; deleting it needs confirmation (force=True)."""

    def __init__(self, name: str, users: list[dict[str, Any]]) -> None:
        self.users = users
        active = [u for u in users if u["status"] in ("queued", "running")]
        listed = ", ".join(u["id"] for u in users[:5]) + (" ..." if len(users) > 5 else "")
        super().__init__(
            f"dataset {name!r} is used by {len(users)} job(s) ({listed})"
            + (f", {len(active)} of them queued or running" if active else "")
            + "; without it they can no longer run, resume or be evaluated. "
            "Confirm to delete it anyway (CLI: --force)")


def dataset_usage(id_or_name: str, home: str | os.PathLike | None = None
                  ) -> list[dict[str, Any]]:
    """Training jobs that use the dataset (id, name, status, owner): those it was pinned to at
    submit time, and older jobs that name it."""

    root = studio_home(home)
    row = _find(root, id_or_name)
    with store.opened(root) as conn:
        jobs = store.list_jobs(conn, kind="train")
    users = []
    for job in jobs:
        pin = pinned_dataset(job.id, root)
        uses = pin["id"] == row["id"] if pin else job.config.get("dataset") in (
            row["id"], row["name"])
        if uses:
            users.append({"id": job.id, "name": job.name, "status": job.status,
                          "owner": job.owner})
    return users


def delete_dataset(id_or_name: str, home: str | os.PathLike | None = None, *,
                   force: bool = False, user: str | None = None) -> None:
    """Remove the dataset's row, then its files (moved aside first so no half-deleted
    folder is ever visible under its id). A dataset that jobs use is deleted only with
    force=True (the user confirmed); otherwise DatasetInUse says which jobs."""

    root = studio_home(home)
    row = _find(root, id_or_name)
    with store.opened(root) as conn:
        access.check_dataset_delete(conn, row, user)
    if not force:
        users = dataset_usage(row["id"], root)
        if users:
            raise DatasetInUse(row["name"], users)
    conn = store.connect(root)
    try:
        with store.transaction(conn):
            store.delete_dataset(conn, row["id"])
    finally:
        conn.close()
    path = layout.dataset_dir(root, row["id"])
    if path.exists():
        trash = path.with_name(f".trash-{row['id']}")
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)


def _find(root: Path, id_or_name: str) -> dict[str, Any]:
    with store.opened(root) as conn:
        row = store.get_dataset(conn, id_or_name)
    if row is None:
        raise DatasetError(f"no dataset named {id_or_name!r}")
    return row
