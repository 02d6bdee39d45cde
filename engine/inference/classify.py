"""Classifying images (canvas drawings, uploads) with any backend, under its contract."""

from __future__ import annotations

import numpy as np

from engine.images.contract import ImageLike
from engine.images.framing import EmptyDrawing
from engine.inference.backends import Backend
from engine.inference.results import Prediction, backend_predictions


def prepare(backend: Backend, image: ImageLike, digit: bool = True, polarity: str = "auto"
            ) -> np.ndarray:
    """The uint8 H x W x C input under the backend's preprocessing contract (the same code
    as training-time inference, so every backend sees identical inputs)."""
    return backend.contract.prepare(image, digit=digit, polarity=polarity)


def classify(backend: Backend, image: ImageLike, top_k: int = 5, digit: bool = True,
             polarity: str = "auto") -> Prediction:
    """Prepare one image and classify it; raises EmptyDrawing for a blank canvas."""
    seen = prepare(backend, image, digit=digit, polarity=polarity)[None]
    return backend_predictions(backend, seen, top_k)[0]


def classify_batch(backend: Backend, images: list[ImageLike], top_k: int = 5,
                  digit: bool = True, polarity: str = "auto") -> list[Prediction | None]:
    """One result per image, None where an image holds nothing to classify; one batch."""
    seen: list[np.ndarray | None] = []
    for image in images:
        try:
            seen.append(prepare(backend, image, digit=digit, polarity=polarity))
        except EmptyDrawing:
            seen.append(None)
    good = np.stack([s for s in seen if s is not None]) if any(
        s is not None for s in seen) else None
    done = iter(backend_predictions(backend, good, top_k) if good is not None else [])
    return [None if s is None else next(done) for s in seen]
