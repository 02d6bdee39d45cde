"""Bring your own model: an ONNX classifier trained elsewhere, into the same deployment path.

import_onnx() turns an ONNX file, its labels and its preprocessing (input size, channels,
mean/std, polarity) into a folder laid out like a trained run's exports, so variants (FP16,
INT8), engine builds, benchmarks, bundles, the server and the Triton export all take it:

    <out>/exports/model.onnx        the model, with a dynamic batch axis
    <out>/exports/model.onnx.json   the export report (contract, classes, check)
    <out>/config.json               {"dataset": ...} like a run's, plus "imported": {...}
    <out>/byo.json                  where it came from, and its calibration images

There is no PyTorch model to compare with, so the export check runs the model on ONNX Runtime
itself: a batch at once against one image at a time (the batch axis must not mix images), on
the calibration images where given. INT8 is calibrated, and accuracy measured, on a folder of
images (class sub-folders named like the labels) or on a dataset of the workspace.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from engine.images.contract import Contract
from engine.state.workspace import atomic_write_json, sha256_file
from trt import layout
from trt.layout import sidecar

MARKER = "byo.json"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm"}
POLARITIES = ("as-is", "white-on-black")
MAX_FOLDER_IMAGES = 5000


def is_imported(run: str | os.PathLike) -> bool:
    return (_root(run) / MARKER).exists()


def _root(run: str | os.PathLike) -> Path:
    from trt.layout import run_dir_of

    return run_dir_of(run)


def contract(height: int, width: int, channels: int, mean: list[float] | float,
             std: list[float] | float, scale: float = 255.0, polarity: str = "as-is",
             resize_mode: str = "squash") -> dict[str, Any]:
    """A preprocessing contract (preprocess.json) for an imported model, checked."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    if not (1 <= height <= 4096 and 1 <= width <= 4096):
        raise ValueError(f"input size {height}x{width} is out of range (1..4096)")
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {', '.join(POLARITIES)}, not {polarity!r}")
    mean = [float(m) for m in (mean if isinstance(mean, (list, tuple)) else [mean] * channels)]
    std = [float(s) for s in (std if isinstance(std, (list, tuple)) else [std] * channels)]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean and std need {channels} value(s) each (one per channel)")
    if any(s <= 0 for s in std):
        raise ValueError("std values must be positive")
    if scale <= 0:
        raise ValueError("scale must be positive")
    return {"height": int(height), "width": int(width), "channels": int(channels),
            "resize_mode": resize_mode, "scale": float(scale), "mean": mean, "std": std,
            "polarity": polarity}


def read_labels(path: str | os.PathLike) -> list[str]:
    """Class names from a .json list or a text file with one name per line."""
    text = Path(path).read_text()
    if Path(path).suffix == ".json":
        labels = json.loads(text)
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{path} must hold a JSON list of class names")
    else:
        labels = [line.strip() for line in text.splitlines() if line.strip()]
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ValueError(f"{path}: need at least two distinct class names, got {len(labels)}")
    return labels


class PreparedImages:
    """Images prepared by a model's contract, in the shape trt.variants reads a dataset:
    split('train') for calibration (all images), split('test') for accuracy (labelled ones)."""

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray,
                 preprocess: dict[str, Any]) -> None:
        self.name, self.images, self.labels, self.preprocess = name, images, labels, preprocess
        self.contract = Contract.from_dict(preprocess)

    def split(self, name: str) -> np.ndarray:
        if name == "train":
            return np.arange(len(self.images))
        return np.flatnonzero(self.labels >= 0)

    def __repr__(self) -> str:
        return repr(self.name)


def _prepare(preprocess: dict[str, Any], image) -> np.ndarray:
    return Contract.from_dict(preprocess).prepare(image)


def folder_images(folder: str | os.PathLike, preprocess: dict[str, Any],
                  classes: list[str]) -> PreparedImages:
    """Every image under `folder`, prepared; labelled by a parent folder named like a class."""
    from engine.images.loading import load_image

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    files = files[:MAX_FOLDER_IMAGES]
    index = {c: i for i, c in enumerate(classes)}
    images, labels = [], []
    for f in files:
        try:
            images.append(_prepare(preprocess, load_image(f)))
        except ValueError:
            continue  # an unreadable file is skipped, as dataset creation does
        labels.append(index.get(f.parent.name, -1) if f.parent != folder else -1)
    if not images:
        raise ValueError(f"none of the images in {folder} could be read")
    return PreparedImages(f"folder {folder.name}", np.stack(images), np.asarray(labels),
                          preprocess)


