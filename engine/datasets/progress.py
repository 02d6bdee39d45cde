"""Progress reporting: one callback, (fraction 0..1, message), shared across build stages."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def silent(fraction: float, message: str) -> None:
    """The callback used when the caller passes none."""


def scaled(progress: Progress, start: float, end: float) -> Progress:
    """A callback for one stage that maps its own 0..1 onto [start, end] of the whole build."""

    def report(fraction: float, message: str) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return report
