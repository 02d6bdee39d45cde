"""Simple photo-like digit images for tests: a digit drawn with a font in dark ink on light,
slightly uneven paper, saved as PNG or JPEG bytes."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

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


def y4m_video(path: Path, image: bytes, frames: int = 10, fps: int = 10) -> Path:
    """A still picture as a Y4M video (4:2:0, full range), the file Chromium's fake camera
    plays in a loop (--use-file-for-fake-video-capture)."""
    rgb = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"), np.float32)
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    r, g, b = (rgb[:h, :w, i] for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b

    def plane(a: np.ndarray, half: bool) -> bytes:
        if half:  # 4:2:0: one chroma sample per 2x2 block
            a = a.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        return np.clip(np.rint(a), 0, 255).astype(np.uint8).tobytes()

    frame = b"FRAME\n" + plane(y, False) + plane(u, True) + plane(v, True)
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode()
                     + frame * frames)
    return path