def dataset_images(name: str, preprocess: dict[str, Any], classes: list[str],
                   home: str | os.PathLike | None = None, limit: int = 2000) -> PreparedImages:
    """A workspace dataset's training images (calibration) and test images (accuracy), in the
    model's contract; labels matched to the model's classes by name."""
    from engine.datasets import open_dataset

    ds = open_dataset(name, home=home)
    index = {c: i for i, c in enumerate(classes)}
    remap = np.asarray([index.get(c, -1) for c in ds.classes])
    if (remap < 0).all():
        raise ValueError(f"dataset {name!r} has none of the model's classes")
    train = np.sort(np.random.default_rng(0).permutation(ds.split("train"))[:512])
    test = np.sort(ds.split("test")[:limit])
    pick = np.concatenate([train, test])
    raw = np.asarray(ds.images[pick])
    want = (preprocess["height"], preprocess["width"], preprocess["channels"])
    images = raw if raw.shape[1:] == want else np.stack([_prepare(preprocess, a.squeeze())
                                                         for a in raw])
    labels = remap[np.asarray(ds.labels[pick])]
    labels[: len(train)] = -1  # training images calibrate; only test images score
    out = PreparedImages(f"dataset {name}", images, labels, preprocess)
    return out


def evaluation_dataset(run: str | os.PathLike, home: str | os.PathLike | None = None):
    """What variants calibrate and score on: the run's dataset name, or for an imported model
    its calibration folder or dataset in the model's own contract."""
    root = _root(run)
    if not is_imported(root):
        return layout.read_run_config(root)["dataset"]
    info = json.loads((root / MARKER).read_text())
    report = json.loads(sidecar(layout.onnx_path(root)).read_text())
    if info.get("calibration_folder"):
        return folder_images(root / info["calibration_folder"], report["preprocess"],
                             report["classes"])
    if info.get("dataset"):
        return dataset_images(info["dataset"], report["preprocess"], report["classes"], home)
    raise ValueError("this imported model has no calibration images: import it again with a "
                     "folder of images or a dataset")


def ensure_export(run: str | os.PathLike, fp32: Path, home: str | os.PathLike | None = None
                  ) -> dict[str, Any]:
    """The export report: an imported model's as written at import, else a fresh export."""
    if is_imported(run):
        return json.loads(sidecar(fp32).read_text())
    from trt.onnx_export import export_onnx

    return export_onnx(run, fp32, home=home)


def _dynamic_batch(model: onnx.ModelProto) -> bool:
    """Make the first axis of the graph's inputs and outputs a symbolic 'batch'; True if it
    was fixed."""
    changed = False
    for v in [*model.graph.input, *model.graph.output]:
        dims = v.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"  # clears dim_value (a oneof)
            changed = True
    return changed


def check_model(path: Path, preprocess: dict[str, Any], classes: list[str],
                images: PreparedImages | None) -> dict[str, Any]:
    """Run the model on ONNX Runtime: the batch at once against one image at a time."""
    from trt.runtime import OnnxRunner

    runner = OnnxRunner(path)
    c, h, w = preprocess["channels"], preprocess["height"], preprocess["width"]
    if images is not None:
        pick = images.split("test") if len(images.split("test")) else images.split("train")
        batch = Contract.from_dict(preprocess).normalize(images.images[pick[:64]])
        source = images.name
    else:
        raw = np.random.default_rng(0).integers(0, 256, (16, h, w, c), dtype=np.uint8)
        batch = Contract.from_dict(preprocess).normalize(raw)
        source = "random images (no calibration images given)"
    try:
        together = runner.run(batch)
    except Exception as e:
        raise ValueError(f"ONNX Runtime cannot run the model on a batch of {len(batch)} "
                         f"{c}x{h}x{w} images: {str(e).splitlines()[0]}") from None
    if together.ndim != 2 or together.shape != (len(batch), len(classes)):
        raise ValueError(f"the model's output is {list(together.shape)} for a batch of "
                         f"{len(batch)}; it must be [batch, {len(classes)}] (one score per "
                         "label)")
    if not np.isfinite(together).all():
        raise ValueError("the model's output holds NaN or infinity on these inputs")
    alone = np.concatenate([runner.run(batch[i:i + 1]) for i in range(len(batch))])
    return {"images": int(len(batch)), "inputs": source,
            "reference": "ONNX Runtime, one image per run",
            "max_abs_diff": float(np.abs(together - alone).max()),
            "top1_agreement": float((together.argmax(1) == alone.argmax(1)).mean()),
            "dynamic_batches_max_abs_diff": {"1": 0.0, str(len(batch)):
                                             float(np.abs(together - alone).max())}}


