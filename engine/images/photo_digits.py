"""Photo-like digits made from MNIST-style digits: a test set for "does it work on real photos?".

Each MNIST digit (white ink on black, 28x28) becomes the ink of a photo of a digit written on
paper: enlarged to a random size and aspect ratio, rotated, laid as dark ink on paper with a
texture, lit unevenly (a gradient and a vignette), with grain, blur, a few specks of dirt and a
warm tint, at a random size with random margins, then saved as JPEG at quality 40-90.

The placement of the ink in the photo is known (the box where the laid ink covers at least
half a pixel), so tests can check that framing finds the digit.
Deterministic: the same digits and seed make the same photos.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

# The digit's known placement: where the ink covers at least half a pixel. (MNIST digits carry
# faint strays at 20-25% that a photo's grain buries; they are not part of the placement.)
KNOWN_INK = 0.5


@dataclass(frozen=True)
class PhotoDigit:
    jpeg: bytes  # the photo, as a file
    label: int
    box: tuple[int, int, int, int]  # the ink: top, left, bottom, right (exclusive), pixels
    size: tuple[int, int]  # height, width
    quality: int  # JPEG quality

    def image(self) -> Image.Image:
        return Image.open(io.BytesIO(self.jpeg)).convert("RGB")


def photo_digit(digit: np.ndarray, label: int, rng: np.random.Generator) -> PhotoDigit:
    """One photo-like image of a 28x28 white-on-black uint8 digit."""
    alpha = _ink_alpha(digit, rng)
    ah, aw = alpha.shape
    long_side = max(ah, aw)
    margins = rng.uniform(0.15, 1.2, size=4) * long_side  # top, bottom, left, right
    top, bottom, left, right = (int(m) + 2 for m in margins)
    h, w = ah + top + bottom, aw + left + right
    ink = np.zeros((h, w), np.float32)
    ink[top:top + ah, left:left + aw] = alpha

    py, px = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = py / max(h - 1, 1) - 0.5, px / max(w - 1, 1) - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    light = (rng.uniform(150, 250)
             + rng.uniform(0, 70) * (np.cos(angle) * xx + np.sin(angle) * yy)
             - rng.uniform(0, 80) * (xx ** 2 + yy ** 2))
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)).astype(np.float32),
                                      rng.uniform(3, 12))
    texture *= rng.uniform(0, 0.04) / max(float(texture.std()), 1e-6)
    paper = np.clip(rng.uniform(0.75, 0.97) + texture, 0, 1)
    ink_reflectance = rng.uniform(0.05, 0.3)
    reflectance = paper * (1 - ink) + ink_reflectance * ink
    gray = light * reflectance
    for _ in range(int(rng.integers(0, 4))):  # specks of dirt, away from the digit
        cy, cx = _away_from(rng, h, w, (top, left, top + ah, left + aw))
        r = rng.uniform(0.7, 1.6)
        gray = np.where((py - cy) ** 2 + (px - cx) ** 2 <= r * r,
                        gray * rng.uniform(0.2, 0.5), gray)
    gray = ndimage.gaussian_filter(gray, rng.uniform(0.0, 1.2))
    gray = gray + rng.normal(0, rng.uniform(1.5, 7), (h, w))
    tint = np.array([1.0, rng.uniform(0.93, 1.0), rng.uniform(0.82, 0.97)], np.float32)
    rgb = np.clip(gray[:, :, None] * tint + 0.5, 0, 255).astype(np.uint8)
    quality = int(rng.integers(40, 91))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    rows, cols = np.flatnonzero((ink >= KNOWN_INK).any(1)), np.flatnonzero(
        (ink >= KNOWN_INK).any(0))
    box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    return PhotoDigit(buf.getvalue(), int(label), box, (h, w), quality)


def _ink_alpha(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit's ink as 0..1 coverage, enlarged to 40-130 px tall with an aspect change and a
    rotation, trimmed to the ink."""
    d = np.asarray(digit, np.float32)
    height = rng.uniform(40, 130)
    aspect = rng.uniform(0.75, 1.3)
    scale = height / 28
    size = (max(8, round(28 * scale * aspect)), max(8, round(28 * scale)))
    big = Image.fromarray(d, mode="F").resize(size, Image.Resampling.BICUBIC)
    big = big.rotate(rng.uniform(-12, 12), Image.Resampling.BILINEAR, expand=True, fillcolor=0)
    alpha = np.clip(np.asarray(big) / 255.0, 0, 1)
    rows, cols = np.flatnonzero((alpha > 0.02).any(1)), np.flatnonzero((alpha > 0.02).any(0))
    return alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32)


def _away_from(rng: np.random.Generator, h: int, w: int, box: tuple[int, int, int, int]
               ) -> tuple[float, float]:
    """A point at least 6 px outside the box (or anywhere, after 20 tries)."""
    top, left, bottom, right = box
    for _ in range(20):
        y, x = rng.uniform(2, h - 3), rng.uniform(2, w - 3)
        if not (top - 6 <= y <= bottom + 6 and left - 6 <= x <= right + 6):
            return y, x
    return y, x


def photo_set(digits: np.ndarray, labels: np.ndarray, count: int, seed: int = 0
              ) -> list[PhotoDigit]:
    """`count` photos of digits picked at random (without replacement) from `digits`."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(digits), size=min(count, len(digits)), replace=False)
    return [photo_digit(digits[i], int(labels[i]), rng) for i in picks]
