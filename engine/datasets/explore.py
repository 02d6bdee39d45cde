"""Paging through a dataset's images, DIGITS' "Explore the db" view."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.datasets.catalog import Dataset

PAGE_SIZES = (10, 25, 50, 100)


@dataclass(frozen=True)
class ExplorePage:
    """One page: images (uint8 N x H x W x C), their labels and dataset indexes."""

    images: np.ndarray
    labels: np.ndarray
    indexes: np.ndarray
    total: int  # images in the split (after the class filter)
    pages: int
    page: int
    page_size: int


def explore(ds: Dataset, split: str = "train", class_index: int | None = None, page: int = 0,
            page_size: int = 25) -> ExplorePage:
    """Page `page` (from 0) of a split, optionally of one class; past the end it is empty."""
    if page_size not in PAGE_SIZES:
        raise ValueError(f"page_size must be one of {', '.join(map(str, PAGE_SIZES))}, "
                         f"not {page_size!r}")
    if page < 0:
        raise ValueError(f"page must be 0 or more, not {page}")
    index = ds.split(split)
    if class_index is not None:
        if not 0 <= class_index < ds.num_classes:
            raise ValueError(f"class_index must be from 0 to {ds.num_classes - 1}, "
                             f"not {class_index}")
        index = index[ds.labels[index] == class_index]
    total = len(index)
    chosen = index[page * page_size:(page + 1) * page_size]
    return ExplorePage(
        images=np.asarray(ds.images[chosen]),
        labels=ds.labels[chosen],
        indexes=chosen.copy(),
        total=total,
        pages=-(-total // page_size),
        page=page,
        page_size=page_size,
    )
