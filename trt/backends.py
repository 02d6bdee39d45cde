"""ONNX Runtime and TensorRT as classify backends (engine.inference.classify's registry).

The dashboard calls register(); engine never imports trt. Both backends read a trained job's
exports/ (written by the trt.export and trt.build tasks) and take the same prepared uint8
N x H x W x C batches as the PyTorch backend, normalized by the preprocessing contract.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.images.contract import Contract
from trt.layout import built_engines, exports_dir, onnx_path, sidecar, variant_path

ONNX = "onnxruntime-cpu"
TENSORRT = "tensorrt"


def export_report(checkpoint: str | os.PathLike) -> dict[str, Any] | None:
    """The export's report (classes, preprocessing, source checkpoint), or None before one."""
    path = sidecar(onnx_path(checkpoint))
    return json.loads(path.read_text()) if path.exists() else None


def _checkpoint_mismatch(checkpoint: str | os.PathLike, report: dict[str, Any]) -> str | None:
    # The export is of one checkpoint; another one's answers would silently differ.
    from engine.inference.predictor import resolve_checkpoint

    chosen = resolve_checkpoint(checkpoint).name
    exported = Path(report["checkpoint"]).name
    if chosen != exported:
        return (f"the ONNX export is of {exported}, not {chosen}: choose {exported} "
                "or export again")
    return None


def unavailable_reason(kind: str, checkpoint: str | os.PathLike) -> str | None:
    """Why a backend cannot classify with this checkpoint here, or None if it can. Backends
    that are not this module's are left to the registry (None)."""
    if kind not in (ONNX, TENSORRT):
        return None
    report = export_report(checkpoint)
    if report is None:
        return "no ONNX export for this job yet (Deploy page: Export)"
    mismatch = _checkpoint_mismatch(checkpoint, report)
    if mismatch:
        return mismatch
    if kind == ONNX:
        return None
    if not built_engines(checkpoint):
        return "no TensorRT engine built for this job yet (Deploy page: Build engines)"
    from trt.runtime import tensorrt_unusable_reason

    # No CUDA, no library, or a GPU the library's engines do not run on (TensorRT-RTX on a
    # data-centre GPU): the Classify page then does not offer TensorRT, and says why.
    return tensorrt_unusable_reason("cuda:0")


def cache_key(kind: str, checkpoint: str | os.PathLike) -> dict[str, Any]:
    """Extra get_backend() arguments that change when the job's exports do, so a re-export
    or rebuild is picked up instead of a cached runner of the old files."""
    if kind not in (ONNX, TENSORRT):
        return {}
    files = [onnx_path(checkpoint), *built_engines(checkpoint)]
    return {"stamp": max((f.stat().st_mtime_ns for f in files if f.exists()), default=0)}


def checkpoint_temperature(checkpoint: str | os.PathLike) -> float:
    """The temperature in a checkpoint's contract (1.0 for one never calibrated)."""
    from engine.inference.predictor import resolve_checkpoint
    from engine.training.checkpoint import load_checkpoint

    state = load_checkpoint(resolve_checkpoint(checkpoint))
    return Contract.from_dict(state["preprocess"], state.get("input_shape")).temperature


class _ExportedBackend:
    """Shared by both: the contract comes from the export report, not the checkpoint."""

    name = ""
    runner: Any

    def __init__(self, checkpoint: str | os.PathLike, stamp: int = 0) -> None:
        report = export_report(checkpoint)
        if report is None:
            raise FileNotFoundError(f"no ONNX export in {exports_dir(checkpoint)}: export first")
        mismatch = _checkpoint_mismatch(checkpoint, report)
        if mismatch:
            raise ValueError(mismatch)
        self.classes: list[str] = list(report["classes"])
        contract = Contract.from_dict(report["preprocess"], report["input"]["shape"][1:])
        # The graph outputs logits; the temperature is the checkpoint's, which calibrating
        # after the export changed (get_backend's cache follows the checkpoint's mtime).
        self.contract = replace(contract, temperature=checkpoint_temperature(checkpoint))

    def probabilities(self, batch_nhwc_uint8: np.ndarray, calibrated: bool = True
                      ) -> np.ndarray:
        logits = self.runner.run(self.contract.normalize(batch_nhwc_uint8))
        return self.contract.probabilities(logits, calibrated)


class OnnxBackend(_ExportedBackend):
    """The job's exported ONNX graph (a precision variant) on ONNX Runtime, CPU."""

    def __init__(self, checkpoint: str | os.PathLike, precision: str = "fp32",
                 stamp: int = 0) -> None:
        from trt.runtime import OnnxRunner

        super().__init__(checkpoint, stamp)
        path = variant_path(onnx_path(checkpoint), precision)
        if not path.exists():
            raise FileNotFoundError(f"no {precision} variant at {path}")
        self.name = f"{ONNX}-{precision}"
        self.runner = OnnxRunner(path)


class TensorRTBackend(_ExportedBackend):
    """The job's TensorRT engine (fp32 first) on a GPU; NeedsGPU without one."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cuda:0",
                 stamp: int = 0) -> None:
        from trt.runtime import TensorRTRunner, _require_gpu

        super().__init__(checkpoint, stamp)
        _require_gpu(device)  # before looking for engines: the GPU is the first thing missing
        engines = built_engines(checkpoint)
        if not engines:
            raise FileNotFoundError("no TensorRT engine built for this job yet")
        self.name = f"{TENSORRT}-{engines[0].stem}"
        self.runner = TensorRTRunner(engines[0], device=device)


def register() -> None:
    """Offer ONNX Runtime and TensorRT wherever engine.inference.classify's backends are listed."""
    from engine.inference.backends import register_backend

    register_backend(ONNX, OnnxBackend, "ONNX Runtime (CPU)")
    register_backend(TENSORRT, TensorRTBackend, "TensorRT (NVIDIA GPU)")
