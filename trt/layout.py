"""Where a trained run's deployment files live: the one definition of the exports layout.

    <run>/config.json                      the training config (its dataset, network, ...)
    <run>/exports/model.onnx (+ .json)     the FP32 export and its check report
    <run>/exports/model-<p>.onnx (+ .json) precision variants; model-variants.json: accuracy
    <run>/exports/engines/<p>.engine (+ .json), engines.json   TensorRT engines and refusals
    <run>/exports/bench.json, bundle.zip   the benchmark and the bundle
    <run>/exports/damage.json              accuracy and latency per variant (trt.damage)
    <run>/exports/serve.json, serve.log    a running server's address and output (trt.serve)

A "run" argument may be the run directory or a checkpoint inside it (best.pt, last.pt,
checkpoints/epoch-N.pt).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")


def run_dir_of(path: str | os.PathLike) -> Path:
    """The run directory holding a checkpoint (or the directory itself)."""
    p = Path(path)
    if p.is_dir():
        return p
    return p.parent.parent if p.parent.name == "checkpoints" else p.parent


def exports_dir(run: str | os.PathLike) -> Path:
    return run_dir_of(run) / "exports"


def onnx_path(run: str | os.PathLike) -> Path:
    """The FP32 ONNX export."""
    return exports_dir(run) / "model.onnx"


def variant_path(fp32_path: str | os.PathLike, precision: str) -> Path:
    """model.onnx -> model.onnx (fp32), model-fp16.onnx, model-int8.onnx."""
    p = Path(fp32_path)
    return p if precision == "fp32" else p.with_name(f"{p.stem}-{precision}{p.suffix}")


def variants_report_path(fp32_path: str | os.PathLike) -> Path:
    p = Path(fp32_path)
    return p.with_name(f"{p.stem}-variants.json")


def engine_path(run: str | os.PathLike, precision: str) -> Path:
    return exports_dir(run) / "engines" / f"{precision}.engine"


def built_engines(run: str | os.PathLike) -> list[Path]:
    """The run's built engines, in precision order (fp32 first)."""
    return [e for e in (engine_path(run, p) for p in PRECISIONS) if e.exists()]


def engines_report_path(run: str | os.PathLike) -> Path:
    return exports_dir(run) / "engines.json"


def bench_path(run: str | os.PathLike) -> Path:
    return exports_dir(run) / "bench.json"


def bundle_path(run: str | os.PathLike) -> Path:
    return exports_dir(run) / "bundle.zip"


def damage_path(run: str | os.PathLike) -> Path:
    return exports_dir(run) / "damage.json"


def serve_state_path(run: str | os.PathLike) -> Path:
    return exports_dir(run) / "serve.json"


def serve_log_path(run: str | os.PathLike) -> Path:
    return exports_dir(run) / "serve.log"


def sidecar(path: str | os.PathLike) -> Path:
    """The JSON report that lives next to a model or engine file."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_run_config(run: str | os.PathLike) -> dict[str, Any]:
    """The run's training config; a one-line error where the folder is not a run."""
    from engine.state.runs import read_run_config as read

    return read(run_dir_of(run))


def exports_state(run: str | os.PathLike) -> dict[str, Any]:
    """Everything the deployment steps have written for a run (None where a step has not
    run): the Deploy page draws from this."""
    out = exports_dir(run)
    fp32 = onnx_path(run)
    bundle = bundle_path(run)
    return {
        "dir": out,
        "onnx": fp32 if fp32.exists() else None,
        "export": _json_or_none(sidecar(fp32)),
        "variants": _json_or_none(variants_report_path(fp32)),
        "engines": _json_or_none(engines_report_path(run)),
        "bench": _json_or_none(bench_path(run)),
        "bundle": bundle if bundle.exists() else None,
    }


def _json_or_none(path: Path) -> Any:
    """A report's content, or None where it is missing or half-written by a crash."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
