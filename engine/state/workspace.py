"""Where state lives: the workspace directory and atomic file writes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def studio_home(home: str | os.PathLike | None = None) -> Path:
    """The workspace root: `home` if given, else $STUDIO_HOME, else ./workspace."""
    root = Path(home or os.environ.get("STUDIO_HOME") or "workspace")
    if not root.is_dir():  # a stat: mkdir(exist_ok) on every call raised and caught an error
        root.mkdir(parents=True, exist_ok=True)
    return root


def _atomic(path: Path, write) -> None:
    # Write beside the target, then rename: readers never see a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    _atomic(Path(path), lambda f: f.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    _atomic(Path(path), lambda f: np.save(f, array, allow_pickle=False))


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
