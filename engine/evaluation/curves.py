"""Per-class precision-recall and ROC curves of a stored evaluation, one class against the rest.

Accuracy and the confusion matrix judge the arg-max only; the curves show what each class's
probability is worth at every threshold (what a user who acts on "is this a 7?" with a cut-off
needs), and AUC / average precision sum that up per class. scikit-learn computes them from the
evaluation's stored probabilities and labels, so they are queries over stored arrays, as the
galleries are; threshold_images() lists the images behind one point of a curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

DRAWN_POINTS = 400  # per class and curve: enough for a smooth line, few enough for Vega


@dataclass
class ClassCurves:
    """One class against the rest: the PR and ROC curves as scikit-learn returns them."""

    index: int
    name: str
    positives: int
    negatives: int
    precision: np.ndarray
    recall: np.ndarray
    pr_thresholds: np.ndarray  # len(precision) - 1, increasing
    fpr: np.ndarray
    tpr: np.ndarray
    roc_thresholds: np.ndarray  # decreasing, the first one +inf
    average_precision: float | None  # None: no image of the class, so undefined
    pr_auc: float | None  # trapezoidal area under the PR curve (auc(recall, precision))
    roc_auc: float | None  # None: the class has no positives or no negatives


@dataclass
class ThresholdImages:
    """What "predicted as the class when its probability >= threshold" gets right and wrong."""

    threshold: float
    true_positives: int
    false_positive_count: int
    false_negative_count: int
    false_positives: list[dict[str, Any]]  # index, true, probability: most confident first
    false_negatives: list[dict[str, Any]]  # index, true, probability: most clearly missed first

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positive_count
        return self.true_positives / flagged if flagged else 1.0  # sklearn's last PR point

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negative_count
        return self.true_positives / actual if actual else 0.0


def _check(labels: np.ndarray, probs: np.ndarray, classes: list[str]
           ) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probabilities must be N x C for N={labels.shape[0]} labels, not "
                         f"{probs.shape}")
    if probs.shape[1] != len(classes):
        raise ValueError(f"{probs.shape[1]} probability columns for {len(classes)} classes")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(f"labels must be class indexes in 0..{len(classes) - 1}")
    return labels.astype(np.int64), probs


def class_curves(labels: np.ndarray, probs: np.ndarray, classes: list[str],
                 only: list[int] | None = None) -> list[ClassCurves]:
    """PR and ROC curves with AUC for each class (or the classes in `only`), one-vs-rest."""
    labels, probs = _check(labels, probs, classes)
    out = []
    for c in range(len(classes)) if only is None else only:
        if not 0 <= c < len(classes):
            raise ValueError(f"no class {c}: there are {len(classes)}")
        truth = labels == c
        pos, neg = int(truth.sum()), int((~truth).sum())
        score = probs[:, c]
        if pos:
            precision, recall, pr_t = precision_recall_curve(truth, score)
            ap: float | None = float(average_precision_score(truth, score))
            pr_area: float | None = float(auc(recall, precision))
        else:  # no positives: recall is undefined, and scikit-learn warns
            precision, recall, pr_t = np.ones(1), np.zeros(1), np.zeros(0)
            ap = pr_area = None
        if pos and neg:
            fpr, tpr, roc_t = roc_curve(truth, score)
            roc_area: float | None = float(auc(fpr, tpr))
        else:
            fpr, tpr, roc_t = np.zeros(1), np.zeros(1), np.array([np.inf])
            roc_area = None
        out.append(ClassCurves(c, classes[c], pos, neg, precision, recall, pr_t, fpr, tpr,
                               roc_t, ap, pr_area, roc_area))
    return out


def auc_table(curves: list[ClassCurves]) -> list[dict[str, Any]]:
    """One row per class: images of it, average precision, PR AUC and ROC AUC."""
    return [{"class": k.name, "images": k.positives, "average precision": k.average_precision,
             "PR AUC": k.pr_auc, "ROC AUC": k.roc_auc} for k in curves]


def macro(curves: list[ClassCurves], key: str) -> float | None:
    """The unweighted mean of a per-class score over the classes where it is defined."""
    values = [getattr(k, key) for k in curves if getattr(k, key) is not None]
    return float(np.mean(values)) if values else None


def _thin(n: int, limit: int) -> np.ndarray:
    """At most `limit` evenly spread indexes of n, both ends kept."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def curve_rows(curves: list[ClassCurves], limit: int = DRAWN_POINTS) -> list[dict[str, Any]]:
    """Long-form points for drawing: curve ("PR" / "ROC"), class, x, y, threshold; thinned to
    `limit` points per curve (the full arrays stay on ClassCurves)."""
    rows: list[dict[str, Any]] = []
    for k in curves:
        if k.positives:  # the last PR point (recall 0, precision 1) has no threshold
            t = np.append(k.pr_thresholds, np.nan)
            for i in _thin(len(k.recall), limit):
                rows.append({"curve": "PR", "class": k.name, "x": float(k.recall[i]),
                             "y": float(k.precision[i]), "threshold": _num(t[i])})
        if k.roc_auc is not None:
            for i in _thin(len(k.fpr), limit):
                rows.append({"curve": "ROC", "class": k.name, "x": float(k.fpr[i]),
                             "y": float(k.tpr[i]), "threshold": _num(k.roc_thresholds[i])})
    return rows


def _num(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def threshold_images(indexes: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                     class_index: int, threshold: float, limit: int | None = 48
                     ) -> ThresholdImages:
    """The false positives (probability of the class >= threshold, another true class) and
    false negatives (images of the class below it) at one threshold, as dataset indexes: the
    images behind one point of the class's PR or ROC curve."""
    labels = np.asarray(labels)
    probs = np.asarray(probs)
    if not 0 <= class_index < probs.shape[1]:
        raise ValueError(f"no class {class_index}: there are {probs.shape[1]}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"a threshold is a probability in [0, 1], not {threshold}")
    score = probs[:, class_index]
    flagged = score >= threshold
    truth = labels == class_index
    fp = np.flatnonzero(flagged & ~truth)
    fn = np.flatnonzero(~flagged & truth)
    counts = len(fp), len(fn)
    fp = fp[np.argsort(-score[fp], kind="stable")][:limit]
    fn = fn[np.argsort(score[fn], kind="stable")][:limit]

    def rows(sel: np.ndarray) -> list[dict[str, Any]]:
        return [{"index": int(indexes[i]), "true": int(labels[i]),
                 "probability": float(score[i])} for i in sel]

    return ThresholdImages(float(threshold), int((flagged & truth).sum()), *counts, rows(fp),
                           rows(fn))


def evaluation_curves(ev: Any, only: list[int] | None = None) -> list[ClassCurves]:
    """class_curves() of a stored Evaluation (engine.evaluation.evaluate)."""
    return class_curves(ev.labels, ev.probs, ev.summary["classes"], only)


def evaluation_threshold_images(ev: Any, class_index: int, threshold: float,
                                limit: int | None = 48) -> ThresholdImages:
    """threshold_images() of a stored Evaluation."""
    return threshold_images(ev.indexes, ev.labels, ev.probs, class_index, threshold, limit)
