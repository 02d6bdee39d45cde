"""Calibration: ECE and the reliability table by hand, temperature scaling of an over-confident
model, the temperature in the contract, and the calibrate task on a trained checkpoint."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from engine.evaluation.calibration import (
    BINS,
    CalibrationError,
    calibration_summary,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability,
    set_temperature,
)
from engine.evaluation.evaluate import (
    calibrate_checkpoint,
    evaluate_checkpoint,
    load_evaluation,
    summarize,
)
from engine.images.contract import Contract, ContractError, softmax
from engine.inference.predictor import Predictor


def test_ece_matches_a_hand_computation():
    # Top-1 confidences 0.9, 0.8, 0.55, 0.95 with 3 equal-width bins (0, 1/3], (1/3, 2/3],
    # (2/3, 1]: bin 2 holds 0.55 (wrong), bin 3 holds 0.9 (right), 0.8 (wrong), 0.95 (right).
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.55, 0.45], [0.05, 0.95]])
    labels = np.array([0, 0, 1, 1])
    table = reliability(probs, labels, bins=3)
    assert [r["count"] for r in table] == [0, 1, 3]
    assert table[0]["accuracy"] is None and table[0]["confidence"] is None
    assert table[1]["confidence"] == pytest.approx(0.55) and table[1]["accuracy"] == 0.0
    assert table[2]["confidence"] == pytest.approx((0.9 + 0.8 + 0.95) / 3)
    assert table[2]["accuracy"] == pytest.approx(2 / 3)
    hand = (1 / 4) * abs(0.0 - 0.55) + (3 / 4) * abs(2 / 3 - (0.9 + 0.8 + 0.95) / 3)
    assert expected_calibration_error(probs, labels, bins=3) == pytest.approx(hand)
    # A bin is (lower, upper]: a confidence of exactly 2/3's edge falls in the lower bin.
    edge = reliability(np.array([[0.5, 0.5]]), np.array([0]), bins=2)
    assert [r["count"] for r in edge] == [1, 0]


def test_ece_agrees_with_an_independent_loop():
    rng = np.random.default_rng(1)
    probs = softmax(rng.normal(size=(500, 10)) * 3)
    labels = rng.integers(0, 10, 500)
    conf, right = probs.max(1).astype(np.float64), probs.argmax(1) == labels
    edges = np.linspace(0, 1, BINS + 1)
    want = sum(abs(right[m].mean() - conf[m].mean()) * m.mean()
               for lo, hi in zip(edges[:-1], edges[1:], strict=True)
               if (m := (conf > lo) & (conf <= hi)).any())
    assert expected_calibration_error(probs, labels) == pytest.approx(want, abs=1e-12)


def _overconfident(n: int = 4000, classes: int = 10, seed: int = 0):
    """Labels drawn from softmax(z), so softmax(z) is calibrated, and logits 5 z: a model
    five times too sure of itself."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, classes)) * 1.5
    p = softmax(z).astype(np.float64)
    labels = (rng.random(n)[:, None] > np.cumsum(p, 1)).sum(1)
    return (5 * z).astype(np.float32), np.minimum(labels, classes - 1)


def test_temperature_scaling_fixes_an_overconfident_model():
    logits, labels = _overconfident()
    val, test = slice(0, 2000), slice(2000, None)
    t = fit_temperature(logits[val], labels[val])
    assert 4.0 < t < 6.0  # the factor the logits were inflated by
    before = expected_calibration_error(softmax(logits[test]), labels[test])
    after = expected_calibration_error(softmax(logits[test], t), labels[test])
    assert before > 0.2 and after < 0.05 and after < before / 4
    assert nll(logits[test], labels[test], t) < nll(logits[test], labels[test])
    # Temperature never changes a prediction.
    assert np.array_equal(softmax(logits, t).argmax(1), logits.argmax(1))
    s = calibration_summary(logits[test], labels[test], t)
    assert s["ece_raw"] == pytest.approx(before) and s["ece"] == pytest.approx(after)
    assert sum(r["count"] for r in s["reliability"]) == 2000 and len(s["reliability"]) == BINS


def test_an_underconfident_model_gets_a_temperature_below_one():
    logits, labels = _overconfident()
    assert fit_temperature(logits / 25, labels) < 0.5  # 5 z / 25 = z / 5: too timid


@pytest.mark.parametrize("probs, labels, match", [
    (np.ones(3), np.zeros(3, int), "N x classes"),
    (np.ones((3, 2)), np.zeros(2, int), "one label per row"),
    (np.ones((3, 2)), np.array([0, 1, 2]), "class indexes"),
    (np.array([[np.nan, 0.0]]), np.array([0]), "finite"),
])
def test_bad_inputs_are_refused_in_one_line(probs, labels, match):
    with pytest.raises(CalibrationError, match=match):
        reliability(probs, labels)


def test_fitting_needs_a_validation_split():
    with pytest.raises(CalibrationError, match="at least 2"):
        fit_temperature(np.zeros((1, 3)), np.array([0]))


