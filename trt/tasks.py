"""The Deploy page's steps as job tasks: each runs in a worker process, never in Streamlit.

A task is `fn(params, progress, home) -> result dict`; params name the trained job whose run
directory holds everything under exports/: model.onnx and its variants, engines/, bench.json
and bundle.zip. The page reads those files back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.jobs.paths import job_dir
from engine.workspace import atomic_write_json, studio_home

Progress = Callable[[float, str], None]


def exports_dir(job_id: str, home: str | os.PathLike | None = None) -> Path:
    return job_dir(job_id, home) / "exports"


def _dataset(run_dir: Path) -> str:
    return json.loads((run_dir / "config.json").read_text())["dataset"]


def export(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """ONNX export checked against PyTorch, then the precision variants with their accuracy."""
    from trt.onnx_export import export_onnx
    from trt.variants import make_variants

    run_dir = job_dir(params["job"], home)
    fp32 = exports_dir(params["job"], home) / "model.onnx"
    progress(0.02, "exporting to ONNX")
    report = export_onnx(run_dir, fp32, home=home)
    precisions = params.get("precisions") or ["fp32", "fp16", "int8"]
    variants = make_variants(fp32, _dataset(run_dir), precisions=precisions, home=home,
                             progress=lambda f, m: progress(0.2 + 0.8 * f, m))
    return {"export": report["check"], "variants": variants["variants"]}


def build(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """A TensorRT engine per exported variant; the builder's refusals are kept with its words."""
    from trt.builder import EngineBuildError, build_engine
    from trt.variants import variant_path

    out = exports_dir(params["job"], home)
    fp32 = out / "model.onnx"
    if not fp32.exists():
        raise FileNotFoundError("export the model to ONNX first")
    precisions = params.get("precisions") or ["fp32", "fp16", "int8"]
    results: dict[str, Any] = {}
    for i, precision in enumerate(precisions):
        onnx = variant_path(fp32, precision)
        if not onnx.exists():
            results[precision] = {"status": "skipped", "reason": f"no {precision} variant"}
            continue
        span = (i / len(precisions), 1 / len(precisions))
        try:
            meta = build_engine(
                onnx, out / "engines" / f"{precision}.engine",
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
    atomic_write_json(out / "engines.json", results)
    return {"engines": {p: r["status"] for p, r in results.items()}}


def bench(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    from trt.bench import ROUNDS, run_bench

    batches = tuple(params.get("batches") or (1, 8, 64, 256))
    import torch

    backends = 6 if torch.cuda.is_available() else 2  # CPU pair, plus the GPU ones
    total = max(1, len(batches) * backends * ROUNDS)
    done = {"n": 0}

    def step(message: str) -> None:
        done["n"] += 1
        progress(min(0.99, done["n"] / total), message)

    results = run_bench(job_dir(params["job"], home), batches=batches,
                        seconds=float(params.get("seconds", 1.0)), progress=step)
    atomic_write_json(exports_dir(params["job"], home) / "bench.json", results)
    return {"ratios": results["ratios"]}


def bundle(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    from trt.bundle import make_bundle

    out = exports_dir(params["job"], home)
    engines = [out / "engines" / f"{p}.engine" for p in params.get("engines") or []]
    progress(0.1, "writing the bundle")
    r = make_bundle(job_dir(params["job"], home), out / "bundle.zip",
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
