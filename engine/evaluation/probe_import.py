"""Many images onto a probe board at once: files or zips as a browser uploads them, each with
a proposed true label (its folder in a zip, or its file name: `7_photo.jpg`, `7-b.png`,
`7.png`), which the user can edit before saving; then one call adds them all.

    found = read_uploads([("digits.zip", data), ("3_pen.jpg", jpg)])
    probes_added = add_all(board, found.candidates, user="alice")
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from PIL import Image

from engine.evaluation import probes
from engine.images.loading import ImageError, load_image
from engine.inference.classify_many import IMAGE_SUFFIXES

MAX_IMAGES = 500  # a probe board is a handful of images; more is a mistake or a dataset
MAX_IMAGE_BYTES = 20 * 2**20
MAX_PIXELS = 40_000_000
_NAME_LABEL = re.compile(r"^([^_\-\s]+)([_\-\s])?")


@dataclass
class Candidate:
    """One image ready to add: its name, its bytes re-encoded as PNG, a proposed label."""

    name: str
    png: bytes
    label: str | None  # None: nothing in its folder or name looked like a label


@dataclass
class Uploads:
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: why", one per unusable file


def label_from_name(name: str, classes: Sequence[str] | None = None,
                    folder: str | None = None) -> str | None:
    """The label a file's place proposes: its folder (in a zip of class folders), else the
    start of its name up to the first '_', '-' or space (`7_photo.jpg`, `cat-2.png`), or a
    name that is only a number (`7.png`). With `classes`, only a class name counts (so
    `photo_2.jpg` proposes nothing rather than "photo")."""
    guesses = [folder] if folder else []
    stem = PurePosixPath(name.replace("\\", "/")).stem
    match = _NAME_LABEL.match(stem)
    if match and (match.group(2) or match.group(1).isdigit()):
        guesses.append(match.group(1))
    for guess in guesses:
        if classes is None or guess in classes:
            return guess
    return None


def _png(data: bytes) -> bytes:
    """Decoded, checked and re-encoded as PNG (what a board stores), or ImageError."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"larger than {MAX_IMAGE_BYTES // 2**20} MB")
    image = load_image(data)
    if image.width * image.height > MAX_PIXELS:
        raise ImageError(f"{image.width}x{image.height} is too many pixels")
    if image.mode not in ("L", "RGB", "RGBA", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _members(zip_name: str, data: bytes) -> list[tuple[str, str | None, bytes | str]]:
    """(path, folder, bytes or why not) of each image file in a zip; folder is None at the
    top level."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise ImageError(f"not a readable zip ({e})") from e
    out = []
    with zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            path = PurePosixPath(info.filename)
            if info.is_dir() or "__MACOSX" in path.parts or path.name.startswith("."):
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            folder = path.parent.name or None
            name = f"{zip_name}/{info.filename}"
            if info.file_size > MAX_IMAGE_BYTES:  # not read at all: a zip bomb stays shut
                out.append((name, folder, f"larger than {MAX_IMAGE_BYTES // 2**20} MB"))
            else:
                out.append((name, folder, zf.read(info)))
    return out


def read_uploads(files: Sequence[tuple[str, bytes]], classes: Sequence[str] | None = None,
                 max_images: int = MAX_IMAGES) -> Uploads:
    """Images from uploaded files and zips, each with the label its folder or name proposes.
    Files that are not images are skipped with the reason; nothing is stored yet."""
    found = Uploads()
    for name, data in files:
        entries: list[tuple[str, str | None, bytes | str]]
        if PurePosixPath(name).suffix.lower() == ".zip" or data[:4] == b"PK\x03\x04":
            try:
                entries = _members(name, data)
            except ImageError as e:
                found.skipped.append(f"{name}: {e}")
                continue
            if not entries:
                found.skipped.append(f"{name}: no images in the zip")
        else:
            entries = [(name, None, data)]
        for path, folder, content in entries:
            if len(found.candidates) >= max_images:
                found.skipped.append(f"{path}: over the limit of {max_images} images at once")
                continue
            if isinstance(content, str):
                found.skipped.append(f"{path}: {content}")
                continue
            try:
                png = _png(content)
            except (ImageError, OSError, ValueError, Image.DecompressionBombError) as e:
                found.skipped.append(f"{path}: {e}")
                continue
            found.candidates.append(Candidate(path, png, label_from_name(path, classes, folder)))
    return found


def add_all(board_id: str, candidates: Sequence[Candidate], user: str | None,
            polarity: str = "auto", digit: bool = True,
            home: str | os.PathLike | None = None) -> list[int]:
    """Add every candidate to the board (in order); all of them or, on the first bad label,
    none: the error names the image, and nothing is half-added."""
    missing = [c.name for c in candidates if not (c.label or "").strip()]
    if missing:
        raise ValueError(f"give a true label to {missing[0]}"
                         + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    if polarity not in probes.POLARITIES:
        raise ValueError(f"polarity must be one of {', '.join(probes.POLARITIES)}, "
                         f"not {polarity!r}")
    return probes.add_probes(board_id, [(c.png, str(c.label).strip(), c.name)
                                        for c in candidates],
                             polarity=polarity, user=user, digit=digit, home=home)


def add_images(board_id: str, images: Sequence[bytes], labels: Sequence[str],
               names: Sequence[str] | None, user: str | None, polarity: str = "auto",
               digit: bool = True, home: str | os.PathLike | None = None) -> list[int]:
    """"Add all" for a table of classified uploads (the Classify page): raw image bytes of any
    format with the labels shown (e.g. the predictions, as corrected by the user)."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    names = list(names) if names is not None else [f"image {i + 1}" for i in range(len(images))]
    candidates = []
    for data, label, name in zip(images, labels, names, strict=True):
        try:
            candidates.append(Candidate(name, _png(data), label))
        except (ImageError, OSError, ValueError) as e:
            raise ValueError(f"{name}: {e}") from e
    return add_all(board_id, candidates, user, polarity, digit, home)
