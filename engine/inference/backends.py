"""Inference backends behind one small interface, chosen by name.

The dashboard, probe boards and benchmarks do not care whether PyTorch, ONNX Runtime or TensorRT
runs the network: each backend takes prepared uint8 N x H x W x C batches (its contract's
prepare()) and returns class probabilities. Deployment code plugs in with register_backend();
engine never imports trt.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from engine.images.contract import Contract
from engine.inference.predictor import Predictor, resolve_checkpoint
from engine.threads import apply_interactive_threads


@runtime_checkable
class Backend(Protocol):
    """What a classifier needs from an inference runtime."""

    name: str
    classes: list[str]
    contract: Contract

    def probabilities(self, batch_nhwc_uint8: np.ndarray, calibrated: bool = True
                      ) -> np.ndarray: ...


class TorchBackend:
    """PyTorch on a device: the reference backend, and the one "Inside the model" needs."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu") -> None:
        self.predictor = Predictor(checkpoint, device=device)
        self.name = f"pytorch-{self.predictor.device.type}"
        self.classes = self.predictor.classes
        self.contract = self.predictor.contract

    def probabilities(self, batch_nhwc_uint8: np.ndarray, calibrated: bool = True
                      ) -> np.ndarray:
        return self.predictor.probabilities(batch_nhwc_uint8, calibrated)


@dataclass(frozen=True)
class BackendEntry:
    factory: Callable[..., Backend]
    label: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    available: Callable[[], bool] = lambda: True


_REGISTRY: dict[str, BackendEntry] = {}


def register_backend(name: str, factory: Callable[..., Backend], label: str | None = None,
                     available: Callable[[], bool] = lambda: True, **kwargs: Any) -> None:
    """Make a backend choosable by name: factory(checkpoint, **kwargs) -> Backend. ONNX Runtime
    and TensorRT register here, so every page that classifies offers them."""
    _REGISTRY[name] = BackendEntry(factory, label or name, dict(kwargs), available)


def available_backends() -> dict[str, str]:
    """name -> label of the backends usable on this machine now."""
    return {n: e.label for n, e in _REGISTRY.items() if e.available()}


def get_backend(kind: str, checkpoint: str | os.PathLike, **kw: Any) -> Backend:
    """A backend of a registered kind for a checkpoint; cached while the file is unchanged,
    so a page rerun per canvas stroke does not reload the network."""
    if kind not in _REGISTRY:
        raise KeyError(f"unknown backend {kind!r}; registered: {', '.join(_REGISTRY)}")
    path = resolve_checkpoint(checkpoint).resolve()
    return _cached_backend(kind, str(path), path.stat().st_mtime_ns,
                           tuple(sorted({**_REGISTRY[kind].kwargs, **kw}.items())))


@lru_cache(maxsize=8)
def _cached_backend(kind: str, path: str, mtime_ns: int, kw: tuple) -> Backend:
    apply_interactive_threads()  # the dashboard's inference: one thread (engine.threads)
    return _REGISTRY[kind].factory(path, **dict(kw))


register_backend("pytorch-cpu", TorchBackend, "PyTorch (CPU)", device="cpu")
register_backend("pytorch-cuda", TorchBackend, "PyTorch (CUDA)",
                 available=torch.cuda.is_available, device="cuda")
