"""Calibration: does "99% sure" mean right 99 times in 100?

Expected calibration error (ECE) and reliability-diagram data over equal-width confidence bins
(Naeini et al. 2015; Guo et al. 2017: 15 bins, a bin holds confidences in (lower, upper]), and
temperature scaling (Guo et al. 2017): one scalar T > 0, fitted on the validation split by
minimising the negative log-likelihood of softmax(logits / T). T keeps every prediction's
label (argmax is unchanged) and only softens or sharpens its confidence. The fitted T is stored
in the checkpoint's preprocessing contract, so PyTorch, ONNX Runtime, TensorRT, the server and
bundles all apply it through Contract.probabilities().
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from engine.images.contract import Contract, softmax

BINS = 15  # Guo et al.'s choice, and the usual one in the literature
T_BOUNDS = (0.05, 20.0)  # searched on log T; beyond these a model is broken, not miscalibrated


class CalibrationError(ValueError):
    """Inputs that cannot be calibrated (shapes, labels, an empty split); one line."""


def _check(probs_or_logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(probs_or_logits)
    y = np.asarray(labels)
    if a.ndim != 2 or a.shape[1] < 1:
        raise CalibrationError(f"need an N x classes array, not shape {a.shape}")
    if y.shape != (a.shape[0],):
        raise CalibrationError(f"need one label per row: {a.shape[0]} rows, labels {y.shape}")
    if len(y) and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0
                   or y.max() >= a.shape[1]):
        raise CalibrationError(f"labels must be class indexes 0..{a.shape[1] - 1}")
    if not np.all(np.isfinite(a)):
        raise CalibrationError("scores must be finite numbers")
    return a, y.astype(np.int64)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[dict[str, Any]]:
    """Per equal-width confidence bin: its edges, the mean top-1 confidence, the accuracy and
    how many predictions fell in it (confidence and accuracy None for an empty bin)."""
    probs, labels = _check(probs, labels)
    if bins < 1:
        raise CalibrationError(f"bins must be at least 1, not {bins}")
    conf = probs.max(1).astype(np.float64)
    right = probs.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin b holds (edges[b], edges[b + 1]]; a confidence of exactly 0 goes in the first bin.
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=conf, minlength=bins)
    right_sum = np.bincount(which, weights=right.astype(np.float64), minlength=bins)
    return [{"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(count[b]),
             "confidence": float(conf_sum[b] / count[b]) if count[b] else None,
             "accuracy": float(right_sum[b] / count[b]) if count[b] else None}
            for b in range(bins)]


def ece_of(table: list[dict[str, Any]]) -> float:
    """ECE from reliability() rows: sum over bins of |accuracy - confidence| x share."""
    n = sum(r["count"] for r in table)
    return float(sum(abs(r["accuracy"] - r["confidence"]) * r["count"]
                     for r in table if r["count"]) / n) if n else 0.0


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS
                               ) -> float:
    """ECE of top-1 confidences: 0 = perfectly calibrated, 0.1 = off by 10 points on average."""
    return ece_of(reliability(probs, labels, bins))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / temperature)."""
    z, y = _check(logits, labels)
    if not len(y):
        return 0.0
    logp = log_softmax(z.astype(np.float64) / temperature, axis=1)
    return float(-logp[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising validation NLL of softmax(logits / T) (Guo et al. 2017), by a
    bounded scalar search on log T (the NLL is smooth and unimodal in it)."""
    z, y = _check(logits, labels)
    if len(y) < 2:
        raise CalibrationError("temperature scaling needs at least 2 validation images")
    lo, hi = np.log(T_BOUNDS)
    res = minimize_scalar(lambda log_t: nll(z, y, float(np.exp(log_t))), bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-5})
    return float(np.exp(res.x))


def calibration_summary(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0,
                        bins: int = BINS) -> dict[str, Any]:
    """What an evaluation stores: ECE, NLL and the reliability table, raw (T = 1) and with
    the model's temperature (identical when it has none)."""
    raw = reliability(softmax(logits), labels, bins)
    cal = raw if temperature == 1.0 else reliability(softmax(logits, temperature), labels, bins)
    return {"bins": bins, "temperature": float(temperature),
            "ece": ece_of(cal), "ece_raw": ece_of(raw),
            "nll": nll(logits, labels, temperature), "nll_raw": nll(logits, labels),
            "reliability": cal, "reliability_raw": raw}


def set_temperature(checkpoint: str | os.PathLike, temperature: float) -> None:
    """Write T into a checkpoint's preprocessing contract (re-recording its sha256), so every
    backend that loads it, and every export made from it, applies it."""
    from engine.training.checkpoint import load_checkpoint, save_checkpoint  # torch: lazily

    state = load_checkpoint(checkpoint)
    pp = dict(state["preprocess"])
    pp["temperature"] = float(temperature)
    Contract.from_dict(pp, state.get("input_shape"))  # refuses a bad T before writing
    state["preprocess"] = pp
    save_checkpoint(checkpoint, state)
