"""How a run's start is named (TrainConfig.init_from), as plain text rules: no torch here, so
the job list and lineage read it cheaply. engine/training/init.py applies a start.

  ""                          random weights
  JOB[:best|last|EPOCH]       a kept checkpoint of an earlier job (best.pt by default)
  a path (has a / or ends .pt/.pth)   a weights file: product checkpoint or plain state dict
  torchvision[:WEIGHTS]       torchvision's own pretrained weights, downloaded
"""

from __future__ import annotations

import os

CHECKPOINT_TAGS = ("best", "last")
TORCHVISION = "torchvision"
FREEZE_ALL_BUT_HEAD = "all-but-head"


def is_path(init_from: str) -> bool:
    return "/" in init_from or os.sep in init_from or init_from.endswith((".pt", ".pth"))


def is_torchvision(init_from: str) -> bool:
    return init_from.split(":")[0] == TORCHVISION


def split_job_ref(init_from: str) -> tuple[str, str]:
    """'JOB[:best|last|EPOCH]' -> (job, which); which defaults to 'best'. ValueError if the
    part after the colon is none of those."""
    job, _, which = init_from.partition(":")
    which = which or "best"
    if which not in CHECKPOINT_TAGS and not which.isdigit():
        raise ValueError(f"init-from {init_from!r}: after the job id comes best, last or an "
                         "epoch number (e.g. JOB:best, JOB:3)")
    return job, which


def source_job(init_from: str) -> str | None:
    """The job id a start names, or None for random weights, a file or a download."""
    if not init_from or is_path(init_from) or is_torchvision(init_from):
        return None
    return init_from.split(":")[0]


def start_settings_problem(init_from: str, freeze: str) -> str | None:
    """What is wrong with the start settings (TrainConfig.validate raises it), or None; the
    pretrained learning-rate factor's range is TrainConfig's field metadata."""
    if freeze and freeze != FREEZE_ALL_BUT_HEAD and not freeze.isdigit():
        return f"freeze takes a number of layers or '{FREEZE_ALL_BUT_HEAD}', not {freeze!r}"
    if freeze and not init_from:
        return ("freezing keeps layers as they start: it needs a start (init_from), or the "
                "frozen layers would stay random")
    if init_from and not is_path(init_from) and not is_torchvision(init_from):
        try:
            split_job_ref(init_from)
        except ValueError as e:
            return str(e)
    return None
