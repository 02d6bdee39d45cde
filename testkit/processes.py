"""The processes a test or benchmark started for a workspace."""

from __future__ import annotations

import os
from pathlib import Path


def processes_of(home: Path) -> list[int]:
    """Processes (not zombies) whose environment points at this workspace: ours alone."""
    needle = f"\0STUDIO_HOME={home}\0".encode()
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            if needle in b"\0" + (p / "environ").read_bytes():
                found.append(int(p.name))
        except OSError:
            continue
    return found
