"""What a classification returns, the same record for every backend and every caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Prediction:
    top: list[tuple[str, float]]  # (class, probability), most likely first
    probabilities: np.ndarray  # one per class
    input: np.ndarray  # what the network saw: uint8 H x W x C, before normalization

    @property
    def label(self) -> str:
        return self.top[0][0]

    @property
    def confidence(self) -> float:
        return self.top[0][1]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence,
                "top": [{"class": c, "probability": p} for c, p in self.top]}


def top_k(probs: np.ndarray, classes: list[str], k: int = 5) -> list[tuple[str, float]]:
    """The k most likely (class, probability) pairs of one probability vector."""
    idx = np.argsort(-probs)[:min(k, len(classes))]
    return [(classes[i], float(probs[i])) for i in idx]


def predictions(probs: np.ndarray, classes: list[str], inputs: np.ndarray, k: int = 5
                ) -> list[Prediction]:
    """One Prediction per row of an N x classes probability batch and its prepared inputs."""
    return [Prediction(top_k(p, classes, k), p, seen)
            for p, seen in zip(probs, inputs, strict=True)]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of N x classes logits (numpy backends return logits)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
