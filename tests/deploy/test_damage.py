"""Accuracy and latency side by side: per-class damage, the accuracy/latency table, profiles."""

from __future__ import annotations

import numpy as np
import pytest

from testkit import trained_digits
from trt.damage import (
    accuracy_latency,
    confusion_matrix,
    damage_table,
    onnxruntime_profile,
    variant_damage,
    variant_latency,
)

digits_run = trained_digits.digits_run


def test_damage_table_on_a_constructed_case():
    classes = ["cat", "dog", "fox"]
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    fp32 = np.array([0, 0, 0, 0, 1, 1, 1, 0, 2, 2])   # dog: 3/4, others all right
    int8 = np.array([0, 0, 2, 2, 1, 1, 1, 1, 2, 2])   # cat loses 2 to fox, dog gains 1
    ref, var = confusion_matrix(labels, fp32, 3), confusion_matrix(labels, int8, 3)
    assert ref.tolist() == [[4, 0, 0], [1, 3, 0], [0, 0, 2]]
    rows = {r["class"]: r for r in damage_table(classes, ref, var)}
    assert rows["cat"]["fp32_accuracy"] == 100.0 and rows["cat"]["variant_accuracy"] == 50.0
    assert rows["cat"]["delta_points"] == -50.0
    assert rows["cat"]["now_confused_with"] == "fox" and rows["cat"]["moved"] == 2
    assert rows["dog"]["delta_points"] == 25.0 and rows["dog"]["now_confused_with"] is None
    assert rows["fox"]["delta_points"] == 0.0 and rows["fox"]["images"] == 2
    assert damage_table(classes, ref, var)[0]["class"] == "cat"  # worst first
    with pytest.raises(ValueError, match="same images"):
        damage_table(classes, ref, confusion_matrix(labels[:8], int8[:8], 3))


def test_fastest_within_n_points_of_fp32_is_marked():
    latency = [
        {"variant": "fp32", "backend": "onnxruntime-cpu", "batch": 8, "images_per_s": 100.0},
        {"variant": "fp16", "backend": "onnxruntime-cpu", "batch": 8, "images_per_s": 150.0},
        {"variant": "int8", "backend": "onnxruntime-cpu", "batch": 8, "images_per_s": 300.0},
        {"variant": "fp32", "backend": "onnxruntime-cpu", "batch": 1, "images_per_s": 50.0},
        {"variant": "fp16", "backend": "onnxruntime-cpu", "batch": 1, "images_per_s": 40.0},
    ]
    accuracy = {"fp32": 0.99, "fp16": 0.985, "int8": 0.95}
    rows = accuracy_latency(latency, accuracy, within_points=1.0)
    best = {(r["batch"], r["variant"]) for r in rows if r["best"]}
    assert best == {(8, "fp16"), (1, "fp32")}  # int8 is fastest but 4 points down
    rows = accuracy_latency(latency, accuracy, within_points=5.0)
    assert {(r["batch"], r["variant"]) for r in rows if r["best"]} == {(8, "int8"), (1, "fp32")}
    assert next(r for r in rows if r["variant"] == "int8")["delta_points"] == pytest.approx(-4.0)


def test_variant_damage_and_latency_on_a_real_model(digits_run, digits_home):
    from trt.onnx_export import export_onnx
    from trt.variants import make_variants

    fp32 = digits_run / "exports" / "model.onnx"
    report = export_onnx(digits_run, fp32, home=digits_home)
    made = make_variants(fp32, "digits", precisions=["fp32", "int8"], home=digits_home)
    paths = {p: v["onnx"] for p, v in made["variants"].items()}
    damage = variant_damage(paths, "digits", report["classes"], home=digits_home)
    for p, v in damage["variants"].items():
        assert v["accuracy"] == pytest.approx(made["variants"][p]["accuracy"])
        per_class = sum(r["variant_accuracy"] * r["images"] for r in v["damage"]) / 100
        assert per_class == pytest.approx(v["accuracy"] * sum(r["images"] for r in v["damage"]))
    assert all(r["delta_points"] == 0 for r in damage["variants"]["fp32"]["damage"])
    assert np.asarray(damage["variants"]["fp32"]["confusion_delta"]).sum() == 0
    rows = variant_latency(paths, batches=(1, 4), seconds=0.05)
    assert {(r["variant"], r["batch"]) for r in rows} == {(p, b) for p in paths for b in (1, 4)}
    assert all(r["p50_ms"] > 0 and r["images_per_s"] > 0 for r in rows)

    ops = onnxruntime_profile(fp32, batch=4, runs=3, level="extended")
    names = {r["operator"] for r in ops}
    assert {"Conv", "MaxPool", "Gemm"} <= names
    assert sum(r["share"] for r in ops) == pytest.approx(1.0)
    conv = next(r for r in ops if r["operator"] == "Conv")
    assert conv["calls_per_run"] == pytest.approx(2.0)  # LeNet has two convolutions


@pytest.mark.parametrize("served", ["extended", "all"])
def test_the_profile_runs_at_the_level_serving_picks(monkeypatch, tmp_path, served):
    """At "all" ONNX Runtime reorders tensors into the NCHWc layout around the convolutions:
    a profile at the other level would show operators that do not serve."""
    from engine.networks import build_network
    from engine.networks.zoo import zoo_spec
    from trt import runtime
    from trt.onnx_export import onnx_bytes

    path = tmp_path / "lenet.onnx"
    path.write_bytes(onnx_bytes(build_network(zoo_spec("lenet"), (1, 28, 28), 10).eval(),
                                (1, 28, 28), 17))
    monkeypatch.setattr(runtime, "fastest_cpu_session", lambda source: (None, served))
    ops = onnxruntime_profile(path, batch=2, runs=2)
    assert {r["level"] for r in ops} == {served}
    reorders = {r["operator"] for r in ops if r["operator"].startswith("Reorder")}
    assert bool(reorders) == (served == "all")
    assert sum(r["share"] for r in ops) == pytest.approx(1.0)
