"""Pictures for people: small network inputs enlarged so each pixel stays a visible square."""

from __future__ import annotations

import numpy as np


def enlarge(image: np.ndarray, size: int = 196) -> np.ndarray:
    """Nearest-neighbour upscale by the largest integer factor that fits `size`; a uint8
    H x W x 1 image becomes H x W, which image widgets show as grayscale."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    factor = max(1, size // max(img.shape[0], img.shape[1]))
    return img.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else img
