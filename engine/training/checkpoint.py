"""Checkpoints: written atomically, loaded with weights_only=True (tensors and plain data only)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from engine.workspace import atomic_write_bytes


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """A run's kept checkpoints: best.pt, then one per checkpoint interval, newest first."""
    run_dir = Path(run_dir)
    kept = sorted((run_dir / "checkpoints").glob("epoch-*.pt"), reverse=True)
    best = run_dir / "best.pt"
    return ([best] if best.exists() else []) + kept


def checkpoint_label(run_dir: str | os.PathLike, path: str | os.PathLike) -> str:
    """'best.pt' or 'checkpoints/epoch-0002.pt': a checkpoint named within its run."""
    return str(Path(path).relative_to(run_dir))
