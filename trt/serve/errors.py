"""The one error a request can earn: what the client must change (answered 4xx)."""

from __future__ import annotations


class BadInput(ValueError):
    """A request the client must change: the server answers 4xx with this message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
