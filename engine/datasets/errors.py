"""The one error type dataset code raises for bad input: its message is the whole story."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset could not be created, read or found; the message says why in one line."""
