"""Classifying for a person: one call per drawing, upload or batch of files, and one Classified
answer per image holding all that the Classify page or `python -m engine predict` shows.

    backend_choices / open_backend   which backends can run a checkpoint here, and one opened
    classify_drawing                 a canvas's pixels (the Draw tab)
    classify_upload                  one uploaded file or camera picture, with the full view
    classify_uploads                 many files at once, one answer each, in order
    classify_files                   files on disk in batches (`predict` over thousands)
    classify_frame                   a live video frame already classified (the frame kept)

An answer holds the prediction (the top-k labels with their probabilities, all class
probabilities, and the uint8 input the network saw), the crop (where the digit was found, the
cleaned page, the polarity decision), the backend that answered, the views inside the model
(from PyTorch on the same checkpoint, and why when another backend answered), and where there
is no prediction the one reason why: `error` for a file that could not be read, `warning` for
an image with nothing to classify. One bad file never stops the others.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

import numpy as np
from PIL import Image

from engine.images.framing import EmptyDrawing
from engine.inference import backends, inside
from engine.inference import classify as cl
from engine.inference import uploads as up
from engine.inference.predictor import image_bytes_png
from engine.inference.results import Prediction

Source = bytes | str | os.PathLike  # an upload's bytes, or the path of a file on disk
FILES_PER_BATCH = 256  # classify_files decodes and classifies this many images at a time


# --- the backend ------------------------------------------------------------------------------


class BackendChecks(Protocol):
    """What a deployment package knows about its own backends (trt.backends does): why one
    cannot run a checkpoint here, and what its cache must follow (a re-export, a rebuild).
    engine never imports trt: the caller hands the module in."""

    def unavailable_reason(self, kind: str, checkpoint: str | os.PathLike) -> str | None: ...

    def cache_key(self, kind: str, checkpoint: str | os.PathLike) -> dict[str, Any]: ...


@dataclass(frozen=True)
class BackendChoices:
    usable: dict[str, str]  # kind -> label: the backends that can run the checkpoint here
    unavailable: dict[str, str]  # label -> why not: the registered ones that cannot


def backend_choices(checkpoint: str | os.PathLike, checks: BackendChecks | None = None
                    ) -> BackendChoices:
    """The registered backends usable on this machine, split by whether they can run this
    checkpoint (an ONNX Runtime backend needs the job exported first, TensorRT a GPU)."""
    usable: dict[str, str] = {}
    why: dict[str, str] = {}
    for kind, label in backends.available_backends().items():
        reason = checks.unavailable_reason(kind, checkpoint) if checks is not None else None
        if reason:
            why[label] = reason
        else:
            usable[kind] = label
    return BackendChoices(usable, why)


def open_backend(kind: str, checkpoint: str | os.PathLike, checks: BackendChecks | None = None
                 ) -> backends.Backend:
    """The backend of `kind` for the checkpoint, cached while its files are unchanged, so a
    page rerun per canvas stroke does not reload the network. Raises what loading raises (a
    broken checkpoint, a runtime this machine cannot run)."""
    extra = checks.cache_key(kind, checkpoint) if checks is not None else {}
    return backends.get_backend(kind, checkpoint, **extra)


# --- what an answer holds -----------------------------------------------------------------------


@dataclass
class Crop:
    """How an upload was framed like MNIST: the ink's box on the original, the cleaned page,
    and the polarity decision."""

    original: Image.Image  # the decoded upload
    box: tuple[int, int, int, int]  # top, left, bottom, right in the original's pixels
    cleaned: np.ndarray  # uint8, the original's size: paper black, ink white, specks dropped
    polarity: str  # one sentence on the polarity decision (paper and ink levels)
    inverted: bool  # whether the network saw the original inverted

    @property
    def overlay(self) -> np.ndarray:
        """The original in RGB with the crop box drawn on it."""
        return up.box_overlay(self.original, self.box)


@dataclass
class InsideViews:
    """Inside the model for one input: saliency, first-layer filters, feature maps and
    per-layer statistics, always from PyTorch (ONNX Runtime and TensorRT expose no layers)."""

    source: str  # the PyTorch backend the views come from
    note: str | None = None  # why, when another backend gave the answer
    problem: str | None = None  # why there are no views (PyTorch could not load the model)
    saliency: np.ndarray | None = None  # the input in gray, the saliency in red: uint8 RGB
    filters: np.ndarray | None = None  # the first conv's, N x kh x kw (x 3), each 0..1
    feature_maps: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (layer, CxHxW)
    stats: list[inside.LayerStats] = field(default_factory=list)


@dataclass
class Classified:
    """One image's answer: its prediction, or the one reason there is none."""

    name: str  # the file's name (or "canvas", "camera")
    backend: str  # the runtime that answered: pytorch-cpu, onnxruntime-cpu-fp32, ...
    digit: bool  # whether the ink was framed like MNIST
    polarity: str  # the polarity asked for: auto, invert or as-is
    prediction: Prediction | None = None
    crop: Crop | None = None  # digit framing of an upload (None for drawings, plain images)
    error: str | None = None  # the file could not be read: why, naming it
    warning: str | None = None  # it was read but holds nothing to classify: why
    image: Image.Image | None = None  # the decoded original (None when unreadable)
    png: bytes | None = None  # the original as PNG, for a probe board (single answers only)
    inside: InsideViews | None = None  # when asked for (single answers only)

    @property
    def reason(self) -> str | None:
        """Why there is no prediction, in one line; None when there is one."""
        return (self.error or self.warning) if self.prediction is None else None

    @property
    def label(self) -> str | None:
        return self.prediction.label if self.prediction is not None else None

    @property
    def confidence(self) -> float | None:
        return self.prediction.confidence if self.prediction is not None else None

    @property
    def raw_confidence(self) -> float | None:
        """The confidence before temperature scaling; None when the model is uncalibrated."""
        return self.prediction.raw_confidence if self.prediction is not None else None

    @property
    def seen(self) -> np.ndarray | None:
        """What the network saw: uint8 H x W x C, before normalization."""
        return self.prediction.input if self.prediction is not None else None

    def to_dict(self) -> dict[str, Any]:
        """One row for JSON: the image, label, confidence and top-k, and the error (None
        when classified)."""
        if self.prediction is None:
            return {"image": self.name, "label": None, "confidence": None, "top": [],
                    "error": self.reason}
        return {"image": self.name, **self.prediction.to_dict(), "error": None}


