"""The preprocessing contract on the numpy side, for ONNX Runtime and TensorRT inputs.

Images are prepared (resized, framed, polarity) by engine.inference.predictor; this turns
the prepared
uint8 N x H x W x C batch into the float NCHW tensor the network was trained on:
x / scale, then (x - mean) / std, exactly as engine.inference.Predictor does in torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def normalize_batch(batch_nhwc: np.ndarray, preprocess: dict[str, Any]) -> np.ndarray:
    """float32 N x C x H x W network input from prepared uint8 N x H x W x C images."""
    x = np.ascontiguousarray(batch_nhwc).astype(np.float32).transpose(0, 3, 1, 2)
    c = x.shape[1]
    scale = float(preprocess.get("scale") or 255.0)
    mean = np.asarray(preprocess.get("mean") or [0.0] * c, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(preprocess.get("std") or [1.0] * c, dtype=np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((x / scale - mean) / np.maximum(std, 1e-6))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
