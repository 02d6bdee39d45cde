"""Accuracy and latency side by side, per precision variant: what quantization costs, where.

- damage_table: per class, held-out accuracy of a variant next to FP32's and the difference in
  points, with where the changed predictions went (from the confusion-matrix difference);
- accuracy_latency: accuracy and latency per variant, backend and batch size, the fastest
  choice within N points of FP32 marked per batch size;
- onnxruntime_profile / tensorrt_profile: time per operator (ONNX Runtime's own profiler) and
  per layer (TensorRT's IProfiler, on a GPU), as tables.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DatasetLike = Any


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return cm


def damage_table(classes: Sequence[str], reference: np.ndarray, variant: np.ndarray
                 ) -> list[dict[str, Any]]:
    """Per class, from two confusion matrices (FP32's and a variant's, same images): images,
    both accuracies (%), the difference in points, and the class most of its newly wrong
    images went to. Sorted worst damage first."""
    reference, variant = np.asarray(reference), np.asarray(variant)
    if reference.shape != variant.shape or reference.shape != (len(classes), len(classes)):
        raise ValueError("both confusion matrices must be classes x classes")
    if not np.array_equal(reference.sum(1), variant.sum(1)):
        raise ValueError("the confusion matrices are not of the same images")
    delta = variant - reference
    rows = []
    for i, name in enumerate(classes):
        n = int(reference[i].sum())
        ref_acc = 100.0 * reference[i, i] / n if n else float("nan")
        var_acc = 100.0 * variant[i, i] / n if n else float("nan")
        gained = delta[i].copy()
        gained[i] = 0
        worst = int(gained.argmax())
        rows.append({"class": name, "images": n, "fp32_accuracy": ref_acc,
                     "variant_accuracy": var_acc, "delta_points": var_acc - ref_acc,
                     "now_confused_with": classes[worst] if gained[worst] > 0 else None,
                     "moved": int(gained[worst]) if gained[worst] > 0 else 0})
    return sorted(rows, key=lambda r: (r["delta_points"], r["class"]))


def variant_damage(variants: dict[str, str | os.PathLike], dataset: DatasetLike,
                   classes: Sequence[str], split: str = "test",
                   home: str | os.PathLike | None = None) -> dict[str, Any]:
    """Accuracy, confusion matrix and damage table of each variant (precision -> ONNX path)
    against the fp32 one, on the same held-out images."""
    from trt.variants import predict_split

    if "fp32" not in variants:
        raise ValueError("the fp32 variant is the reference: it must be among the variants")
    out: dict[str, Any] = {}
    matrices = {}
    for precision, path in variants.items():
        labels, predicted = predict_split(path, dataset, split, home)
        matrices[precision] = confusion_matrix(labels, predicted, len(classes))
        out[precision] = {"accuracy": float((labels == predicted).mean()),
                          "confusion": matrices[precision].tolist()}
    for precision, v in out.items():
        v["delta_points"] = 100.0 * (v["accuracy"] - out["fp32"]["accuracy"])
        v["confusion_delta"] = (matrices[precision] - matrices["fp32"]).tolist()
        v["damage"] = damage_table(classes, matrices["fp32"], matrices[precision])
    return {"split": split, "classes": list(classes), "variants": out}


def variant_latency(variants: dict[str, str | os.PathLike], batches: Sequence[int] = (1, 8, 32),
                    seconds: float = 0.5, input_shape: Sequence[int] | None = None,
                    engines: dict[str, str | os.PathLike] | None = None) -> list[dict[str, Any]]:
    """p50 latency and images/s of every variant at every batch size: ONNX Runtime on the CPU,
    and TensorRT for the engines given (precision -> engine) where a GPU runs them."""
    from trt.bench import latency_stats, sample_calls
    from trt.runtime import NeedsGPU, OnnxRunner, TensorRTRunner

    runners: list[tuple[str, str, Any]] = [(p, "onnxruntime-cpu", OnnxRunner(path))
                                           for p, path in variants.items()]
    for precision, engine in (engines or {}).items():
        try:
            runners.append((precision, "tensorrt", TensorRTRunner(engine)))
        except (NeedsGPU, RuntimeError):
            continue
    shape = tuple(input_shape) if input_shape else _input_shape(next(iter(variants.values())))
    rows = []
    rng = np.random.default_rng(0)
    for batch in batches:
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        for precision, backend, runner in runners:
            stats = latency_stats(sample_calls(lambda r=runner, x=x: r.run(x), seconds=seconds,
                                               min_reps=5))
            rows.append({"variant": precision, "backend": backend, "batch": batch,
                         "p50_ms": stats["p50_ms"], "p99_ms": stats["p99_ms"],
                         "images_per_s": batch / (stats["p50_ms"] / 1e3)})
    return rows


def _input_shape(onnx_path: str | os.PathLike) -> tuple[int, ...]:
    import onnx

    dims = onnx.load(str(onnx_path), load_external_data=False).graph.input[0].type.tensor_type
    return tuple(d.dim_value for d in dims.shape.dim[1:])


def accuracy_latency(latency: list[dict[str, Any]], accuracy: dict[str, float],
                     within_points: float = 1.0) -> list[dict[str, Any]]:
    """Latency rows joined with each variant's accuracy (0..1); per batch size, the fastest
    row (most images/s) whose accuracy is within `within_points` of fp32 gets best=True."""
    if "fp32" not in accuracy:
        raise ValueError("the fp32 accuracy is the reference: it must be given")
    floor = 100.0 * accuracy["fp32"] - within_points
    rows = [r | {"accuracy": accuracy[r["variant"]],
                 "delta_points": 100.0 * (accuracy[r["variant"]] - accuracy["fp32"]),
                 "best": False} for r in latency if r["variant"] in accuracy]
    for batch in sorted({r["batch"] for r in rows}):
        eligible = [r for r in rows
                    if r["batch"] == batch and 100.0 * r["accuracy"] >= floor - 1e-9]
        if eligible:
            max(eligible, key=lambda r: r["images_per_s"])["best"] = True
    return rows


def onnxruntime_profile(onnx_path: str | os.PathLike, batch: int = 8, runs: int = 20,
                        level: str | None = None) -> list[dict[str, Any]]:
    """Time per operator type (ms per run, share of the total), from ONNX Runtime's profiler
    over `runs` runs after one warm-up, at graph optimization `level`. None takes the level
    serving picks on this CPU (fastest_cpu_session), so the table shows the operators that
    serve: at "all" a ResNet's convolutions run in the NCHWc layout, with Reorder nodes."""
    import onnxruntime as ort

    from trt.runtime import fastest_cpu_session, ort_session_options

    if level is None:
        level = fastest_cpu_session(str(onnx_path))[1]
    with tempfile.TemporaryDirectory(prefix="ort-profile-") as tmp:
        so = ort_session_options(level=level)
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(onnx_path), sess_options=so,
                                       providers=["CPUExecutionProvider"])
        inp = session.get_inputs()[0]
        x = np.random.default_rng(0).standard_normal(
            (batch, *[int(d) for d in inp.shape[1:]])).astype(np.float32)
        session.run(None, {inp.name: x})
        for _ in range(runs):
            session.run(None, {inp.name: x})
        trace = json.loads(Path(session.end_profiling()).read_text())
    totals: dict[str, list[float]] = {}
    for event in trace:
        args = event.get("args") or {}
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            totals.setdefault(args.get("op_name", "?"), []).append(event["dur"] / 1e3)
    # the first run is the warm-up: drop one call per node
    grand = sum(sum(v) for v in totals.values()) or 1.0
    rows = [{"operator": op, "calls_per_run": len(ms) / (runs + 1),
             "ms_per_run": sum(ms) / (runs + 1), "share": sum(ms) / grand, "level": level}
            for op, ms in totals.items()]
    return sorted(rows, key=lambda r: -r["ms_per_run"])


