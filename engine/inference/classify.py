"""Classifying one image (a canvas drawing, an upload) with a chosen inference backend, and
looking inside the network for it (feature maps, filters, activation statistics, saliency).

Backends share one small interface so the dashboard, probe boards and benchmarks do not care
whether PyTorch, ONNX Runtime or TensorRT runs the network: deployment code plugs in with
register_backend(). "Inside the model" needs the PyTorch modules, so it is PyTorch-only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from engine.inference.predictor import ImageLike, Prediction, Predictor, resolve_checkpoint
from engine.jobs.threads import apply_interactive_threads

# --- backends -------------------------------------------------------------------------------


@runtime_checkable
class Backend(Protocol):
    """What a classifier needs from an inference runtime."""

    name: str
    classes: list[str]
    input_shape: tuple[int, int, int]  # C, H, W
    preprocess: dict[str, Any]

    def probabilities(self, batch_nhwc_uint8: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """PyTorch on a device: the reference backend, and the one "Inside the model" needs."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu") -> None:
        self.predictor = Predictor(checkpoint, device=device)
        self.name = f"pytorch-{self.predictor.device.type}"
        self.classes = self.predictor.classes
        self.input_shape = self.predictor.input_shape
        self.preprocess = self.predictor.preprocess

    def probabilities(self, batch_nhwc_uint8: np.ndarray) -> np.ndarray:
        return self.predictor.probabilities(batch_nhwc_uint8)


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
    apply_interactive_threads()  # the dashboard's inference: one thread (engine.jobs.threads)
    return _REGISTRY[kind].factory(path, **dict(kw))


register_backend("pytorch-cpu", TorchBackend, "PyTorch (CPU)", device="cpu")
register_backend("pytorch-cuda", TorchBackend, "PyTorch (CUDA)",
                 available=torch.cuda.is_available, device="cuda")


# --- classifying ----------------------------------------------------------------------------


# A classification through any backend is the same record as the predictor's.
ClassifyResult = Prediction


def _result(classes: list[str], seen: np.ndarray, probs: np.ndarray, top_k: int
            ) -> ClassifyResult:
    idx = np.argsort(-probs)[:min(top_k, len(classes))]
    return ClassifyResult(top=[(classes[i], float(probs[i])) for i in idx], probabilities=probs,
                          input=seen)


def prepare(backend: Backend, image: ImageLike, digit: bool = True, polarity: str = "auto"
            ) -> np.ndarray:
    """The uint8 H x W x C input under the backend's preprocessing contract (the same code
    path as training-time inference, so every backend sees identical inputs)."""
    contract = SimpleNamespace(input_shape=tuple(backend.input_shape),
                               preprocess=backend.preprocess)
    seen = Predictor.prepare(contract, image, digit=digit, polarity=polarity)  # type: ignore
    return np.array(seen)  # writable: torch.from_numpy warns on read-only PIL buffers


def classify(backend: Backend, image: ImageLike, top_k: int = 5, digit: bool = True,
             polarity: str = "auto") -> ClassifyResult:
    """Prepare one image and classify it; raises EmptyDrawing for a blank canvas."""
    seen = prepare(backend, image, digit=digit, polarity=polarity)
    return _result(backend.classes, seen, backend.probabilities(seen[None])[0], top_k)


def classify_many(backend: Backend, images: list[ImageLike], top_k: int = 5,
                  digit: bool = True, polarity: str = "auto") -> list[ClassifyResult | None]:
    """One result per image, None where an image holds nothing to classify; one batch."""
    from engine.images.framing import EmptyDrawing

    seen: list[np.ndarray | None] = []
    for image in images:
        try:
            seen.append(prepare(backend, image, digit=digit, polarity=polarity))
        except EmptyDrawing:
            seen.append(None)
    good = [s for s in seen if s is not None]
    probs = iter(backend.probabilities(np.stack(good)) if good else [])
    return [None if s is None else _result(backend.classes, s, next(probs), top_k)
            for s in seen]


# --- inside the model (PyTorch) -------------------------------------------------------------


@dataclass
class LayerStats:
    index: int
    name: str
    shape: tuple[int, ...]
    mean: float
    std: float
    min: float
    max: float
    zero_fraction: float


@dataclass
class Inside:
    feature_maps: list[tuple[str, np.ndarray]]  # (conv layer name, C x H x W float32)
    filters: np.ndarray | None  # first conv's weights, N x kh x kw (x 3), normalized 0..1
    stats: list[LayerStats]
    saliency: np.ndarray  # H x W in 0..1


