"""What a dataset build may cost, checked before any pixel is decoded or any array allocated.

A build holds the finished N x H x W x C uint8 array (and a copy while splitting), so its size
is known from the image count and the options alone: estimate it first and refuse beyond the
budget, rather than let a 4096 x 4096 colour request on 1,797 images ask for 84 GiB.
"""

from __future__ import annotations

from engine.datasets.errors import DatasetError
from engine.datasets.options import DatasetOptions
from engine.state import limits


def check_class_count(classes: list[str]) -> None:
    """At most limits.CLASSES classes: evaluation keeps a C x C confusion matrix per run."""
    cap = limits.CLASSES.value
    if len(classes) > cap:
        raise DatasetError(f"the source has {len(classes):,} classes, above the limit of "
                           f"{cap:,} ({limits.CLASSES.name})")


def estimated_bytes(images: int, opts: DatasetOptions) -> int:
    """Bytes of the stored image array: inverted copies (of train and val) at most double it."""
    per_image = opts.height * opts.width * opts.channels
    return images * per_image * (2 if opts.add_inverted else 1)


def check_budget(images: int, opts: DatasetOptions) -> None:
    """DatasetError naming the figure and the setting when the array would exceed the budget."""
    need = estimated_bytes(images, opts)
    cap = limits.DATASET_BYTES.value
    if need > cap:
        colour = "colour" if opts.channels == 3 else "grayscale"
        raise DatasetError(
            f"{images:,} images at {opts.height}x{opts.width} {colour}"
            + (" with inverted copies" if opts.add_inverted else "")
            + f" need {limits.size(need)}, above the {limits.size(cap)} budget "
            f"({limits.DATASET_BYTES.name}); choose a smaller size, grayscale or "
            "max images per class")