# --- classifying --------------------------------------------------------------------------------


def classify_drawing(backend: backends.Backend, rgba: np.ndarray, polarity: str = "as-is",
                     top_k: int = 5, checkpoint: str | os.PathLike | None = None,
                     look_inside: bool = True) -> Classified:
    """A canvas's pixels framed like MNIST and classified. polarity turns the canvas's style
    into white on black (as-is for white ink on black, invert for black on white). A blank
    canvas gets a warning and no prediction. checkpoint: where PyTorch finds the model for
    the inside views when another backend answers."""
    out = Classified("canvas", backend.name, True, polarity)
    try:
        out.prediction = cl.classify(backend, rgba, top_k=top_k, digit=True, polarity=polarity)
    except EmptyDrawing as e:
        out.warning = str(e)
        return out
    out.png = image_bytes_png(np.asarray(rgba))
    if look_inside:
        out.inside = inside_views(backend, out.prediction, checkpoint)
    return out


def classify_uploads(backend: backends.Backend, files: Iterable[tuple[str, Source]],
                     digit: bool | None = None, polarity: str = "auto", top_k: int = 5
                     ) -> list[Classified]:
    """One answer per (name, bytes or path), in order; the readable ones classified in one
    batch. digit frames the ink like MNIST first (None: as the model's contract says)."""
    digit = frames_digits(backend, digit)
    items = up.classify_uploads(backend, list(files), digit, polarity, top_k)
    return [_classified(backend, u, digit, polarity) for u in items]