def layer_names(predictor: Predictor) -> list[str]:
    """'1 conv', '2 maxpool', ...: spec layer types where known, module class names else."""
    layers = predictor.spec.get("layers", []) if isinstance(predictor.spec, dict) else []
    names = []
    for i, module in enumerate(predictor.model):
        kind = layers[i].get("type") if i < len(layers) and isinstance(layers[i], dict) else None
        names.append(f"{i + 1} {kind or type(module).__name__.lower()}")
    return names


def look_inside(backend: Backend, seen: np.ndarray) -> Inside:
    """Feature maps, first-layer filters, per-layer statistics and saliency for one prepared
    input: what DIGITS called "Show visualizations and statistics"."""
    if not isinstance(backend, TorchBackend):
        raise TypeError("looking inside the model needs the PyTorch backend")
    predictor = backend.predictor
    names = layer_names(predictor)
    outputs: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_hook(_keep(outputs, i)) for i, m in enumerate(predictor.model)]
    try:
        x = predictor._tensor(seen[None]).requires_grad_(True)
        logits = predictor.model(x)
        logits[0, int(logits[0].argmax())].backward()
    finally:
        for h in hooks:
            h.remove()
    convs = [i for i, m in enumerate(predictor.model) if isinstance(m, nn.Conv2d)]
    maps = [(names[i], outputs[i][0].cpu().numpy()) for i in convs]
    stats = [_stats(i, names[i], outputs[i]) for i in sorted(outputs)]
    filters = first_filters(predictor.model[convs[0]]) if convs else None
    return Inside(maps, filters, stats, _normalize(x.grad[0].abs().amax(0).cpu().numpy()))


def _keep(outputs: dict[int, torch.Tensor], i: int) -> Callable:
    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            outputs[i] = output.detach().clone()  # later in-place layers must not change it
    return hook


def _stats(i: int, name: str, out: torch.Tensor) -> LayerStats:
    a = out.detach().float()
    return LayerStats(i + 1, name, tuple(a.shape[1:]), float(a.mean()), float(a.std()),
                      float(a.min()), float(a.max()), float((a == 0).float().mean()))


def first_filters(conv: nn.Conv2d) -> np.ndarray:
    """Filter weights for display: N x kh x kw (gray) or N x kh x kw x 3 (colour), each filter
    stretched to 0..1 on its own so weak filters stay visible."""
    w = conv.weight.detach().cpu().numpy()
    w = w.transpose(0, 2, 3, 1) if w.shape[1] == 3 else w.mean(1)
    return np.stack([_normalize(f) for f in w])


def _normalize(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


# --- pictures -------------------------------------------------------------------------------


def enlarge(image: np.ndarray, size: int = 196) -> np.ndarray:
    """Nearest-neighbour enlargement, so each input pixel stays a visible square."""
    a = np.asarray(image)
    scale = max(1, size // max(a.shape[:2]))
    out = a.repeat(scale, 0).repeat(scale, 1)
    return out[:, :, 0] if out.ndim == 3 and out.shape[2] == 1 else out


def grid(maps: np.ndarray, cols: int = 10, cell: int = 48, pad: int = 2) -> np.ndarray:
    """Tile N x H x W (x 3) maps into one uint8 image, each map stretched 0..255 on its own."""
    n = len(maps)
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    tiles = [enlarge((_normalize(m) * 255).astype(np.uint8), cell) for m in maps]
    th, tw = tiles[0].shape[:2]
    shape = (rows * (th + pad) + pad, cols * (tw + pad) + pad) + tiles[0].shape[2:]
    out = np.full(shape, 128, dtype=np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        out[pad + r * (th + pad):pad + r * (th + pad) + th,
            pad + c * (tw + pad):pad + c * (tw + pad) + tw] = t
    return out


def saliency_overlay(seen: np.ndarray, saliency: np.ndarray, size: int = 196) -> np.ndarray:
    """The input in gray with the saliency in red on top (uint8 RGB, enlarged)."""
    gray = seen.astype(np.float32).mean(2) if seen.ndim == 3 else seen.astype(np.float32)
    rgb = np.repeat(gray[:, :, None] * 0.6, 3, axis=2)
    rgb[:, :, 0] = np.maximum(rgb[:, :, 0], saliency * 255)
    return enlarge(np.clip(rgb, 0, 255).astype(np.uint8), size)


def checkpoint_label(run_dir: str | os.PathLike, path: Path) -> str:
    """'best.pt' or 'checkpoints/epoch-0002.pt': a checkpoint named within its run."""
    return str(Path(path).relative_to(run_dir))
