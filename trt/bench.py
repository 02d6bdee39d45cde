"""Inference latency and throughput of one trained model, every backend in the same run.

Each cell (backend x batch) runs warm-up calls, then repeats for about `seconds` (at least
`min_reps` times) and reports p50/p90/p99 latency in ms and images/s. The CPU rows (PyTorch
eager under inference_mode, ONNX Runtime) always run; the GPU rows (PyTorch eager CUDA, CUDA
graphs, torch.compile, TensorRT) run where CUDA is, and TensorRT where a library is installed,
otherwise they are listed as skipped with the reason.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.inference.predictor import Predictor
from trt.bench_report import noise_warnings, summary

DEFAULT_BATCHES = (1, 8, 64, 256)
WARMUP = 10
ROUNDS = 5


def sample_calls(fn: Callable[[], Any], seconds: float = 1.0, min_reps: int = 20,
                 sync: Callable[[], None] | None = None) -> list[float]:
    """Seconds taken by each of repeated calls to fn, after warm-up."""
    for _ in range(WARMUP):
        fn()
    if sync:
        sync()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < min_reps or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return times


def latency_stats(times: list[float]) -> dict[str, float]:
    """Latency percentiles and mean (ms) of call durations in seconds."""
    ms = np.asarray(times) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()),
            "reps": len(times)}


def _cpu_backends(predictor: Predictor, onnx_path: Path) -> dict[str, Callable]:
    from trt.runtime import OnnxRunner

    model = predictor.model.cpu().eval()
    runner = OnnxRunner(onnx_path)

    def eager(x: np.ndarray) -> Callable[[], Any]:
        t = torch.from_numpy(x)

        def call():
            with torch.inference_mode():
                return model(t)
        return call

    return {"pytorch-cpu": eager, "onnxruntime-cpu": lambda x: (lambda: runner.run(x))}


CPU_BACKENDS = ("pytorch-cpu", "onnxruntime-cpu")
GPU_BACKENDS = ("pytorch-cuda", "pytorch-cuda-graph", "torch-compile", "tensorrt",
                "tensorrt-cuda-graph")


def backends_to_run(gpu: bool | None = None) -> tuple[str, ...]:
    """The backends a benchmark measures here: the CPU pair, and the GPU ones with CUDA."""
    gpu = torch.cuda.is_available() if gpu is None else gpu
    return CPU_BACKENDS + (GPU_BACKENDS if gpu else ())


def _gpu_backends(predictor: Predictor, onnx_path: Path, workdir: Path, max_batch: int,
                  with_tensorrt: bool = True) -> tuple[dict[str, Callable], dict[str, str]]:
    import copy

    model = copy.deepcopy(predictor.model).cuda().eval()
    backends: dict[str, Callable] = {}
    skipped: dict[str, str] = {}

    def eager(x):
        t = torch.from_numpy(x).cuda()

        def call():
            with torch.inference_mode():
                return model(t)
        return call

    def graphed(x):
        static = torch.from_numpy(x).cuda()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(3):
                model(static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            model(static)
        return graph.replay

    compiled = None

    def compiled_call(x):
        nonlocal compiled
        if compiled is None:  # compiled once, inside measure()'s guard
            compiled = torch.compile(model)
        t = torch.from_numpy(x).cuda()

        def call():
            with torch.inference_mode():
                return compiled(t)
        return call

    backends.update({"pytorch-cuda": eager, "pytorch-cuda-graph": graphed,
                     "torch-compile": compiled_call})
    from trt.runtime import tensorrt_unusable_reason

    if not with_tensorrt:
        return backends, skipped
    why = tensorrt_unusable_reason()  # no library, or one whose engines cannot run here
    if why:
        skipped["tensorrt"] = why
        return backends, skipped
    try:
        from trt.builder import build_engine
        from trt.runtime import TensorRTRunner

        engine = workdir / "bench.engine"
        build_engine(onnx_path, engine, min_batch=1, opt_batch=min(64, max_batch),
                     max_batch=max_batch)
        runner = TensorRTRunner(engine)
        graph_runner = TensorRTRunner(engine, cuda_graph=True)

        def trt_call(r):
            def make(x):
                t = torch.from_numpy(x).cuda()
                return lambda: r.run_tensor(t)
            return make

        backends["tensorrt"] = trt_call(runner)
        backends["tensorrt-cuda-graph"] = trt_call(graph_runner)
    except Exception as e:  # no library, or it cannot build for this GPU
        skipped["tensorrt"] = _first_line(e)
    return backends, skipped


def measure(backends: dict[str, Callable], inputs: dict[int, np.ndarray], seconds: float,
            rounds: int, skipped: dict[str, str], sync: Callable[[], None] | None = None,
            progress: Callable[[str], None] | None = None) -> dict[tuple[str, int], list[float]]:
    """Call times of every backend at every batch, `rounds` rounds taking the backends in
    turn. A backend whose setup (CUDA graph capture) or warm-up (torch.compile) raises is
    dropped and listed in `skipped` with its error; the others are still measured."""
    calls: dict[tuple[str, int], Callable] = {}
    for name, make in backends.items():
        try:
            for b, x in inputs.items():
                calls[name, b] = make(x)
        except Exception as e:
            skipped[name] = _first_line(e)
            calls = {cell: c for cell, c in calls.items() if cell[0] != name}
    times: dict[tuple[str, int], list[float]] = {cell: [] for cell in calls}
    for r in range(rounds):
        for (name, batch), call in list(calls.items()):
            if name in skipped:
                continue
            if progress:
                progress(f"{name} batch {batch} (round {r + 1}/{rounds})")
            on_gpu = name not in ("pytorch-cpu", "onnxruntime-cpu")
            try:
                times[name, batch] += sample_calls(call, seconds / rounds, min_reps=5,
                                                   sync=sync if on_gpu else None)
            except Exception as e:
                skipped[name] = _first_line(e)
    return {cell: t for cell, t in times.items() if cell[0] not in skipped and t}


def _first_line(e: BaseException) -> str:
    return (f"{type(e).__name__}: {e}".splitlines() or [type(e).__name__])[0]


def run_bench(run_dir: str | os.PathLike, batches: tuple[int, ...] = DEFAULT_BATCHES,
              seconds: float = 1.0, gpu: bool | None = None,
              progress: Callable[[str], None] | None = None,
              rounds: int = ROUNDS, only: Collection[str] | None = None) -> dict[str, Any]:
    """Benchmark every available backend (or those named in `only`) at every batch size;
    returns the results dict.

    Each cell gets `seconds` in all, split over `rounds` that take the backends in turn, so
    a machine that is busier at one moment than another weighs on every backend alike."""
    from trt.onnx_export import onnx_bytes

    predictor = Predictor(run_dir)
    gpu = torch.cuda.is_available() if gpu is None else gpu
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="trt-bench-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        onnx_path.write_bytes(onnx_bytes(predictor.model, predictor.input_shape, 17))
        backends = _cpu_backends(predictor, onnx_path)
        sync = None
        if gpu:
            with_trt = only is None or any(n.startswith("tensorrt") for n in only)
            more, skipped = _gpu_backends(predictor, onnx_path, Path(tmp), max(batches),
                                          with_trt)
            backends.update(more)
            sync = torch.cuda.synchronize
        else:
            reason = "CUDA is not available on this machine"
            skipped = dict.fromkeys(GPU_BACKENDS, reason)
        if only is not None:
            backends = {n: make for n, make in backends.items() if n in only}
            skipped = {n: why for n, why in skipped.items() if n in only}
        rng = np.random.default_rng(0)
        inputs = {b: rng.standard_normal((b, *predictor.input_shape)).astype(np.float32)
                  for b in batches}
        times = measure(backends, inputs, seconds, rounds, skipped, sync, progress)
        for (name, batch), cell in times.items():
            stats = latency_stats(cell)
            stats["images_per_s"] = batch / (stats["mean_ms"] / 1e3)
            rows.append({"backend": name, "batch": batch, **stats})
    return {"model": str(predictor.path), "network": predictor.config.get("network"),
            "input_shape": list(predictor.input_shape), "batches": list(batches),
            "rows": rows, "skipped": skipped, "ratios": _ratios(rows),
            "summary": summary(rows), "noisy": noise_warnings(rows),
            "machine": _machine(gpu)}


def _ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Batch-1 median latency of each backend relative to PyTorch eager on the CPU."""
    base = next((r["p50_ms"] for r in rows if r["backend"] == "pytorch-cpu"
                 and r["batch"] == 1), None)
    if not base:
        return {}
    return {f"{r['backend']}_vs_pytorch-cpu_batch1_p50": r["p50_ms"] / base
            for r in rows if r["batch"] == 1 and r["backend"] != "pytorch-cpu"}


def _machine(gpu: bool) -> dict[str, Any]:
    import onnxruntime

    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "onnxruntime": onnxruntime.__version__}
    if gpu:
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        from trt.library import library_info

        info.update({"tensorrt_" + k: v for k, v in library_info().items()})
    except Exception:
        pass
    return info


def format_table(results: dict[str, Any]) -> str:
    """A markdown table of the results, plus the skipped backends and their reasons."""
    lines = ["| backend | batch | p50 ms | p90 ms | p99 ms | images/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in results["rows"]:
        lines.append(f"| {r['backend']} | {r['batch']} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f}"
                     f" | {r['p99_ms']:.3f} | {r['images_per_s']:,.0f} |")
    for sentence in summary(results["rows"]):
        lines.append(f"\n{sentence}.")
    for cell in noise_warnings(results["rows"]):
        lines.append(f"\nnoisy: {cell}; the machine was busy, run again for steady figures.")
    for name, why in results["skipped"].items():
        lines.append(f"\nskipped {name}: {why}")
    return "\n".join(lines)
