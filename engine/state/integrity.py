"""Checkpoint integrity without torch: each checkpoint's sha256 in a sidecar beside it.

`<name>.pt.sha256` (JSON) holds the file's hash and the hash of the version it replaced; the
sidecar is written before the checkpoint is renamed into place, so a kill between the two leaves
a pair that still verifies. The scheduler and job listings use this (they never import torch).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from engine.state.workspace import atomic_write_json, sha256_file

SIDECAR = ".sha256"
# (path, size, mtime_ns, sidecar size, sidecar mtime_ns) -> intact: a checkpoint read while its
# new sidecar was still on the way is looked at again once the sidecar lands.
_VERIFIED: dict[tuple[str, int, int, int, int], bool] = {}


def sidecar(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _recorded(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(sidecar(path).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def verify(path: str | os.PathLike) -> bool | None:
    """True if the checkpoint's bytes match its recorded sha256, False if not, None when it
    has no hash recorded (written before hashes existed). Cached by both files' size and mtime."""
    path = Path(path)
    try:
        side = sidecar(path).stat()
    except OSError:
        return None
    try:
        st = path.stat()
    except OSError:
        return False
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, side.st_size, side.st_mtime_ns)
    if key not in _VERIFIED:
        recorded = _recorded(path)
        actual = sha256_file(path)
        _VERIFIED[key] = actual in (recorded.get("sha256"), recorded.get("previous"))
    return _VERIFIED[key]


def intact_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """The run's checkpoints (best, last, then epoch-N newest first) that verify."""
    run_dir = Path(run_dir)
    candidates = [run_dir / "best.pt", run_dir / "last.pt"] + sorted(
        (run_dir / "checkpoints").glob("epoch-*.pt"), reverse=True)
    return [p for p in candidates if p.exists() and verify(p) is not False]


def record(path: str | os.PathLike, data: bytes) -> None:
    """Write the sidecar for `data`, about to replace the checkpoint at `path`."""

    path = Path(path)
    previous = _recorded(path).get("sha256") if path.exists() else None
    atomic_write_json(sidecar(path), {"sha256": sha256_bytes(data), "previous": previous,
                                      "bytes": len(data)})
