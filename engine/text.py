"""Numbers written for people and by them, the same way in the CLI, the logs and the
dashboard."""

from __future__ import annotations

from typing import TypeVar

Number = TypeVar("Number", int, float)


def format_duration(seconds: float | None) -> str:
    """'12s', '2m 05s', '1h 02m 03s'; an em dash when unknown."""
    if seconds is None:
        return "—"
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m:02d}m {s:02d}s"
    return f"{m}m {s:02d}s" if m else f"{s}s"


def parse_numbers(text: str, kind: type[Number], what: str) -> list[Number]:
    """'0.1, 0.01' -> [0.1, 0.01] (blank items skipped; blank text gives []); a ValueError
    that names `what` and the item that is not a number of that kind."""
    out = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(kind(item))
        except ValueError:
            a = "a whole number" if kind is int else "a number"
            raise ValueError(f"{what}: {item!r} is not {a}; separate values with "
                             "commas, e.g. " + ("32,64" if kind is int else "0.1,0.01")
                             ) from None
    return out