def classify_upload(backend: backends.Backend, name: str, data: Source,
                    digit: bool | None = None, polarity: str = "auto", top_k: int = 5,
                    checkpoint: str | os.PathLike | None = None, look_inside: bool = True
                    ) -> Classified:
    """One uploaded file or camera picture with the full view: the prediction, the crop, the
    inside views and the PNG a probe board keeps."""
    [out] = classify_uploads(backend, [(name, data)], digit, polarity, top_k)
    if out.prediction is not None:
        out.png = _png(data)
        if look_inside:
            out.inside = inside_views(backend, out.prediction, checkpoint)
    return out


def classify_files(backend: backends.Backend, paths: Iterable[str | os.PathLike],
                   digit: bool | None = None, polarity: str = "auto", top_k: int = 5,
                   batch: int = FILES_PER_BATCH) -> Iterator[Classified]:
    """Files on disk, each answered in order under the name it was given, `batch` at a time
    so thousands of scans neither wait for the last one nor fill memory. An unreadable or
    blank file gets its reason; the others are classified all the same."""
    it = iter(paths)
    while chunk := list(islice(it, batch)):
        yield from classify_uploads(backend, [(str(p), p) for p in chunk], digit, polarity,
                                    top_k)


def classify_frame(backend: backends.Backend, item: up.UploadResult, digit: bool,
                   polarity: str, checkpoint: str | os.PathLike | None = None,
                   look_inside: bool = True) -> Classified:
    """A frame the live video already classified (engine.inference.live), as a full answer:
    the same views as an upload, without classifying it again."""
    out = _classified(backend, item, digit, polarity)
    if out.prediction is not None:
        out.png = image_bytes_png(np.asarray(item.image))
        if look_inside:
            out.inside = inside_views(backend, out.prediction, checkpoint)
    return out


def inside_views(backend: backends.Backend, prediction: Prediction,
                 checkpoint: str | os.PathLike | None = None) -> InsideViews:
    """The views inside the model for a prediction's input. ONNX Runtime and TensorRT run a
    graph without PyTorch modules to look into: the views then come from PyTorch running the
    same checkpoint, and say so."""
    torch_backend, note = backend, None
    if not isinstance(backend, backends.TorchBackend):
        if checkpoint is None:
            return InsideViews("", problem=f"No inside views: {backend.name} exposes no layers "
                                           "and no checkpoint was given for PyTorch")
        try:
            torch_backend = backends.get_backend("pytorch-cpu", checkpoint)
        except Exception as e:  # a checkpoint PyTorch cannot rebuild: say so
            return InsideViews("pytorch-cpu", problem=f"No inside views: PyTorch could not "
                                                      f"load {checkpoint}: {e}")
        note = (f"The prediction above came from {backend.name}; these views come from "
                "PyTorch running the same checkpoint (ONNX Runtime and TensorRT do not expose "
                "the layers).")
    view = inside.look_inside(torch_backend, prediction.input)
    return InsideViews(torch_backend.name, note, None,
                       inside.saliency_overlay(prediction.input, view.saliency), view.filters,
                       view.feature_maps, view.stats)


def frames_digits(backend: backends.Backend, digit: bool | None) -> bool:
    """Whether inputs are framed like MNIST: as asked, else as the model's contract says."""
    return backend.contract.framing == "mnist" if digit is None else bool(digit)


def _classified(backend: backends.Backend, u: up.UploadResult, digit: bool, polarity: str
                ) -> Classified:
    out = Classified(u.name, backend.name, digit, polarity, u.result, image=u.image)
    if u.result is None:
        if u.image is None:
            out.error = u.error
        else:
            out.warning = u.error or up.NO_INK
    if u.framed is not None and u.image is not None:
        f = u.framed
        out.crop = Crop(u.image, f.box, f.cleaned, f.reason, f.inverted)
    return out


def _png(data: Source) -> bytes:
    """An upload as PNG, as it came (a probe board keeps it to classify again later)."""
    src = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    buf = io.BytesIO()
    with Image.open(src) as image:
        image.save(buf, format="PNG")
    return buf.getvalue()