def import_onnx(model_path: str | os.PathLike, out_dir: str | os.PathLike, labels: list[str],
                preprocess: dict[str, Any], calibration_folder: str | os.PathLike | None = None,
                dataset: str | None = None, home: str | os.PathLike | None = None
                ) -> dict[str, Any]:
    """Import an ONNX classifier (see the module's docstring); returns the export report."""
    model_path, root = Path(model_path), Path(out_dir)
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path} does not exist")
    try:
        model = onnx.load(str(model_path))
        onnx.checker.check_model(model)
    except Exception as e:
        raise ValueError(f"{model_path.name} is not a valid ONNX model: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    inputs = [i for i in model.graph.input
              if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise ValueError(f"a classifier has one input and one output; this model has "
                         f"{len(inputs)} and {len(model.graph.output)}")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in inputs[0].type.tensor_type.shape.dim]
    want = [preprocess["channels"], preprocess["height"], preprocess["width"]]
    if len(dims) != 4 or any(d is not None and d != x for d, x in zip(dims[1:], want,
                                                                       strict=True)):
        shown = "x".join("?" if d is None else str(d) for d in dims)
        raise ValueError(f"the model's input is {shown}, the preprocessing gives N x "
                         f"{'x'.join(map(str, want))} (NCHW): fix the input size or channels")
    made_dynamic = _dynamic_batch(model)
    if root.exists() and any(root.iterdir()) and not is_imported(root):
        raise ValueError(f"{root} exists and is not an imported model: choose another folder")
    exports = root / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"source": str(model_path), "source_sha256": sha256_file(model_path),
                            "batch_axis_made_dynamic": made_dynamic, "dataset": dataset}
    if calibration_folder:
        target = root / "calibration"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(calibration_folder, target)
        info["calibration_folder"] = "calibration"
    fp32 = exports / "model.onnx"
    onnx.save(model, str(fp32))
    atomic_write_json(root / MARKER, info)
    atomic_write_json(root / "config.json", {"dataset": dataset, "imported": info})
    images = None
    if calibration_folder:
        images = folder_images(root / "calibration", preprocess, labels)
    elif dataset:
        images = dataset_images(dataset, preprocess, labels, home)
    check = check_model(fp32, preprocess, labels, images)
    report = {
        "onnx": str(fp32), "checkpoint": None, "imported_from": str(model_path),
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                     default=None),
        "input": {"name": inputs[0].name, "shape": ["batch", *want], "dtype": "float32"},
        "output": {"name": model.graph.output[0].name, "shape": ["batch", len(labels)],
                   "dtype": "float32"},
        "classes": list(labels), "preprocess": preprocess, "exporter": "imported ONNX",
        "size_bytes": fp32.stat().st_size, "sha256": sha256_file(fp32), "check": check,
    }
    atomic_write_json(sidecar(fp32), report)
    return report


def imports_dir(home: str | os.PathLike | None = None) -> Path:
    """Where the dashboard keeps imported models: $STUDIO_HOME/imports/<name>/."""
    from engine.state.workspace import studio_home

    return studio_home(home) / "imports"


def list_imports(home: str | os.PathLike | None = None) -> list[Path]:
    root = imports_dir(home)
    return sorted(p for p in root.iterdir() if (p / MARKER).exists()) if root.exists() else []


def import_upload(name: str, onnx_bytes: bytes, labels_text: str, preprocess: dict[str, Any],
                  calibration_zip: bytes | None = None, dataset: str | None = None,
                  home: str | os.PathLike | None = None) -> dict[str, Any]:
    """Import uploaded files (the Deploy page's form) under imports/<name>/."""
    import re
    import tempfile
    import zipfile

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name or ""):
        raise ValueError("the name may hold letters, digits, _ . - (up to 64), starting with a "
                         "letter or digit")
    labels = [x.strip() for x in labels_text.splitlines() if x.strip()]
    if labels_text.lstrip().startswith("["):
        labels = json.loads(labels_text)
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ValueError(f"need at least two distinct labels, got {len(labels)}")
    with tempfile.TemporaryDirectory(prefix="byo-upload-") as tmp:
        model = Path(tmp) / "model.onnx"
        model.write_bytes(onnx_bytes)
        folder = None
        if calibration_zip:
            folder = Path(tmp) / "calibration"
            try:
                archive = zipfile.ZipFile(io.BytesIO(calibration_zip))
            except zipfile.BadZipFile:
                raise ValueError("the calibration images must be a .zip file") from None
            for member in archive.infolist():
                target = (folder / member.filename).resolve()
                if (member.is_dir() or Path(member.filename).suffix.lower() not in IMAGE_SUFFIXES
                        or not str(target).startswith(str(folder.resolve()))):
                    continue  # folders, other files, and paths that leave the folder
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
            if not folder.exists():
                raise ValueError("the calibration .zip holds no images")
        return import_onnx(model, imports_dir(home) / name, labels, preprocess,
                           calibration_folder=folder, dataset=dataset, home=home)
