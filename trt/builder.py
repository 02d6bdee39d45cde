"""Building a TensorRT engine from an ONNX graph, strongly typed.

The precision lives in the graph (fp32, fp16, or int8 QDQ: see trt.variants), so the builder
sets no precision flags; that is the only way TensorRT 11 and TensorRT-RTX accept. The code uses
only the API `tensorrt` and `tensorrt_rtx` share, so the same call builds a data-centre engine
on a GPU machine or an RTX engine ahead of time on a machine with no GPU.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx

from engine.state.workspace import atomic_write_bytes, atomic_write_json, sha256_file
from trt.layout import sidecar
from trt.library import (
    captured_messages,
    library_info,
    logger,
    tensorrt_module,
    unique_messages,
)
from trt.variants import detect_precision

Progress = Callable[[float, str], None]


class EngineBuildError(RuntimeError):
    """TensorRT could not parse or build the graph; the message holds TensorRT's own words."""

    def __init__(self, what: str, messages: list[str]) -> None:
        self.messages = list(messages)
        detail = ("\n".join(f"  {m}" for m in unique_messages(messages))
                  or "  (no message from TensorRT)")
        super().__init__(f"{what}:\n{detail}")


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, *,
                 min_batch: int = 1, opt_batch: int = 8, max_batch: int = 256,
                 workspace_mb: int = 1024, timing_cache: str | os.PathLike | None = None,
                 progress: Progress | None = None) -> dict[str, Any]:
    """Build and save the engine, and save its metadata next to it (<engine>.json)."""
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise ValueError(f"batch profile must satisfy 1 <= min <= opt <= max, got "
                         f"{min_batch}/{opt_batch}/{max_batch}")
    lib = tensorrt_module()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    started = time.perf_counter()
    with captured_messages() as messages:
        builder = lib.Builder(logger())
        network = builder.create_network(
            1 << int(lib.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = lib.OnnxParser(network, logger())
        parsed = parser.parse(onnx_path.read_bytes())
        errors = [parser.get_error(i).desc() for i in range(parser.num_errors)]
        if not parsed or network.num_outputs == 0:
            if parsed:  # protobuf reads some garbage as an empty model
                errors.append(f"{onnx_path.name} parsed into a network with no outputs: it is "
                              "not an ONNX model")
            raise EngineBuildError(f"{lib.__name__} could not parse {onnx_path.name}",
                                   errors + messages)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(lib.MemoryPoolType.WORKSPACE, workspace_mb << 20)
        profile = _profile(builder, network, min_batch, opt_batch, max_batch)
        config.add_optimization_profile(profile)
        cache = _attach_timing_cache(config, timing_cache)
        monitor = _ProgressMonitor(lib, progress) if progress else None
        if monitor is not None:
            config.progress_monitor = monitor
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise EngineBuildError(f"{lib.__name__} could not build an engine from "
                                   f"{onnx_path.name}", list(messages))
        atomic_write_bytes(engine_path, bytes(plan))
        cache_info = _save_timing_cache(config, cache, messages)
        warned = unique_messages(list(messages))
    metadata = {
        **library_info(),
        "engine": str(engine_path),
        "onnx": str(onnx_path),
        "onnx_sha256": sha256_file(onnx_path),
        "precision": detect_precision(onnx_path),
        "profile": {"min_batch": min_batch, "opt_batch": opt_batch, "max_batch": max_batch},
        "workspace_mb": workspace_mb,
        "inputs": _tensors(network.get_input(i) for i in range(network.num_inputs)),
        "outputs": _tensors(network.get_output(i) for i in range(network.num_outputs)),
        "build_time_s": round(time.perf_counter() - started, 4),
        "engine_size_bytes": engine_path.stat().st_size,
        "timing_cache": cache_info,
        "warnings": warned,
    }
    atomic_write_json(sidecar(engine_path), metadata)
    if progress:
        progress(1.0, "engine built")
    return metadata


def _profile(builder, network, min_batch: int, opt_batch: int, max_batch: int):
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        rest = tuple(tensor.shape)[1:]
        if any(d < 0 for d in rest):
            raise EngineBuildError(f"input {tensor.name!r} has dynamic dimensions besides "
                                   f"the batch: {tuple(tensor.shape)}", [])
        profile.set_shape(tensor.name, (min_batch, *rest), (opt_batch, *rest),
                          (max_batch, *rest))
    return profile


def _tensors(tensors) -> list[dict[str, Any]]:
    return [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype.name} for t in tensors]


def _attach_timing_cache(config, path: str | os.PathLike | None) -> dict[str, Any] | None:
    """Load the cache file into the build where the library supports timing caches."""
    if path is None:
        return None
    path = Path(path)
    if not (hasattr(config, "create_timing_cache") and hasattr(config, "set_timing_cache")):
        return {"path": str(path), "supported": False}
    data = path.read_bytes() if path.exists() else b""
    with warnings.catch_warnings(record=True) as said:  # tensorrt_rtx: deprecated, no-op
        warnings.simplefilter("always", DeprecationWarning)
        cache = config.create_timing_cache(data)
        config.set_timing_cache(cache, False)
    return {"path": str(path), "supported": True, "loaded_bytes": len(data),
            "reused": bool(data), "cache": cache,
            "library_messages": unique_messages([str(w.message) for w in said])}


def _save_timing_cache(config, cache: dict[str, Any] | None, messages: list[str]
                       ) -> dict[str, Any] | None:
    """Write the cache back; 'reused' is true only if TensorRT accepted the loaded one
    (tensorrt_rtx accepts the calls but ignores timing caches, and says so)."""
    if cache is None or not cache["supported"]:
        return cache
    said = cache["library_messages"] + [m for m in messages if "timing cache" in m.lower()]
    cache["library_messages"] = unique_messages(said)
    cache["reused"] = cache["reused"] and not any(
        "no-op" in m or "will not be used" in m for m in said)
    live = cache.pop("cache")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        data = bytes(live.serialize())
    atomic_write_bytes(cache["path"], data)
    return cache | {"saved_bytes": len(data)}


class _ProgressMonitorBase:
    """Turns TensorRT's nested build phases into one fraction for a callback(fraction, msg)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.phases: dict[str, list[int]] = {}  # name -> [steps done, steps in all]
        self.order: list[str] = []
        self.last = 0.0  # reported fractions never go back

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        self.phases[phase_name] = [0, max(int(num_steps), 1)]
        self.order.append(phase_name)
        self._report(phase_name)

    def step_complete(self, phase_name: str, step: int) -> bool:
        if phase_name in self.phases:
            self.phases[phase_name][0] = int(step) + 1
        self._report(phase_name)
        return True  # keep building

    def phase_finish(self, phase_name: str) -> None:
        self.phases.pop(phase_name, None)
        if phase_name in self.order:
            self.order.remove(phase_name)

    def _report(self, phase_name: str) -> None:
        fraction, width = 0.0, 1.0
        for name in self.order:  # outermost first
            done, total = self.phases[name]
            fraction += width * min(done, total) / total
            width /= total
        self.last = max(self.last, min(fraction, 0.99))
        try:
            self.progress(self.last, phase_name)
        except Exception:  # a failing callback must not abort the build
            pass


def _ProgressMonitor(lib, progress: Progress):
    """An instance of a class deriving from the loaded library's IProgressMonitor."""

    class ProgressMonitor(_ProgressMonitorBase, lib.IProgressMonitor):
        def __init__(self, callback: Progress) -> None:
            lib.IProgressMonitor.__init__(self)
            _ProgressMonitorBase.__init__(self, callback)

    return ProgressMonitor(progress)


def onnx_input_shape(onnx_path: str | os.PathLike) -> list[int | str]:
    """The first input's shape, with symbolic dimensions by name (for messages)."""
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param or d.dim_value for d in dims]
