"""Per-class PR and ROC curves (engine/evaluation/curves.py): the same points and areas as
scikit-learn called directly, a tiny case checked by hand, and the images behind a threshold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    auc,
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from engine.evaluation import curves


def random_eval(n: int = 300, c: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 2.0 * np.eye(c)[labels]  # informative, not perfect
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return labels, probs.astype(np.float32), [f"c{i}" for i in range(c)]


def test_curves_match_scikit_learn():
    labels, probs, classes = random_eval()
    got = curves.class_curves(labels, probs, classes)
    assert [k.name for k in got] == classes
    for k in got:
        truth, score = labels == k.index, probs[:, k.index].astype(np.float64)
        p, r, t = precision_recall_curve(truth, score)
        np.testing.assert_array_equal(k.precision, p)
        np.testing.assert_array_equal(k.recall, r)
        np.testing.assert_array_equal(k.pr_thresholds, t)
        fpr, tpr, rt = roc_curve(truth, score)
        np.testing.assert_array_equal(k.fpr, fpr)
        np.testing.assert_array_equal(k.tpr, tpr)
        np.testing.assert_array_equal(k.roc_thresholds, rt)
        assert k.roc_auc == pytest.approx(roc_auc_score(truth, score))
        assert k.average_precision == pytest.approx(average_precision_score(truth, score))
        assert k.pr_auc == pytest.approx(auc(r, p))
        assert k.positives == truth.sum() and k.negatives == (~truth).sum()
    assert curves.macro(got, "roc_auc") == pytest.approx(
        roc_auc_score(labels, probs, multi_class="ovr", average="macro"))


def test_tiny_case_by_hand():
    # class 0's probabilities 0.9 (a 0), 0.8 (a 1), 0.3 (a 0), 0.1 (a 1)
    labels = np.array([0, 1, 0, 1])
    p0 = np.array([0.9, 0.8, 0.3, 0.1])
    probs = np.stack([p0, 1 - p0], 1)
    [k] = curves.class_curves(labels, probs, ["zero", "one"], only=[0])
    # thresholds 0.9, 0.8, 0.3 flag 1, 2, 3 images: (TP, FP) = (1,0), (1,1), (2,1)
    np.testing.assert_allclose(k.pr_thresholds, [0.1, 0.3, 0.8, 0.9])
    np.testing.assert_allclose(k.precision, [0.5, 2 / 3, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(k.recall, [1.0, 1.0, 0.5, 0.5, 0.0])
    # AP = sum (R_n - R_n-1) P_n = 0.5 * 1 + 0.5 * 2/3
    assert k.average_precision == pytest.approx(0.5 + 1 / 3)
    # ROC: of 4 (positive, negative) pairs, the 0 scored 0.9 beats both 1s, the 0.3 one beats
    # one of them: AUC 3/4
    assert k.roc_auc == pytest.approx(0.75)
    np.testing.assert_allclose(k.fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(k.tpr, [0, 0.5, 0.5, 1, 1])

    at = curves.threshold_images(np.array([10, 11, 12, 13]), labels, probs, 0, 0.5)
    assert at.true_positives == 1
    assert [r["index"] for r in at.false_positives] == [11]  # a 1 at 0.8
    assert [r["index"] for r in at.false_negatives] == [12]  # a 0 at 0.3
    assert (at.precision, at.recall) == (0.5, 0.5)


def test_threshold_images_are_exactly_the_mistakes():
    labels, probs, classes = random_eval(n=500, c=5, seed=3)
    indexes = np.arange(1000, 1500)
    for c, threshold in ((0, 0.5), (2, 0.2), (4, 0.9)):
        at = curves.threshold_images(indexes, labels, probs, c, threshold, limit=None)
        flagged = probs[:, c] >= threshold
        fp = set(indexes[flagged & (labels != c)])
        fn = set(indexes[~flagged & (labels == c)])
        assert {r["index"] for r in at.false_positives} == fp
        assert {r["index"] for r in at.false_negatives} == fn
        assert at.false_positive_count == len(fp) and at.false_negative_count == len(fn)
        assert all(r["true"] != c and r["probability"] >= threshold for r in at.false_positives)
        fp_p = [r["probability"] for r in at.false_positives]
        fn_p = [r["probability"] for r in at.false_negatives]
        assert fp_p == sorted(fp_p, reverse=True) and fn_p == sorted(fn_p)
        # the threshold is a point of the class's PR curve: same precision and recall
        p, r, t = precision_recall_curve(labels == c, probs[:, c])
        i = np.searchsorted(t, threshold)  # the first curve threshold >= ours flags the same
        assert (at.precision, at.recall) == pytest.approx((p[i], r[i]))
    capped = curves.threshold_images(indexes, labels, probs, 0, 0.0, limit=7)
    assert len(capped.false_positives) == 7 and capped.false_positive_count == (labels != 0).sum()


def test_absent_class_and_bad_input():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]])
    got = curves.class_curves(labels, probs, ["a", "b", "c"])
    assert got[2].positives == 0 and got[2].roc_auc is None and got[2].average_precision is None
    assert got[0].roc_auc == 1.0
    rows = curves.curve_rows(got)
    assert {r["class"] for r in rows} == {"a", "b"}  # nothing drawn for the class never seen
    assert curves.auc_table(got)[2] == {"class": "c", "images": 0, "average precision": None,
                                        "PR AUC": None, "ROC AUC": None}
    with pytest.raises(ValueError, match="3 probability columns for 2 classes"):
        curves.class_curves(labels, probs, ["a", "b"])
    with pytest.raises(ValueError, match=r"threshold is a probability"):
        curves.threshold_images(np.arange(4), labels, probs, 0, 1.5)
    with pytest.raises(ValueError, match="no class 5"):
        curves.threshold_images(np.arange(4), labels, probs, 5, 0.5)


def test_curve_rows_are_thinned_but_keep_the_ends():
    labels, probs, classes = random_eval(n=3000, c=3)
    got = curves.class_curves(labels, probs, classes)
    rows = curves.curve_rows(got, limit=50)
    for k in got:
        pr = [r for r in rows if r["class"] == k.name and r["curve"] == "PR"]
        assert len(pr) <= 50 < len(k.recall)
        assert (pr[0]["x"], pr[0]["y"]) == (k.recall[0], k.precision[0])
        assert (pr[-1]["x"], pr[-1]["y"], pr[-1]["threshold"]) == (0.0, 1.0, None)
        roc = [r for r in rows if r["class"] == k.name and r["curve"] == "ROC"]
        assert (roc[-1]["x"], roc[-1]["y"]) == (1.0, 1.0) and roc[0]["threshold"] is None
