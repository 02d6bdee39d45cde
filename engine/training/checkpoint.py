"""Checkpoints: written atomically, loaded with weights_only=True (tensors and plain data only),
each with a sha256 beside it that is verified before loading.

`<name>.pt.sha256` (JSON) holds the file's hash, and the hash of the version it replaced: the
sidecar is written before the checkpoint is renamed into place, so a kill between the two
leaves a pair that still verifies. A checkpoint whose bytes match neither is corrupt: loading
it raises CheckpointError, one line that names the file and the intact checkpoints of its run.
Checkpoints from before hashes existed (no sidecar) are still loaded, and any failure to
unpickle them is the same one-line CheckpointError.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from engine.state.integrity import intact_checkpoints, record, verify
from engine.state.workspace import atomic_write_bytes

REQUIRED_KEYS = ("model", "spec", "classes", "input_shape", "preprocess")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (corrupt, truncated, not a checkpoint); one line."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    path = Path(path)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    record(path, data)
    atomic_write_bytes(path, data)


def _corrupt(path: Path, why: str) -> CheckpointError:
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    others = [p for p in intact_checkpoints(run_dir) if p.resolve() != path.resolve()]
    offer = ("; intact checkpoints of this run: "
             + ", ".join(p.relative_to(run_dir).as_posix() for p in others[:6])
             if others else "; the run has no intact checkpoint")
    return CheckpointError(f"checkpoint {path.name} is corrupt ({why}){offer}")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """The checkpoint's state, after verifying its sha256; CheckpointError (one line) when it
    is corrupt, truncated, empty or not a checkpoint of this studio."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if verify(path) is False:
        raise _corrupt(path, "its sha256 does not match the one recorded when it was saved")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError,
            KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError,
            OSError) as e:
        why = "it cannot be read as a PyTorch checkpoint"
        if isinstance(e, pickle.UnpicklingError):
            why = "it holds data other than tensors and plain values, or is damaged"
        elif path.stat().st_size == 0:
            why = "it is empty"
        raise _corrupt(path, why) from None
    if not isinstance(state, dict):
        raise _corrupt(path, f"it holds a {type(state).__name__}, not a checkpoint")
    return state


def check_model_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """A loaded checkpoint must carry what a model is rebuilt from."""
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {Path(path).name} is not a model checkpoint of this "
                              f"studio: it lacks {', '.join(missing)}")


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """A run's kept checkpoints: best.pt, then one per checkpoint interval, newest first."""
    run_dir = Path(run_dir)
    kept = sorted((run_dir / "checkpoints").glob("epoch-*.pt"), reverse=True)
    best = run_dir / "best.pt"
    return ([best] if best.exists() else []) + kept


def checkpoint_label(run_dir: str | os.PathLike, path: str | os.PathLike) -> str:
    """'best.pt' or 'checkpoints/epoch-0002.pt': a checkpoint named within its run."""
    return str(Path(path).relative_to(run_dir))
