"""The one error type dataset code raises for bad input: its message is the whole story."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset could not be created, read or found; the message says why in one line."""


class DownloadUnavailable(DatasetError):
    """A well-known dataset could not be downloaded (no network?). Its message speaks to the
    CLI user; `title` lets another front end (the dashboard) say it in its own words."""

    def __init__(self, message: str, title: str) -> None:
        super().__init__(message)
        self.title = title
