"""A job's life: its statuses, which of them can still change and when it can resume. Each rule
is written here once; the device strings a job may ask for are engine/devices.py's."""

from __future__ import annotations

STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")  # the job can still change on its own
ENDED = ("done", "failed", "cancelled", "interrupted")
STOPPED_EARLY = ("cancelled", "interrupted")  # ended before its last epoch, not by an error


def resumable(kind: str, status: str, has_checkpoint: bool, intact: bool = True) -> bool:
    """A training job stopped early continues (from its checkpoint, or from the start if it had
    none yet); a failed one only from a checkpoint; never from a corrupt checkpoint (intact
    False); task jobs are submitted again instead."""
    return kind == "train" and intact and (status in STOPPED_EARLY
                                           or (status == "failed" and has_checkpoint))
