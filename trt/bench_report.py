"""Benchmark results in words a person reads: "ONNX Runtime (CPU) is 28x faster than PyTorch
(CPU) at batch 1", and a warning where a cell's figures are too noisy to trust. No torch here:
the Deploy page and the CLI read bench.json with it."""

from __future__ import annotations

from typing import Any

NOISE_RATIO = 5.0  # p99 beyond this many times p50: the machine was busy during the cell
BASELINE = "pytorch-cpu"

NAMES = {
    "pytorch-cpu": "PyTorch (CPU)",
    "onnxruntime-cpu": "ONNX Runtime (CPU)",
    "pytorch-cuda": "PyTorch (CUDA)",
    "pytorch-cuda-graph": "PyTorch with CUDA graphs",
    "torch-compile": "torch.compile (CUDA)",
    "tensorrt": "TensorRT",
    "tensorrt-cuda-graph": "TensorRT with CUDA graphs",
}


def backend_name(backend: str) -> str:
    return NAMES.get(backend, backend)


def _times(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"


def summary(rows: list[dict[str, Any]], batch: int = 1) -> list[str]:
    """One sentence per backend: how its median latency at `batch` compares with PyTorch on
    the CPU, measured in the same run."""
    base = next((r["p50_ms"] for r in rows if r["backend"] == BASELINE
                 and r["batch"] == batch), None)
    if not base:
        return []
    out = []
    for r in rows:
        if r["batch"] != batch or r["backend"] == BASELINE or not r.get("p50_ms"):
            continue
        ratio = r["p50_ms"] / base
        name, ref = backend_name(r["backend"]), backend_name(BASELINE)
        if 0.95 <= ratio <= 1.05:
            out.append(f"{name} is as fast as {ref} at batch {batch} "
                       f"({r['p50_ms']:.2f} ms vs {base:.2f} ms median)")
        elif ratio < 1:
            out.append(f"{name} is {_times(1 / ratio)} faster than {ref} at batch {batch} "
                       f"({r['p50_ms']:.2f} ms vs {base:.2f} ms median)")
        else:
            out.append(f"{name} is {_times(ratio)} slower than {ref} at batch {batch} "
                       f"({r['p50_ms']:.2f} ms vs {base:.2f} ms median)")
    return out


def noise_warnings(rows: list[dict[str, Any]], ratio: float = NOISE_RATIO) -> list[str]:
    """Cells whose slowest calls (p99) were more than `ratio` times their median: figures
    disturbed by other work on the machine."""
    out = []
    for r in rows:
        p50, p99 = r.get("p50_ms"), r.get("p99_ms")
        if p50 and p99 and p99 > ratio * p50:
            out.append(f"{backend_name(r['backend'])} at batch {r['batch']}: p99 {p99:.1f} ms "
                       f"is {p99 / p50:.0f}x its median {p50:.1f} ms")
    return out
