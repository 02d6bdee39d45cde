"""What a classification returns, the same record for every backend and every caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.images.contract import softmax

__all__ = ["Prediction", "predictions", "softmax", "top_k"]


@dataclass
class Prediction:
    top: list[tuple[str, float]]  # (class, probability), most likely first
    probabilities: np.ndarray  # one per class
    input: np.ndarray  # what the network saw: uint8 H x W x C, before normalization
    raw: np.ndarray | None = None  # uncalibrated probabilities, for a model with a temperature

    @property
    def label(self) -> str:
        return self.top[0][0]

    @property
    def confidence(self) -> float:
        return self.top[0][1]

    @property
    def raw_confidence(self) -> float | None:
        """The top class's probability before temperature scaling; None when uncalibrated."""
        if self.raw is None:
            return None
        return float(self.raw[int(np.argmax(self.probabilities))])

    def to_dict(self) -> dict[str, Any]:
        out = {"label": self.label, "confidence": self.confidence,
               "top": [{"class": c, "probability": p} for c, p in self.top]}
        if self.raw is not None:
            out["raw_confidence"] = self.raw_confidence
        return out


def top_k(probs: np.ndarray, classes: list[str], k: int = 5) -> list[tuple[str, float]]:
    """The k most likely (class, probability) pairs of one probability vector."""
    idx = np.argsort(-probs)[:min(k, len(classes))]
    return [(classes[i], float(probs[i])) for i in idx]


def predictions(probs: np.ndarray, classes: list[str], inputs: np.ndarray, k: int = 5,
                raw: np.ndarray | None = None) -> list[Prediction]:
    """One Prediction per row of an N x classes probability batch and its prepared inputs
    (and, for a calibrated model, the raw probabilities beside the calibrated ones)."""
    rows = raw if raw is not None else [None] * len(probs)
    return [Prediction(top_k(p, classes, k), p, seen, r)
            for p, seen, r in zip(probs, inputs, rows, strict=True)]


def backend_predictions(backend: Any, batch: np.ndarray, k: int = 5) -> list[Prediction]:
    """Predictions of a backend for prepared uint8 images: calibrated probabilities, and the
    raw ones beside them when the backend's contract has a temperature."""
    probs = backend.probabilities(batch)
    raw = backend.probabilities(batch, calibrated=False) \
        if getattr(backend.contract, "calibrated", False) else None
    return predictions(probs, backend.classes, batch, k, raw)
