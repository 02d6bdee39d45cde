"""Test images drawn in code: what the canvas and users' uploads look like."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def draw_one(style: str = "MNIST", size: int = 280) -> np.ndarray:
    """A '1' on a canvas-sized RGBA image, as st_canvas returns it."""
    ink, paper = ((255, 255, 255, 255), (0, 0, 0, 255)) if style == "MNIST" else \
        ((0, 0, 0, 255), (255, 255, 255, 255))
    im = Image.new("RGBA", (size, size), paper)
    ImageDraw.Draw(im).line([(size // 2, size // 5), (size // 2, size * 4 // 5)], fill=ink,
                            width=size // 14)
    return np.asarray(im)
