"""Weights files users upload: checked (weights_only=True) before they are kept, then stored
under <home>/weights/ by content hash, so a run's init_from names a file that stays put."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from engine.state.workspace import atomic_write_bytes, studio_home
from engine.training.init import InitError, read_weights

MAX_BYTES = 2 * 1024**3


def weights_dir(home: str | os.PathLike | None = None) -> Path:
    return studio_home(home) / "weights"


def keep_weights_file(filename: str, data: bytes, home: str | os.PathLike | None = None
                      ) -> Path:
    """Check an uploaded weights file (tensors only, a state dict) and keep it; returns its
    path for init_from. InitError (one line) says why a file is refused; nothing is kept."""
    if not data:
        raise InitError(f"{filename} is empty")
    if len(data) > MAX_BYTES:
        raise InitError(f"{filename} is larger than {MAX_BYTES // 1024**3} GiB")
    stem = re.sub(r"[^\w.\-]+", "_", Path(filename).name)[:80] or "weights.pt"
    if not stem.endswith((".pt", ".pth")):
        stem += ".pt"
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / stem
        probe.write_bytes(data)
        read_weights(probe)  # refuses code, non-weights and non-state-dicts
    path = weights_dir(home) / f"{hashlib.sha256(data).hexdigest()[:12]}-{stem}"
    if not path.exists():
        atomic_write_bytes(path, data)
    return path


def kept_weights_files(home: str | os.PathLike | None = None) -> list[Path]:
    folder = weights_dir(home)
    return sorted(folder.glob("*.pt*")) if folder.exists() else []
