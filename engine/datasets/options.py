"""What a user chooses when creating a dataset, validated before any work starts."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

from engine.datasets.errors import DatasetError
from engine.images.loading import CHANNELS, RESIZE_MODES

MAX_SIDE = 4096


@dataclass
class DatasetOptions:
    """Image geometry, split percentages and the lab's variants (small, inverted).

    val_percent and test_percent are carved per class from the source's training images.
    test_percent applies when the source has no test split of its own, or when
    use_source_test is False (the source's test images then join the pool being split).
    max_per_class caps each class of each source split by seeded random choice (the lab's
    "small dataset"); add_inverted appends 255 - x copies of the train and val images.
    """

    height: int = 28
    width: int = 28
    channels: int = 1
    resize_mode: str = "squash"
    val_percent: float = 10.0
    test_percent: float = 0.0
    use_source_test: bool = True
    min_per_class: int = 2
    max_per_class: int | None = None
    add_inverted: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        self._normalise_numbers()
        self.validate()

    def _normalise_numbers(self) -> None:
        # numpy scalars and ints-for-floats are fine inputs; store plain JSON-friendly types.
        for name in ("height", "width", "channels", "min_per_class", "max_per_class", "seed"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                setattr(self, name, int(value))
        for name in ("val_percent", "test_percent"):
            value = getattr(self, name)
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                setattr(self, name, float(value))

    def validate(self) -> None:
        """Raise DatasetError naming the first option that makes no sense."""
        for name in ("height", "width"):
            _check_int(name, getattr(self, name), 1, MAX_SIDE)
        if self.channels not in CHANNELS or isinstance(self.channels, bool):
            raise DatasetError(f"channels must be 1 (grayscale) or 3 (colour), not "
                               f"{self.channels!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise DatasetError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}, not "
                               f"{self.resize_mode!r}")
        for name in ("val_percent", "test_percent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 <= value < 100):
                raise DatasetError(f"{name} must be a number from 0 to below 100, not {value!r}")
        if self.val_percent + self.test_percent >= 100:
            raise DatasetError("val_percent + test_percent must leave some training images "
                               f"(got {self.val_percent} + {self.test_percent})")
        for name in ("use_source_test", "add_inverted"):
            if not isinstance(getattr(self, name), bool):
                raise DatasetError(f"{name} must be true or false, not {getattr(self, name)!r}")
        _check_int("min_per_class", self.min_per_class, 1, None)
        if self.max_per_class is not None:
            _check_int("max_per_class", self.max_per_class, 1, None)
            if self.max_per_class < self.min_per_class:
                raise DatasetError(f"max_per_class ({self.max_per_class}) is below "
                                   f"min_per_class ({self.min_per_class})")
        _check_int("seed", self.seed, 0, 2**63 - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DatasetError(f"unknown dataset option(s): {', '.join(unknown)} "
                               f"(known: {', '.join(sorted(known))})")
        return cls(**data)

    @classmethod
    def coerce(cls, options: DatasetOptions | dict[str, Any] | None) -> DatasetOptions:
        """Accept what callers have at hand: nothing, a dict, or options already built."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            options._normalise_numbers()
            options.validate()
            return options
        if isinstance(options, dict):
            return cls.from_dict(options)
        raise DatasetError(f"options must be DatasetOptions or a dict, not {type(options)}")


def _check_int(name: str, value: Any, low: int, high: int | None) -> None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise DatasetError(f"{name} must be an integer {bound}, not {value!r}")


def default_options(source: str) -> DatasetOptions:
    """The options a new dataset from `source` starts with, in the dashboard and the CLI alike:
    the engine's defaults, with CIFAR-10's own size and colour."""
    if source == "cifar10":
        return DatasetOptions(height=32, width=32, channels=3)
    return DatasetOptions()
