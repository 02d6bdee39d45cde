"""Turning a drawing into what an MNIST-trained network expects.

MNIST digits were made by fitting the ink into a 20x20 box (keeping aspect ratio) and centring
its centre of mass in a 28x28 frame, white ink on black. normalize_digit() does the same to a
canvas drawing or a photo of a digit, so the model sees its training distribution.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

INK_THRESHOLD = 0.2  # fraction of the brightest ink level that counts as ink


class EmptyDrawing(ValueError):
    """No ink was found: there is nothing to classify."""

    def __init__(self) -> None:
        super().__init__("draw something: the image has no ink to classify")


def to_gray(image: np.ndarray | Image.Image) -> np.ndarray:
    """A float32 HxW array in 0..255; alpha (as from a canvas) composites onto the background."""
    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            image = image.convert("RGBA")
            return _alpha_gray(np.asarray(image, dtype=np.float32))
        return np.asarray(image.convert("L"), dtype=np.float32)
    a = np.asarray(image)
    if a.ndim == 2:
        return a.astype(np.float32)
    if a.ndim == 3 and a.shape[2] == 1:
        return a[:, :, 0].astype(np.float32)
    if a.ndim == 3 and a.shape[2] == 4:
        return _alpha_gray(a.astype(np.float32))
    if a.ndim == 3 and a.shape[2] == 3:
        return a.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    raise ValueError(f"expected a gray, RGB or RGBA image, got an array of shape {a.shape}")


def _alpha_gray(rgba: np.ndarray) -> np.ndarray:
    gray = rgba[:, :, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    alpha = rgba[:, :, 3] / 255.0
    if alpha.min() >= 1.0:
        return gray
    # Transparent pixels take the background level implied by the opaque ones' opposite.
    opaque = alpha > 0.5
    ink_level = gray[opaque].mean() if opaque.any() else 255.0
    background = 0.0 if ink_level > 127 else 255.0
    return gray * alpha + background * (1 - alpha)


def has_light_background(gray: np.ndarray) -> bool:
    """Dark ink on light paper? Judged by the border, where the background is."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return float(np.median(border)) > 127


def apply_polarity(gray: np.ndarray, polarity: str) -> np.ndarray:
    """Make ink bright on dark: 'auto' inverts light-background images, 'invert' always,
    'as-is' never."""
    if polarity == "invert" or (polarity == "auto" and has_light_background(gray)):
        return 255.0 - gray
    if polarity not in ("auto", "invert", "as-is"):
        raise ValueError(f"polarity must be auto, invert or as-is, not {polarity!r}")
    return gray


def normalize_digit(image: np.ndarray | Image.Image, polarity: str = "auto", size: int = 28,
                    box: int = 20) -> np.ndarray:
    """An MNIST-framed uint8 size x size image of the ink, or EmptyDrawing if there is none."""
    gray = apply_polarity(to_gray(image), polarity)
    gray = gray - np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]]))
    gray = np.clip(gray, 0, 255)
    peak = float(gray.max())
    if peak < 16:  # nothing but background and faint noise
        raise EmptyDrawing()
    rows = np.flatnonzero((gray > peak * INK_THRESHOLD).any(1))
    cols = np.flatnonzero((gray > peak * INK_THRESHOLD).any(0))
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = box / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    fitted = Image.fromarray(crop.astype(np.float32), mode="F").resize(
        (new_w, new_h), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR)
    fitted = np.clip(np.asarray(fitted), 0, None)
    # Full contrast after the fit: a thin stroke shrunk from a big canvas stays visible ink,
    # as MNIST's strokes are.
    fitted = fitted * (255.0 / max(float(fitted.max()), 1e-6))
    return _centre_by_mass(fitted, size)


def _centre_by_mass(fitted: np.ndarray, size: int) -> np.ndarray:
    h, w = fitted.shape
    total = fitted.sum()
    ys, xs = np.indices(fitted.shape)
    cy = (ys * fitted).sum() / total
    cx = (xs * fitted).sum() / total
    # Place so the centre of mass lands on the frame's centre, never cutting the ink off.
    top = int(np.clip(round(size / 2 - cy), 0, size - h))
    left = int(np.clip(round(size / 2 - cx), 0, size - w))
    out = np.zeros((size, size), dtype=np.float32)
    out[top:top + h, left:left + w] = fitted
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
