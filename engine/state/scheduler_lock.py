"""The workspace's scheduler lock: one scheduler per workspace holds an exclusive flock on
`<home>/scheduler.lock` for its lifetime (the kernel drops it when the process dies, even by
kill -9). State, not the queue: a backup or a page asks whether one runs without importing
the scheduler."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from engine.state.workspace import studio_home

LOCK_FILE = "scheduler.lock"


def take_lock(home: Path, wait_s: float = 1.0) -> int | None:
    """The scheduler lock's fd, or None if another process holds it. Retries briefly, since
    `scheduler_alive` probes take the lock for a moment."""
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def scheduler_alive(home: str | os.PathLike | None = None) -> bool:
    """True while some process holds the workspace's scheduler lock."""
    fd = os.open(studio_home(home) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
