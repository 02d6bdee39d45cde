"""Looking inside a PyTorch network for one input: feature maps, first-layer filters,
per-layer activation statistics and saliency (what DIGITS called "Show visualizations and
statistics"), and the pictures that show them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.images.pictures import enlarge
from engine.inference.backends import Backend, TorchBackend
from engine.inference.predictor import Predictor


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
        x = predictor.tensor(seen[None]).requires_grad_(True)
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
