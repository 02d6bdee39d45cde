"""How good a checkpoint really is, class by class, and where it fails.

evaluate_checkpoint() runs a checkpoint over a dataset split and keeps every prediction (in an
.npz beside a JSON summary in the run directory), so the galleries — confusion-pair images,
most confident mistakes, top images per class — are queries over stored arrays, not reruns.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from engine.datasets import DatasetError, open_dataset
from engine.evaluation.calibration import (
    BINS,
    CalibrationError,
    calibration_summary,
    ece_of,
    fit_temperature,
    reliability,
    set_temperature,
)
from engine.inference.predictor import Predictor, resolve_checkpoint
from engine.state import store
from engine.state.runs import job_dir
from engine.state.workspace import atomic_write_json

EVAL_DIR = "evaluations"
DENSE_CONFUSION_MAX = 100  # classes: above this the summary keeps the top confusions only
TOP_CONFUSIONS = 200


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted ones."""
    flat = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def class_counts(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, predicted, actual) per class, in O(N + C) memory (no C x C matrix)."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    tp = np.bincount(y_true[y_true == y_pred], minlength=num_classes)
    return (tp, np.bincount(y_pred, minlength=num_classes),
            np.bincount(y_true, minlength=num_classes))


def top_confusions(y_true: np.ndarray, y_pred: np.ndarray, limit: int = TOP_CONFUSIONS
                   ) -> list[list[int]]:
    """The most frequent (true, predicted, count) mistakes, sparse: for many classes."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    wrong = y_true != y_pred
    pairs, counts = np.unique(np.stack([y_true[wrong], y_pred[wrong]], 1), axis=0,
                              return_counts=True) if wrong.any() else (np.zeros((0, 2)), [])
    order = np.argsort(-np.asarray(counts), kind="stable")[:limit]
    return [[int(pairs[i][0]), int(pairs[i][1]), int(counts[i])] for i in order]


def per_class_metrics(confusion: np.ndarray | tuple, classes: list[str]
                      ) -> list[dict[str, Any]]:
    """Precision, recall and F1 per class (0 where undefined, as scikit-learn's zero_division=0),
    from a confusion matrix or from class_counts()."""
    if isinstance(confusion, tuple):
        tp, predicted, actual = (np.asarray(a, float) for a in confusion)
    else:
        tp = np.diag(confusion).astype(float)
        predicted = confusion.sum(0).astype(float)
        actual = confusion.sum(1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return [{"class": c, "precision": float(p), "recall": float(r), "f1": float(f),
             "support": int(s)} for c, p, r, f, s in zip(classes, precision, recall, f1, actual,
                                                         strict=True)]


def pair_count(summary: dict[str, Any], true_class: int, predicted_class: int) -> int | None:
    """How many images of true_class a summary says were predicted as predicted_class: from
    the confusion matrix, or (many classes) from the per-class counts on the diagonal and the
    top confusions elsewhere; None for a pair that is not among those."""
    if summary.get("confusion") is not None:
        return int(summary["confusion"][true_class][predicted_class])
    if true_class == predicted_class:
        m = summary["per_class"][true_class]
        return round(m["recall"] * m["support"])
    return next((n for t, p, n in summary.get("top_confusions", [])
                 if (t, p) == (true_class, predicted_class)), None)


def most_confused(summary: dict[str, Any]) -> tuple[int, int]:
    """The (true, predicted) pair of the most frequent mistake; (0, 0) when there is none."""
    if summary.get("confusion") is None:
        top = summary.get("top_confusions") or [[0, 0, 0]]
        return int(top[0][0]), int(top[0][1])
    cm = np.asarray(summary["confusion"])
    off = cm - np.diag(np.diag(cm))
    if off.size == 0 or off.max() <= 0:
        return 0, 0
    t, p = np.unravel_index(off.argmax(), off.shape)
    return int(t), int(p)


def summarize(probs: np.ndarray, labels: np.ndarray, classes: list[str],
              logits: np.ndarray | None = None, temperature: float = 1.0) -> dict[str, Any]:
    """Top-1/top-5 accuracy, loss, per-class metrics, the confusion matrix of predictions and
    their calibration (ECE and the reliability table; raw and with the model's temperature
    when its logits are given, else of probs as they are)."""
    n, c = probs.shape
    pred = probs.argmax(1)
    p_true = probs[np.arange(n), labels].astype(np.float64)
    out = {"images": int(n), "accuracy": float((pred == labels).mean()) if n else 0.0,
           "loss": float(-np.log(np.clip(p_true, 1e-12, 1)).mean()) if n else 0.0,
           "per_class": per_class_metrics(class_counts(labels, pred, c), classes),
           "classes": classes}
    if c <= DENSE_CONFUSION_MAX:
        out["confusion"] = confusion_matrix(labels, pred, c).tolist()
    else:  # a C x C matrix would be C^2 cells in a SQLite row and a heatmap: keep the top
        out["confusion"] = None
        out["top_confusions"] = top_confusions(labels, pred)
    if c > 5:
        top5 = np.argsort(-probs, 1)[:, :5]
        out["top5"] = float((top5 == labels[:, None]).any(1).mean()) if n else 0.0
    per = out["per_class"]
    out["macro_f1"] = float(np.mean([m["f1"] for m in per])) if per else 0.0
    if logits is not None:
        out["calibration"] = calibration_summary(logits, labels, temperature)
    else:
        table = reliability(probs, labels)
        ece = ece_of(table)
        out["calibration"] = {"bins": BINS, "temperature": 1.0, "ece": ece, "ece_raw": ece,
                              "reliability": table, "reliability_raw": table}
    return out


@dataclass
class Evaluation:
    """A stored evaluation: the summary and every prediction."""

    summary: dict[str, Any]
    indexes: np.ndarray  # dataset image indexes
    labels: np.ndarray
    probs: np.ndarray  # float32 N x C

    @cached_property  # every gallery of the Evaluation tab asks again on each rerun
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(1)

    @cached_property
    def confidence(self) -> np.ndarray:
        return self.probs.max(1)

    def count(self, true_class: int, predicted_class: int) -> int:
        """Images of `true_class` predicted as `predicted_class`."""
        return int(((self.labels == true_class) & (self.predicted == predicted_class)).sum())

    def pair(self, true_class: int, predicted_class: int, limit: int = 50) -> list[int]:
        """Dataset indexes of images of `true_class` predicted as `predicted_class`, most
        confident first."""
        mask = (self.labels == true_class) & (self.predicted == predicted_class)
        order = np.argsort(-self.confidence[mask])[:limit]
        return self.indexes[mask][order].tolist()

    def confident_mistakes(self, limit: int = 25) -> list[dict[str, Any]]:
        wrong = np.flatnonzero(self.predicted != self.labels)
        wrong = wrong[np.argsort(-self.confidence[wrong])][:limit]
        return [{"index": int(self.indexes[i]), "true": int(self.labels[i]),
                 "predicted": int(self.predicted[i]), "confidence": float(self.confidence[i])}
                for i in wrong]

    def top_per_class(self, n: int = 9) -> dict[int, list[dict[str, Any]]]:
        """For each class, the n images the model is most confident belong to it
        (DIGITS' "Top N per category"), whatever their true label."""
        out = {}
        for c in range(self.probs.shape[1]):
            best = np.argsort(-self.probs[:, c])[:n]
            out[c] = [{"index": int(self.indexes[i]), "probability": float(self.probs[i, c]),
                       "true": int(self.labels[i])} for i in best]
        return out


def _paths(run_dir: Path, checkpoint: Path, split: str) -> tuple[Path, Path]:
    stem = f"{checkpoint.stem}-{split}"
    base = run_dir / EVAL_DIR
    return base / f"{stem}.json", base / f"{stem}.npz"


def trained_dataset(predictor: Predictor, home: str | os.PathLike | None = None):
    """The dataset the checkpoint was trained on: by the id it recorded (a dataset deleted and
    re-created under the same name is another dataset), checked against its sha256."""
    ref = getattr(predictor, "dataset_ref", {}) or {}
    name = predictor.config.get("dataset")
    if not ref.get("id"):
        return open_dataset(name, home=home)  # checkpoints from before ids were recorded
    try:
        ds = open_dataset(ref["id"], home=home)
    except DatasetError:
        try:
            other = open_dataset(ref.get("name") or name, home=home)
        except DatasetError:
            other = None
        raise DatasetError(
            f"the dataset this model was trained on, {ref.get('name', name)!r} ({ref['id']}), "
            "has been deleted" + (f"; the dataset now named {other.name!r} ({other.id}) is a "
                                  "different one, so it is not used" if other else "")
        ) from None
    if ref.get("sha256") and ds.manifest.get("sha256") not in (None, ref["sha256"]):
        raise DatasetError(f"dataset {ds.name!r} ({ds.id}) has changed since this model was "
                           "trained (its sha256 differs)")
    return ds


def split_logits(predictor: Predictor, ds, index: np.ndarray, batch_size: int = 512,
                 progress=None) -> tuple[np.ndarray, np.ndarray]:
    """The raw logits (float32 N x C) and labels of a dataset's images at index, in index
    order, read in sorted batches (sequential reads from the memory-mapped file)."""
    logits = np.empty((len(index), len(predictor.classes)), np.float32)
    order = np.argsort(index)
    for start in range(0, len(index), batch_size):
        sel = order[start:start + batch_size]
        logits[sel] = predictor.logits(np.asarray(ds.images[index[sel]]))
        if progress:
            progress(min(1.0, (start + len(sel)) / len(index)), f"{start + len(sel)} images")
    return logits, np.asarray(ds.labels)[index]


def evaluate_checkpoint(run_dir: str | os.PathLike, checkpoint: str | None = None,
                        split: str | None = None, *, home: str | os.PathLike | None = None,
                        device: str = "cpu", batch_size: int = 512,
                        progress=None) -> dict[str, Any]:
    """Evaluate a run's checkpoint (default best) on its dataset's test split (or validation
    when there is none); stores and returns the summary."""
    run_dir = Path(run_dir)
    ckpt = resolve_checkpoint(run_dir / checkpoint if checkpoint else run_dir)
    predictor = Predictor(ckpt, device=device)
    ds = trained_dataset(predictor, home)
    if split is None:
        split = "test" if len(ds.split("test")) else "val"
    index = ds.split(split)
    if not len(index):
        raise ValueError(f"dataset {ds.name!r} has no {split} images to evaluate on")
    logits, labels = split_logits(predictor, ds, index, batch_size, progress)
    probs = predictor.contract.probabilities(logits)  # with the model's temperature, if any
    summary = {**summarize(probs, labels, predictor.classes, logits,
                           predictor.contract.temperature), "split": split,
               "checkpoint": ckpt.name, "epoch": predictor.epoch, "dataset": ds.id}
    json_path, npz_path = _paths(run_dir, ckpt, split)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = npz_path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, indexes=index, labels=labels, probs=probs, logits=logits)
    os.replace(tmp, npz_path)
    atomic_write_json(json_path, summary)
    return summary


def evaluate_job(job_id: str, checkpoint: str | None = None, split: str | None = None, *,
                 home: str | os.PathLike | None = None, device: str = "cpu",
                 progress=None) -> dict[str, Any]:
    """Evaluate a training job's checkpoint and store the summary in SQLite, where the job
    page and `python -m engine evaluate` find it."""


    summary = evaluate_checkpoint(job_dir(job_id, home), checkpoint, split, home=home,
                                  device=device, progress=progress)
    with store.opened(home) as conn:
        store.put_evaluation(conn, job_id, summary)
    return summary


def calibrate_checkpoint(run_dir: str | os.PathLike, checkpoint: str | None = None, *,
                         home: str | os.PathLike | None = None, device: str = "cpu",
                         batch_size: int = 512, progress=None) -> dict[str, Any]:
    """Fit T on the checkpoint's validation split and store it in the checkpoint; returns T
    and the validation ECE and NLL before (T = 1) and after."""
    run_dir = Path(run_dir)
    ckpt = resolve_checkpoint(run_dir / checkpoint if checkpoint else run_dir)
    predictor = Predictor(ckpt, device=device)
    ds = trained_dataset(predictor, home)
    index = ds.split("val")
    if len(index) < 2:
        raise CalibrationError(f"dataset {ds.name!r} has {len(index)} validation images: "
                               "temperature scaling needs a validation split")
    logits, labels = split_logits(predictor, ds, index, batch_size, progress)
    t = fit_temperature(logits, labels)
    set_temperature(ckpt, t)
    before = calibration_summary(logits, labels, 1.0)
    after = calibration_summary(logits, labels, t)
    return {"checkpoint": ckpt.name, "split": "val", "images": int(len(labels)),
            "temperature": t, "ece_before": before["ece"], "ece_after": after["ece"],
            "nll_before": before["nll"], "nll_after": after["nll"]}


def calibrate_job(job_id: str, checkpoint: str | None = None, *,
                  home: str | os.PathLike | None = None, device: str = "cpu",
                  progress=None) -> dict[str, Any]:
    """Fit the temperature of a job's checkpoint on its validation split, store it in the
    checkpoint, and re-evaluate the splits (validation, and test where there is one) so the
    job's stored evaluations show ECE before and after."""
    run_dir = job_dir(job_id, home)
    step = (lambda lo, hi: (lambda f, m: progress(lo + (hi - lo) * f, m))) if progress \
        else (lambda lo, hi: None)
    result = calibrate_checkpoint(run_dir, checkpoint, home=home, device=device,
                                  progress=step(0.0, 0.4))
    ds = trained_dataset(Predictor(run_dir / result["checkpoint"]), home)
    splits = ["val"] + (["test"] if len(ds.split("test")) else [])
    for i, split in enumerate(splits):
        lo = 0.4 + 0.6 * i / len(splits)
        evaluate_job(job_id, result["checkpoint"], split, home=home, device=device,
                     progress=step(lo, lo + 0.6 / len(splits)))
    return result | {"evaluated": splits}


def load_evaluation(run_dir: str | os.PathLike, checkpoint: str = "best.pt",
                    split: str | None = None) -> Evaluation | None:
    """The stored evaluation of a checkpoint (the latest split evaluated when split is None)."""
    run_dir = Path(run_dir)
    base = run_dir / EVAL_DIR
    stem = Path(checkpoint).stem
    candidates = sorted(base.glob(f"{stem}-{split or '*'}.json"),
                        key=lambda p: p.stat().st_mtime, reverse=True) if base.exists() else []
    if not candidates:
        return None
    found, arrays = candidates[0], candidates[0].with_suffix(".npz")
    try:
        return _read_evaluation(str(found), _version(found), _version(arrays))
    except FileNotFoundError:  # deleted (or rewritten) between the glob and the read
        return None


def _version(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=4)
def _read_evaluation(summary_path: str, *version: tuple[int, int]) -> Evaluation:
    """The evaluation stored at `summary_path` (and its .npz), read once per version of the
    two files: the Job page shows it on every rerun, and its predictions (N x classes floats)
    were read and decoded each time. Callers only read it; its arrays are made read-only."""
    path = Path(summary_path)
    summary = json.loads(path.read_text())
    with np.load(path.with_suffix(".npz")) as z:
        ev = Evaluation(summary, z["indexes"], z["labels"], z["probs"].astype(np.float32))
    for array in (ev.indexes, ev.labels, ev.probs):
        array.flags.writeable = False
    return ev


def list_evaluations(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    base = Path(run_dir) / EVAL_DIR
    return [json.loads(p.read_text()) for p in sorted(base.glob("*.json"))] if base.exists() \
        else []
