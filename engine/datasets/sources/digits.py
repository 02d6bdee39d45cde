"""scikit-learn's bundled handwritten digits, framed like MNIST: the offline default data.

load_digits() holds 1,797 real 8x8 scans with ink levels 0..16. Each is scaled to 0..255, its
ink bounding box fitted into 20x20 keeping aspect ratio, and placed in 28x28 so that its centre
of mass sits at (14, 14) (row, column in pixel indexes), which is where real MNIST digits'
centres of mass sit on average. White ink on black, as MNIST.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.datasets.sources.base import ArrayPart, SourceData

BOX = 20
FRAME = 28


def read_digits_source(args: dict) -> SourceData:
    from sklearn.datasets import load_digits  # heavy import, only when this source is used

    digits = load_digits()
    scans = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    framed = np.stack([frame_digit(scan) for scan in scans])
    return SourceData(classes=[str(d) for d in range(10)],
                      train=ArrayPart(framed, digits.target.astype(np.int64)),
                      polarity="white-on-black", framing="mnist")


def frame_digit(gray: np.ndarray, box: int = BOX, frame: int = FRAME) -> np.ndarray:
    """MNIST framing of one white-on-black uint8 digit: ink box into box x box, mass-centred."""
    ink = gray > 0
    if not ink.any():
        return np.zeros((frame, frame), dtype=np.uint8)
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    fitted = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
    return centre_by_mass(fitted, frame)


def centre_by_mass(fitted: np.ndarray, frame: int) -> np.ndarray:
    """Place `fitted` in a frame x frame canvas with its centre of mass at the frame's middle."""
    h, w = fitted.shape
    mass = fitted.astype(np.float64)
    total = mass.sum()
    cy = (mass.sum(1) @ np.arange(h)) / total if total else (h - 1) / 2
    cx = (mass.sum(0) @ np.arange(w)) / total if total else (w - 1) / 2
    top = int(np.clip(round(frame / 2 - cy), 0, frame - h))
    left = int(np.clip(round(frame / 2 - cx), 0, frame - w))
    out = np.zeros((frame, frame), dtype=np.uint8)
    out[top:top + h, left:left + w] = fitted
    return out
