"""Seeded, per-class choices: capping classes and carving val/test splits.

Each choice draws from its own random stream derived from the seed, so changing one option
(say max_per_class) never reshuffles an unrelated split.
"""

from __future__ import annotations

import numpy as np

from engine.datasets.errors import DatasetError

STREAM_CAP = {"train": 1, "val": 2, "test": 3}
STREAM_SPLIT = 10


def rng_for(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def cap_per_class(labels: np.ndarray, max_per_class: int | None,
                  rng: np.random.Generator) -> np.ndarray:
    """Sorted indexes keeping at most max_per_class of each class, chosen at random."""
    if max_per_class is None:
        return np.arange(len(labels))
    keep = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) > max_per_class:
            members = rng.choice(members, size=max_per_class, replace=False)
        keep.append(members)
    return np.sort(np.concatenate(keep)) if keep else np.arange(0)


def stratified_split(labels: np.ndarray, num_classes: int, val_percent: float,
                     test_percent: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) sorted indexes with the percentages taken within every class.

    Every class keeps at least one training image: a small class gives up test, then val.
    """
    train, val, test = [], [], []
    for c in range(num_classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        n = len(members)
        room = max(n - 1, 0)
        n_val = min(_share(n, val_percent), room)
        n_test = min(_share(n, test_percent), room - n_val)
        test.append(members[:n_test])
        val.append(members[n_test:n_test + n_val])
        train.append(members[n_test + n_val:])
    return tuple(np.sort(np.concatenate(s)).astype(np.int64) if s else np.arange(0)
                 for s in (train, val, test))


def _share(n: int, percent: float) -> int:
    return int(np.floor(n * percent / 100.0 + 0.5))


def count_per_class(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(labels, minlength=num_classes)[:num_classes]


def require_two_classes(classes: list[str]) -> None:
    """A classifier needs something to tell apart."""
    if len(classes) < 2:
        found = f" ({classes[0]!r})" if classes else ""
        raise DatasetError(f"need at least 2 classes, found {len(classes)}{found}")


def check_classes(classes: list[str], labels: np.ndarray, min_per_class: int) -> None:
    """Refuse data a classifier cannot learn from: one class, or classes too small."""
    require_two_classes(classes)
    counts = count_per_class(labels, len(classes))
    small = [(classes[c], int(n)) for c, n in enumerate(counts) if n < min_per_class]
    if len(small) == 1:
        name, n = small[0]
        raise DatasetError(f"class {name!r} has {n} image{'' if n == 1 else 's'}; each class "
                           f"needs at least {min_per_class} (min_per_class)")
    if small:
        listed = ", ".join(f"{name!r} has {n}" for name, n in small[:5])
        more = f" and {len(small) - 5} more" if len(small) > 5 else ""
        raise DatasetError(f"{len(small)} classes have fewer than {min_per_class} images "
                           f"(min_per_class): {listed}{more}")
