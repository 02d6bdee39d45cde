"""Numbers written for people, the same way in the CLI, the logs and the dashboard."""

from __future__ import annotations


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
