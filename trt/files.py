"""Small file helpers: content hashes and sidecar paths (atomic writes live in engine.workspace)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar(path: str | os.PathLike) -> Path:
    """The JSON report that lives next to a model or engine file."""
    path = Path(path)
    return path.with_name(path.name + ".json")
