"""Where a job's weights came from: the chain of starts (init_from) back to random weights,
a weights file or a torchvision download, read from the jobs' stored configs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.state import store
from engine.training.start import is_path, source_job

MAX_DEPTH = 50  # a chain longer than this is cut (it cannot loop: a start predates its job)


def lineage(job_id: str, home: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The chain, oldest first, ending with the job: {"job", "name", "checkpoint"} per job
    (checkpoint: which of its checkpoints started the next job), after {"file"} or
    {"download"} where the chain began with one.
    A deleted parent job appears as {"job", "name": None}."""
    chain: list[dict[str, Any]] = []
    current: str | None = job_id
    which = ""
    with store.opened(home) as conn:
        while current and len(chain) < MAX_DEPTH:
            job = store.get_job(conn, current)
            if job is None:
                chain.append({"job": current, "name": None, "checkpoint": which})
                break
            chain.append({"job": job.id, "name": job.name, "checkpoint": which})
            start = str(job.config.get("init_from") or "")
            current = source_job(start)
            which = start.partition(":")[2] if current else ""
            if start and current is None:
                chain.append({"file": Path(start).name} if is_path(start)
                             else {"download": start})
    return chain[::-1]


def lineage_line(job_id: str, home: str | os.PathLike | None = None) -> str:
    """'file resnet18.pth -> job A (name) [best] -> job B (name)', or '' when the job
    started from random weights."""
    chain = lineage(job_id, home)
    if len(chain) < 2:
        return ""
    parts = []
    for link in chain:
        if "file" in link:
            parts.append(f"file {link['file']}")
        elif "download" in link:
            parts.append(link["download"])
        else:
            label = f"{link['job']} ({link['name']})" if link["name"] else \
                f"{link['job']} (deleted)"
            parts.append(label)
    # Each arrow carries the parent's checkpoint that started the next job.
    line = parts[0]
    for link, part in zip(chain[:-1], parts[1:], strict=True):
        line += f" -[{link['checkpoint']}]-> " if link.get("checkpoint") else " -> "
        line += part
    return line