def tensorrt_profile(engine_path: str | os.PathLike, batch: int = 8, runs: int = 20
                     ) -> list[dict[str, Any]]:
    """Time per layer (ms per run, share) from TensorRT's IProfiler; needs a GPU."""
    import torch

    from trt.runtime import TensorRTRunner

    runner = TensorRTRunner(engine_path)
    lib = runner._trt
    times: dict[str, list[float]] = {}

    class Profiler(lib.IProfiler):
        def __init__(self) -> None:
            lib.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            times.setdefault(layer_name, []).append(ms)

    runner.context.profiler = Profiler()
    c, h, w = (int(d) for d in runner.engine.get_tensor_shape(runner.input_name)[1:])
    x = torch.randn(batch, c, h, w, device=runner.device)
    for _ in range(runs):
        runner.run_tensor(x)
        torch.cuda.synchronize(runner.device)
    grand = sum(sum(v) for v in times.values()) or 1.0
    rows = [{"layer": name, "ms_per_run": sum(ms) / runs, "share": sum(ms) / grand}
            for name, ms in times.items()]
    return sorted(rows, key=lambda r: -r["ms_per_run"])


def damage_report(run: str | os.PathLike, precisions: Sequence[str] = ("fp32", "fp16", "int8"),
                  split: str = "test", batches: Sequence[int] = (1, 8, 32),
                  within_points: float = 1.0, seconds: float = 0.3,
                  home: str | os.PathLike | None = None) -> dict[str, Any]:
    """For a run (or an imported model): the variants (made where missing), their per-class
    damage against fp32, and the accuracy/latency table; saved as exports/damage.json."""
    from engine.state.workspace import atomic_write_json
    from trt.byo import evaluation_dataset
    from trt.layout import built_engines, damage_path, onnx_path, variant_path
    from trt.variants import make_variants

    fp32 = onnx_path(run)
    report_path = fp32.with_name("model.onnx.json")
    if not report_path.exists():
        from trt.onnx_export import export_onnx

        export_onnx(run, fp32, home=home)
    export = json.loads(report_path.read_text())
    dataset = evaluation_dataset(run, home)
    precisions = ["fp32", *[p for p in precisions if p != "fp32"]]
    missing = [p for p in precisions if not variant_path(fp32, p).exists()]
    if missing:
        make_variants(fp32, dataset, precisions=precisions, split=split, home=home)
    paths = {p: str(variant_path(fp32, p)) for p in precisions}
    damage = variant_damage(paths, dataset, export["classes"], split, home)
    accuracy = {p: v["accuracy"] for p, v in damage["variants"].items()}
    engines = {e.stem: str(e) for e in built_engines(run) if e.stem in paths}
    latency = variant_latency(paths, batches, seconds, export["input"]["shape"][1:], engines)
    out = damage | {"within_points": within_points,
                    "accuracy_latency": accuracy_latency(latency, accuracy, within_points)}
    atomic_write_json(damage_path(run), out)
    return out


def format_damage(report: dict[str, Any], worst: int = 5) -> str:
    """The damage report as text tables (the CLI's output)."""
    lines = [f"{'variant':<8} {'accuracy':>9} {'vs fp32':>8}  worst classes"]
    for p, v in report["variants"].items():
        hurt = [f"{r['class']} {r['delta_points']:+.1f}" for r in v["damage"][:worst]
                if r["delta_points"] < 0]
        lines.append(f"{p:<8} {100 * v['accuracy']:8.2f}% {v['delta_points']:+7.2f}  "
                     + (", ".join(hurt) or "none hurt"))
    lines += ["", f"{'variant':<8} {'backend':<16} {'batch':>5} {'p50 ms':>8} {'images/s':>10} "
                  f"{'accuracy':>9}"]
    for r in report["accuracy_latency"]:
        mark = f"  <- fastest within {report['within_points']:g} points" if r["best"] else ""
        lines.append(f"{r['variant']:<8} {r['backend']:<16} {r['batch']:>5} {r['p50_ms']:8.3f} "
                     f"{r['images_per_s']:10,.0f} {100 * r['accuracy']:8.2f}%{mark}")
    return "\n".join(lines)
