"""Classifying uploaded files one by one, keeping what each needs to be shown: the result, the
framing that prepared it (crop box, cleaned page, polarity decision), or the one message that
says why it could not be classified. One bad file never hides the others' results, and a
failure gets exactly one message (a truncated PNG is "cannot read", never also "no ink").
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from engine.images.framing import EmptyDrawing, Framed, frame_digit
from engine.images.loading import ImageError, load_image
from engine.inference import backends
from engine.inference import classify as cl
from engine.inference.results import Prediction

NO_INK = "nothing to classify in this image: no ink stands out from the paper"


@dataclass
class UploadResult:
    name: str
    image: Image.Image | None  # the decoded upload (None when it could not be read)
    result: Prediction | None = None
    framed: Framed | None = None  # how the digit was framed (digit mode only)
    error: str | None = None  # why there is no result: one message


def classify_uploads(backend: backends.Backend,
                     files: list[tuple[str, bytes | str | os.PathLike]], digit: bool,
                     polarity: str, top_k: int = 5) -> list[UploadResult]:
    """One UploadResult per (name, bytes or path), in order; the readable ones classified in
    a batch."""
    items: list[UploadResult] = []
    for name, data in files:
        try:
            items.append(UploadResult(name, load_image(data)))
        except ImageError as e:
            items.append(UploadResult(name, None, error=_named(str(e), name)))
    return classify_pictures(backend, items, digit, polarity, top_k)


def classify_pictures(backend: backends.Backend, items: list[UploadResult], digit: bool,
                      polarity: str, top_k: int = 5) -> list[UploadResult]:
    """Frame (digit mode) and classify, in one batch, the items that hold an image and no
    error yet; fills in their result or error and returns the same list."""
    for item in items:
        if digit and item.image is not None and item.error is None:
            try:
                item.framed = frame_digit(item.image,
                                          backend.contract.effective_polarity(polarity))
            except EmptyDrawing:
                item.error = NO_INK
    todo = [u for u in items if u.image is not None and u.error is None]
    # A framed digit is already what the network sees (ink framed, polarity applied): it is
    # classified as it is rather than framed a second time.
    images = [u.framed.image if digit else u.image for u in todo]
    results = cl.classify_batch(backend, images, top_k=top_k, digit=False,
                               polarity="as-is" if digit else polarity) if todo else []
    for u, r in zip(todo, results, strict=True):
        if r is None:
            u.error = NO_INK
        u.result = r
    return items


def reason(error: Exception, name: str) -> str:
    """The one line that says why the image `name` could not be classified: the same words
    for an upload, a file given to `predict` and a member of a classify-many zip."""
    if isinstance(error, EmptyDrawing):
        return NO_INK
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return _named(first, name)


def _named(message: str, name: str) -> str:
    # load_image names bytes by their length; the file's own name says more.
    return message.replace("cannot read image (", f"cannot read {name!r} (", 1)


def box_overlay(image: Image.Image, box: tuple[int, int, int, int], colour=(230, 40, 40)
                ) -> np.ndarray:
    """The image in RGB with the crop box drawn on it (a line about 1/150 of its size)."""

    rgb = image.convert("RGB")
    top, left, bottom, right = box
    width = max(2, round(max(rgb.size) / 150))
    ImageDraw.Draw(rgb).rectangle([left - width, top - width, right - 1 + width,
                                   bottom - 1 + width], outline=colour, width=width)
    return np.asarray(rgb)