def test_the_contract_carries_the_temperature():
    c = Contract(1, 28, 28)
    assert c.temperature == 1.0 and not c.calibrated
    old = Contract.from_dict({k: v for k, v in c.to_dict().items() if k != "temperature"})
    assert old == c  # dicts written before calibration load uncalibrated
    t = Contract.from_dict({**c.to_dict(), "temperature": 2.5})
    assert t.calibrated and Contract.from_dict(t.to_dict()) == t
    logits = np.array([[2.0, 0.0, -1.0]], np.float32)
    assert np.allclose(t.probabilities(logits), softmax(logits / 2.5), atol=1e-7)
    assert np.allclose(t.probabilities(logits, calibrated=False), softmax(logits), atol=1e-7)
    for bad in (0, -1.0, float("inf"), "hot"):
        with pytest.raises(ContractError, match="temperature"):
            Contract.from_dict({**c.to_dict(), "temperature": bad})


def test_summaries_store_the_reliability_table():
    probs = softmax(np.array([[3.0, 0.0], [0.0, 1.0], [2.0, 0.0]]))
    s = summarize(probs, np.array([0, 0, 0]), ["a", "b"])
    assert s["calibration"]["bins"] == BINS and s["calibration"]["temperature"] == 1.0
    assert s["calibration"]["ece"] == pytest.approx(expected_calibration_error(
        probs, np.array([0, 0, 0])))


def test_calibrating_a_checkpoint_stores_t_and_every_evaluation_shows_it(lenet_run, digits_home,
                                                                         tmp_path):
    run = tmp_path / "run"
    shutil.copytree(lenet_run, run)
    raw = evaluate_checkpoint(run, split="test", home=digits_home)
    assert raw["calibration"]["temperature"] == 1.0
    assert raw["calibration"]["ece"] == raw["calibration"]["ece_raw"]

    result = calibrate_checkpoint(run, home=digits_home)
    t = result["temperature"]
    assert t != 1.0 and result["nll_after"] <= result["nll_before"] + 1e-9
    predictor = Predictor(run / "best.pt")
    assert predictor.contract.temperature == pytest.approx(t)

    cal = evaluate_checkpoint(run, split="test", home=digits_home)["calibration"]
    assert cal["temperature"] == pytest.approx(t)
    assert cal["ece_raw"] == pytest.approx(raw["calibration"]["ece"], abs=1e-6)
    assert cal["ece"] != cal["ece_raw"]
    ev = load_evaluation(run, "best.pt", "test")
    assert ev.summary["accuracy"] == raw["accuracy"]  # labels never change

    set_temperature(run / "best.pt", 1.0)  # back to raw
    assert not Predictor(run / "best.pt").contract.calibrated


def test_a_calibrated_model_reports_raw_confidence_beside_calibrated(lenet_run, digits_home,
                                                                      tmp_path):
    from engine.datasets import open_dataset
    from engine.evaluation.probes import BoardScore
    from engine.inference.backends import TorchBackend
    from engine.inference.classify import classify, classify_batch

    run = tmp_path / "run"
    shutil.copytree(lenet_run, run)
    image = np.asarray(open_dataset("digits", home=digits_home).images[0])
    plain = classify(TorchBackend(run / "best.pt"), image, digit=False)
    assert plain.raw_confidence is None and "raw_confidence" not in plain.to_dict()
    set_temperature(run / "best.pt", 3.0)
    backend = TorchBackend(run / "best.pt")
    scaled = classify(backend, image, digit=False)
    assert scaled.label == plain.label
    assert scaled.raw_confidence == pytest.approx(plain.confidence, abs=1e-6)
    assert scaled.confidence < plain.confidence  # T > 1 softens
    assert scaled.to_dict()["raw_confidence"] == scaled.raw_confidence
    [batched] = classify_batch(backend, [image], digit=False)
    assert batched.raw_confidence == pytest.approx(scaled.raw_confidence)

    # The lab's comparison table says which confidence it shows.
    note = BoardScore([], ["lenet", "wide"], [], [3.0, 1.0]).confidence_note()
    assert "calibrated" in note and "lenet (T = 3.00)" in note and "raw softmax" in note
    assert "none is calibrated" in BoardScore([], ["a"], [], [1.0]).confidence_note()


def test_cli_evaluate_calibrate_prints_ece_before_and_after(capsys, jobs_home):
    from engine import jobs
    from engine.cli.main import main
    from testkit.finished_jobs import finished_job

    job_id = finished_job(jobs_home, evaluate=False)
    assert main(["evaluate", job_id]) == 0
    assert "(uncalibrated)" in capsys.readouterr().out
    assert main(["evaluate", job_id, "--calibrate", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cal = out["calibration"]
    t = Predictor(jobs.job_dir(job_id) / "best.pt").contract.temperature
    assert cal["temperature"] == t != 1.0 and out["split"] == "test"
    assert main(["evaluate", job_id]) == 0
    assert f"temperature {t:.3f}" in capsys.readouterr().out
