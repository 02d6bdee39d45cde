"""Numbers computed from the training images: the mean image, channel statistics, polarity."""

from __future__ import annotations

import numpy as np

CHUNK = 1024
DARK_BORDER = 64  # mean border level under which grayscale images are white-on-black


def training_stats(images: np.ndarray, train: np.ndarray
                   ) -> tuple[np.ndarray, list[float], list[float]]:
    """Mean image (float32 H x W x C, 0..255) and per-channel mean and std in 0..1.

    Chunked, so a large training set never becomes one big float array.
    """
    h, w, c = images.shape[1:]
    total = np.zeros((h, w, c), dtype=np.float64)
    squares = np.zeros(c, dtype=np.float64)
    for start in range(0, len(train), CHUNK):
        x = images[train[start:start + CHUNK]].astype(np.float32)
        total += x.sum(0, dtype=np.float64)
        squares += np.square(x).sum((0, 1, 2), dtype=np.float64)
    n = max(len(train), 1)
    mean_image = total / n
    mean = mean_image.mean((0, 1)) / 255.0
    var = squares / (n * h * w) / 255.0**2 - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    std = np.where(std < 1e-6, 1.0, std)  # constant images: leave the scale alone
    return mean_image.astype(np.float32), [float(m) for m in mean], [float(s) for s in std]


def looks_white_on_black(images: np.ndarray, train: np.ndarray) -> bool:
    """Grayscale images whose borders are dark on average hold light ink on a dark ground."""
    if images.shape[-1] != 1 or len(train) == 0:
        return False
    sample = images[np.sort(train[:: max(1, len(train) // 2000)])]
    border = np.concatenate([sample[:, 0].ravel(), sample[:, -1].ravel(),
                             sample[:, :, 0].ravel(), sample[:, :, -1].ravel()])
    return float(border.mean()) < DARK_BORDER
