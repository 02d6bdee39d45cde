"""Simple photo-like digit images for tests: a digit drawn with a font in dark ink on light,
slightly uneven paper, saved as PNG or JPEG bytes."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def digit_photo(digit: int, size: int = 96, fmt: str = "PNG", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed + digit)
    paper = np.linspace(205, 240, size)[None, :].repeat(size, 0)  # light, unevenly lit
    paper = paper + rng.normal(0, 4, (size, size))
    im = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).convert("RGB")
    font = ImageFont.load_default(size=size * 3 // 4)
    ImageDraw.Draw(im).text((size // 2, size // 2), str(digit), fill=(30, 30, 40), font=font,
                            anchor="mm", stroke_width=max(1, size // 40),
                            stroke_fill=(30, 30, 40))
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    """A zip in memory holding `files` (name -> content), as a user uploads one."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()
