"""Where a dataset's files live in the workspace, and what they are called (the datasets' side
of the workspace layout; engine/state/runs.py is the jobs')."""

from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.json"
IMAGES = "images.npy"
LABELS = "labels.npy"
MEAN = "mean.npy"
MEAN_PNG = "mean.png"
SPLITS = ("train", "val", "test")
FORMAT_VERSION = 1


def datasets_dir(home: Path) -> Path:
    return home / "datasets"


def dataset_dir(home: Path, dataset_id: str) -> Path:
    return datasets_dir(home) / dataset_id


def split_file(split: str) -> str:
    return f"{split}.npy"
