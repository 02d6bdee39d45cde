"""Labelled pictures (camera shots) as the zip of class folders that the folder source reads,
so a dataset made from the camera is built, checked and split like any uploaded zip."""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from collections.abc import Sequence

from engine.datasets.errors import DatasetError
from engine.datasets.versions import NewImage

_SIGNATURES = {b"\xff\xd8\xff": "jpg", b"\x89PNG": "png", b"RIFF": "webp", b"GIF8": "gif",
               b"BM": "bmp"}


def check_class_name(label: str) -> str:
    """A class name that can be a folder name; else DatasetError saying why."""
    name = label.strip()
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise DatasetError(f"{label!r} cannot be a class name: use letters, digits, spaces "
                           "or dashes (no slashes)")
    return name


def _extension(data: bytes) -> str:
    for signature, ext in _SIGNATURES.items():
        if data.startswith(signature):
            return ext
    raise DatasetError("a picture is not a JPEG, PNG, WebP, GIF or BMP image")


def class_folders_zip(pictures: Sequence[NewImage]) -> bytes:
    """The pictures as `<class>/<n>.<ext>` in a zip; at least two classes are needed."""
    counts = Counter(check_class_name(p.label) for p in pictures)
    if len(counts) < 2:
        only = f" (only {next(iter(counts))!r} so far)" if counts else ""
        raise DatasetError(f"a dataset needs pictures of at least two classes{only}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:  # JPEGs do not shrink
        for n, picture in enumerate(pictures, 1):
            if not isinstance(picture.image, bytes):
                raise DatasetError("camera pictures come as encoded image bytes")
            label = check_class_name(picture.label)
            zf.writestr(f"{label}/{n:04d}.{_extension(picture.image)}", picture.image)
    return buffer.getvalue()
