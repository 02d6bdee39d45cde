"""Classify many images — a zip, folders or files — streamed in batches so thousands of images
neither block the caller nor fill memory; labels (folder per class, or a CSV) give accuracy and
a confusion matrix. A file that cannot be classified (unreadable, too big, blank) gets its row
with the one-line reason in the error column and is listed in the result's failures; the
others are classified all the same."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from engine.evaluation.evaluate import summarize
from engine.images.framing import EmptyDrawing
from engine.images.loading import ImageError, load_image
from engine.inference.predictor import Predictor
from engine.inference.uploads import reason
from engine.state import limits

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm"}
# The result lists this many failures (file and reason); the CSV has every one.
FAILURES_LISTED = 200


@dataclass
class Item:
    name: str  # path inside the zip or on disk
    folder: str  # the parent folder's name (the label in folder-per-class layouts)
    read: Callable[[], bytes]


def iter_items(inputs: list[str | os.PathLike]) -> Iterator[Item]:
    """Every file of the inputs: zips are read member by member, folders walked, in order."""
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        if path.is_dir():
            # Never through a symbolic link: it may point outside what was given.
            found = [Path(d) / f for d, _, names in os.walk(path, followlinks=False)
                     for f in names]
            for f in sorted(p for p in found if p.is_file() and not p.is_symlink()):
                yield Item(str(f.relative_to(path)), f.parent.name,
                           lambda f=f: _read_file(f))
        elif zipfile.is_zipfile(path):
            zf = zipfile.ZipFile(path)
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                name = PurePosixPath(info.filename)
                if info.is_dir() or "__MACOSX" in name.parts or name.name.startswith("."):
                    continue
                yield Item(info.filename, name.parent.name,
                           lambda info=info, zf=zf: _read_member(zf, info))
        else:
            yield Item(path.name, path.parent.name, lambda path=path: _read_file(path))


def _too_big(size: int) -> ImageError:
    cap = limits.UPLOAD_FILE_BYTES.value
    return ImageError(f"the file is {limits.size(size)}, above the {limits.size(cap)} limit "
                      f"for one image ({limits.UPLOAD_FILE_BYTES.name})")


def _read_file(path: Path) -> bytes:
    size = path.stat().st_size
    if size > limits.UPLOAD_FILE_BYTES.value:
        raise _too_big(size)
    return path.read_bytes()


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A zip member's bytes, refused by its declared size before decompressing."""
    if info.file_size > limits.UPLOAD_FILE_BYTES.value:
        raise _too_big(info.file_size)
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as e:
        raise ImageError(f"cannot read it from the zip: {e}") from None


def read_label_csv(path: str | os.PathLike) -> dict[str, str]:
    """file,label rows (a header row is skipped); matched by full name, then by base name."""
    labels: dict[str, str] = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if len(row) < 2 or row[0].strip().lower() in ("file", "filename", "image", "path"):
                continue
            labels[row[0].strip()] = row[1].strip()
    if not labels:
        raise ValueError(f"{path} has no 'file,label' rows")
    return labels


def _label_of(item: Item, labels: str | dict[str, str] | None) -> str | None:
    if labels == "folders":
        return item.folder or None
    if isinstance(labels, dict):
        return labels.get(item.name) or labels.get(PurePosixPath(item.name).name)
    return None


def classify_many(checkpoint: str | os.PathLike, inputs: list[str | os.PathLike], *,
                  labels: str | None = None, out_csv: str | os.PathLike | None = None,
                  batch_size: int = 256, top_k: int = 5, digit: bool = False,
                  polarity: str = "auto", device: str = "cpu",
                  progress: Callable[[int, str], None] | None = None) -> dict[str, Any]:
    """Classify every image of `inputs`, writing one CSV row per file as batches complete.

    labels: None, "folders" (each image's folder is its class) or a CSV of file,label.
    The result counts the images classified and the errors (files that could not be), and
    lists the first FAILURES_LISTED failures as {"file", "error"} (failures_not_listed: the
    rest)."""
    predictor = Predictor(checkpoint, device=device)
    label_map = read_label_csv(labels) if labels not in (None, "folders") else labels
    class_index = {c: i for i, c in enumerate(predictor.classes)}
    out = open(out_csv, "w", newline="") if out_csv else io.StringIO()
    writer = csv.writer(out)
    k = min(top_k, len(predictor.classes))
    writer.writerow(["file", "label", "predicted", "confidence", "correct"]
                    + [f"top{i + 1}" for i in range(k)] + ["error"])
    y_true: list[int] = []
    probs_kept: list[np.ndarray] = []  # only for labelled images: N x C floats, small
    counts = {"images": 0, "errors": 0, "unlabelled": 0, "unknown_label": 0}
    failures: list[dict[str, str]] = []
    pending: list[tuple[Item, np.ndarray, str | None]] = []

    def flush() -> None:
        if not pending:
            return
        probs = predictor.probabilities(np.stack([p[1] for p in pending]))
        for (item, _, label), p in zip(pending, probs, strict=True):
            top = np.argsort(-p)[:k]
            pred = predictor.classes[top[0]]
            correct = "" if label is None else str(label == pred).lower()
            writer.writerow([item.name, label or "", pred, f"{p[top[0]]:.6f}", correct]
                            + [f"{predictor.classes[i]}:{p[i]:.4f}" for i in top] + [""])
            if label is not None and label in class_index:
                y_true.append(class_index[label])
                probs_kept.append(p.astype(np.float32))
        counts["images"] += len(pending)
        pending.clear()
        if progress:
            progress(counts["images"], f"{counts['images']} images classified")

    try:
        for item in iter_items(inputs):
            if PurePosixPath(item.name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            label = _label_of(item, label_map)
            if label_map is not None and label is None:
                counts["unlabelled"] += 1
            elif label is not None and label not in class_index:
                counts["unknown_label"] += 1
            try:
                image = predictor.prepare(load_image(item.read()), digit=digit,
                                          polarity=polarity)
            except (ImageError, EmptyDrawing, ValueError) as e:
                counts["errors"] += 1
                why = reason(e, item.name)
                writer.writerow([item.name, label or "", "", "", ""] + [""] * k + [why])
                if len(failures) < FAILURES_LISTED:
                    failures.append({"file": item.name, "error": why})
                continue
            pending.append((item, image, label))
            if len(pending) >= batch_size:
                flush()
        flush()
    finally:
        if out_csv:
            out.close()
    result: dict[str, Any] = {**counts, "failures": failures,
                              "csv": str(out_csv) if out_csv else out.getvalue()}
    if counts["errors"] > len(failures):
        result["failures_not_listed"] = counts["errors"] - len(failures)
    if y_true:
        result["labelled"] = summarize(np.stack(probs_kept), np.asarray(y_true),
                                       predictor.classes)
    return result
