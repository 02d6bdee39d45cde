"""Live classification of a camera's video: each frame that arrives is classified (at most one
every `every_s`; the others pass with the last answer on them) with the same framing as an
uploaded photo, the answer is drawn on the frame the user sees, and the latest result is kept
for the page to show beside the video ("what the network sees", top-5).

Frames arrive on the video library's own thread; the page reads `latest()` from its script
thread, so the shared state sits behind a lock."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.inference import backends
from engine.inference.uploads import UploadResult, box_overlay, classify_pictures

BOX_COLOUR = (40, 200, 60)
ICE_ENV = "STUDIO_ICE_SERVERS"


def ice_servers() -> list[dict]:
    """The WebRTC ICE servers of the live video, from $STUDIO_ICE_SERVERS (JSON, e.g.
    '[{"urls": ["stun:stun.example.org:3478"]}]'). None by default: the browser and the
    dashboard then meet on their own addresses, which works on one machine or one network (a
    lab); a dashboard hosted behind NAT needs a STUN or TURN server here."""
    raw = os.environ.get(ICE_ENV, "").strip()
    if not raw:
        return []
    try:
        servers = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"{ICE_ENV} is not JSON ({e.msg}): give a list such as "
                         '[{"urls": ["stun:stun.example.org:3478"]}]') from None
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s
                                                 for s in servers):
        raise ValueError(f"{ICE_ENV} must be a list of objects with \"urls\", such as "
                         '[{"urls": ["stun:stun.example.org:3478"]}]')
    return servers


@dataclass(frozen=True)
class LiveState:
    item: UploadResult | None  # the latest frame classified (None before the first)
    classified: int  # frames classified so far
    seen: int  # frames received so far


class LiveClassifier:
    """Classifies a stream's frames for one page; `frame(rgb)` is the per-frame callback."""

    def __init__(self, backend: backends.Backend, digit: bool, polarity: str,
                 every_s: float = 0.2) -> None:
        self.backend, self.digit, self.polarity, self.every_s = backend, digit, polarity, every_s
        self._lock = threading.Lock()
        self._state = LiveState(None, 0, 0)
        self._last = -float("inf")

    def frame(self, rgb: np.ndarray) -> np.ndarray:
        """The frame to show: the answer drawn on it; classifies it if its turn has come."""
        now = time.monotonic()
        with self._lock:
            due = now - self._last >= self.every_s
            if due:
                self._last = now
            state = self._state
        item = state.item
        if due:
            [item] = classify_pictures(self.backend, [UploadResult("camera", Image.fromarray(rgb))],
                                       self.digit, self.polarity)
        with self._lock:
            s = self._state
            self._state = LiveState(item if due else s.item, s.classified + due, s.seen + 1)
        return annotate(rgb, item)

    def latest(self) -> LiveState:
        with self._lock:
            return self._state


def annotate(rgb: np.ndarray, item: UploadResult | None) -> np.ndarray:
    """The frame with the crop box around the ink and the answer (or why there is none)."""
    if item is None:
        return rgb
    if item.framed is not None:
        out = Image.fromarray(box_overlay(Image.fromarray(rgb), item.framed.box, BOX_COLOUR))
    else:
        out = Image.fromarray(rgb).convert("RGB")
    text = (f"{item.result.label}  {item.result.confidence:.0%}" if item.result is not None
            else "no digit in view")
    draw = ImageDraw.Draw(out)
    size = max(14, out.height // 12)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one size only
        font = None
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = size // 4
    draw.rectangle([0, 0, right - left + 2 * pad, bottom - top + 2 * pad], fill=(0, 0, 0))
    draw.text((pad - left, pad - top), text, fill=(255, 255, 255), font=font)
    return np.asarray(out)
