"""A job's life: its statuses, which of them can still change, when it can resume, and the
device strings a job may ask for. Each rule is written here once."""

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


DEVICE_HELP = "auto, cpu, cuda or cuda:N"


def parse_device(name: str) -> str:
    """The canonical form of a device a job asks for: 'auto', 'cpu' or 'cuda:N' ('cuda' is
    'cuda:0'); ValueError for anything else."""
    if name in ("auto", "cpu"):
        return name
    if name == "cuda":
        return "cuda:0"
    if isinstance(name, str) and name.startswith("cuda:") and name[5:].isdigit():
        return f"cuda:{int(name[5:])}"
    raise ValueError(f"unknown device {name!r}; use {DEVICE_HELP}")
