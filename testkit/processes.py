"""The processes a test or benchmark started for a workspace."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from engine.processes import stat_fields


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


def schedulers_of(home: Path) -> list[int]:
    """The job scheduler processes (`python -m engine.jobs`) of this workspace. A child the
    scheduler has forked to start a worker shows the scheduler's command line until it execs
    the worker (a window a loaded machine stretches): one whose parent is a scheduler too is
    not counted."""
    parents = {}
    for pid in processes_of(home):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            ppid = int(stat_fields(pid)[1])
        except OSError:
            continue
        if b"engine.jobs" in args:
            parents[pid] = ppid
    return [pid for pid, ppid in parents.items() if ppid not in parents]


def stop(proc: subprocess.Popen, home: Path | None = None) -> None:
    """Stop a process this test or benchmark started (SIGTERM, then SIGKILL after 30 s) and,
    given its workspace, kill what is left of that workspace's processes (a scheduler's
    workers): never anyone else's."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    for pid in processes_of(home) if home is not None else ():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
