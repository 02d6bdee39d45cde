"""Process checks that hold up in containers: a dead child whose parent is gone may linger as
a zombie (PID 1 need not reap it), and a pid may be reused, so 'alive' also looks at /proc."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def pid_alive(pid: int | None, needle: str | None = None) -> bool:
    """True if `pid` runs and is no zombie; with `needle`, its command line must contain it
    (so a recycled pid of an unrelated process does not count)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs (macOS): the signal check is all we have
    try:
        if stat_fields(pid)[0] in "ZX":
            return False
        if needle is not None:
            return needle in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError, IndexError):
        return False
    return True


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (state, ppid, ..., utime at [11],
    stime at [12]; see proc(5)); the name is cut at its last ')' as it may hold spaces."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def describe_exit(code: int | None) -> str:
    """A worker's exit status in words (negative = killed by that signal)."""
    if code is None:
        return "the worker process vanished without recording an end"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if -code == 9 else ""
        return f"the worker process was killed by {name}{hint}"
    return f"the worker process exited with code {code} without recording an end"


def terminate(pid: int, sig: int = signal.SIGTERM) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
