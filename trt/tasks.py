"""The Deploy page's steps as job tasks: each runs in a worker process, never in Streamlit.

A task is `fn(params, progress, home) -> result dict`; params name the trained job whose run
directory holds everything under exports/: model.onnx and its variants, engines/, bench.json
and bundle.zip. The page reads those files back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.state.runs import job_dir
from engine.state.workspace import atomic_write_json, studio_home
from trt import layout

Progress = Callable[[float, str], None]


def export(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """ONNX export checked against PyTorch, then the precision variants with their accuracy."""
    from trt.onnx_export import export_onnx
    from trt.variants import make_variants

    run_dir = job_dir(params["job"], home)
    fp32 = layout.onnx_path(run_dir)
    progress(0.02, "exporting to ONNX")
    report = export_onnx(run_dir, fp32, home=home)
    precisions = params.get("precisions") or list(layout.PRECISIONS)
    dataset = layout.read_run_config(run_dir)["dataset"]
    variants = make_variants(fp32, dataset, precisions=precisions, home=home,
                             progress=lambda f, m: progress(0.2 + 0.8 * f, m))
    return {"export": report["check"], "variants": variants["variants"]}


def build(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """A TensorRT engine per exported variant; the builder's refusals are kept with its words."""
    from trt.builder import EngineBuildError, build_engine

    run_dir = job_dir(params["job"], home)
    fp32 = layout.onnx_path(run_dir)
    if not fp32.exists():
        raise FileNotFoundError("export the model to ONNX first")
    precisions = params.get("precisions") or list(layout.PRECISIONS)
    results: dict[str, Any] = {}
    for i, precision in enumerate(precisions):
        onnx = layout.variant_path(fp32, precision)
        if not onnx.exists():
            results[precision] = {"status": "skipped", "reason": f"no {precision} variant"}
            continue
        span = (i / len(precisions), 1 / len(precisions))
        try:
            meta = build_engine(
                onnx, layout.engine_path(run_dir, precision),
                min_batch=int(params.get("min_batch", 1)),
                opt_batch=int(params.get("opt_batch", 8)),
                max_batch=int(params.get("max_batch", 256)),
                workspace_mb=int(params.get("workspace_mb", 1024)),
                timing_cache=studio_home(home) / "trt-timing.cache",
                progress=lambda f, m, p=precision, s=span: progress(s[0] + s[1] * f, f"{p}: {m}"))
            results[precision] = {"status": "built", **meta}
        except EngineBuildError as e:
            results[precision] = {"status": "refused", "reason": str(e),
                                  "messages": e.messages}
    atomic_write_json(layout.engines_report_path(run_dir), results)
    return {"engines": {p: r["status"] for p, r in results.items()}}


def bench(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    from trt.bench import ROUNDS, backends_to_run, run_bench

    batches = tuple(params.get("batches") or (1, 8, 64, 256))
    total = max(1, len(batches) * len(backends_to_run()) * ROUNDS)
    done = {"n": 0}

    def step(message: str) -> None:
        done["n"] += 1
        progress(min(0.99, done["n"] / total), message)

    results = run_bench(job_dir(params["job"], home), batches=batches,
                        seconds=float(params.get("seconds", 1.0)), progress=step)
    atomic_write_json(layout.bench_path(job_dir(params["job"], home)), results)
    return {"ratios": results["ratios"]}


def bundle(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    from trt.bundle import make_bundle

    run_dir = job_dir(params["job"], home)
    engines = [layout.engine_path(run_dir, p) for p in params.get("engines") or []]
    progress(0.1, "writing the bundle")
    r = make_bundle(run_dir, layout.bundle_path(run_dir),
                    variants=params.get("variants") or ["fp32"],
                    engines=[e for e in engines if e.exists()], home=home)
    return {"bundle": r["bundle"], "size_bytes": r["size_bytes"], "files": r["files"]}


def damage(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """Per-class damage of each variant against fp32, and accuracy vs latency (issue 18)."""
    from trt.damage import damage_report

    progress(0.05, "variants, per-class damage and latency")
    r = damage_report(job_dir(params["job"], home),
                      precisions=params.get("precisions") or ["fp32", "fp16", "int8"],
                      batches=tuple(params.get("batches") or (1, 8, 32)),
                      within_points=float(params.get("within", 1.0)), home=home)
    return {"accuracy": {p: v["accuracy"] for p, v in r["variants"].items()}}


TASKS = {"trt.export": export, "trt.build": build, "trt.bench": bench, "trt.bundle": bundle,
         "trt.damage": damage}
