"""Datasets: created once from a source into uint8 arrays, then opened, explored, deleted.

The README ("What it does: Datasets") describes them for users. Typical use:

    ds = create_dataset("mnist-small", "idx", {"train_images": ..., "train_labels": ...},
                        {"max_per_class": 100})
    x = ds.images[ds.split("train")]
"""

from engine.datasets.build import create_dataset
from engine.datasets.catalog import (
    Dataset,
    DatasetInUse,
    dataset_usage,
    delete_dataset,
    list_datasets,
    open_dataset,
)
from engine.datasets.errors import DatasetError
from engine.datasets.explore import PAGE_SIZES, ExplorePage, explore
from engine.datasets.options import DatasetOptions, default_options
from engine.datasets.sources import SOURCES

__all__ = [
    "PAGE_SIZES",
    "SOURCES",
    "Dataset",
    "DatasetError",
    "DatasetInUse",
    "DatasetOptions",
    "default_options",
    "ExplorePage",
    "create_dataset",
    "dataset_usage",
    "delete_dataset",
    "explore",
    "list_datasets",
    "open_dataset",
]
