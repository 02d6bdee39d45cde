"""Running a model: ONNX Runtime on the CPU, a TensorRT engine on a GPU, or the checkpoint's
own network in PyTorch (where a GPU has PyTorch but no TensorRT library).

The runners take a float32 N x C x H x W batch (the normalized network input) and return
float32 logits. TensorRT buffers are torch CUDA tensors, so TensorRT and PyTorch share one CUDA
context and stream machinery (no PyCUDA).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


class NeedsGPU(RuntimeError):
    """The TensorRT runtime was asked for on a machine that cannot run it."""

    def __init__(self, why: str) -> None:
        super().__init__(f"TensorRT inference needs an NVIDIA GPU: {why}")


def ort_session_options(threads: int | None = None, level: str = "extended"):
    """ONNX Runtime options for small models: graph optimizations at `level` ("extended" or
    "all": "all" adds the NCHWc layout transforms of convolutions), a sequential executor,
    and as many intra-op threads as there are cores."""
    import onnxruntime as ort

    from engine.threads import process_threads  # the dashboard's 1, a worker's share

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, ORT_LEVELS[level])
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads or process_threads() or (os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return so


ORT_LEVELS = {"extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
PROBE_RUNS = 5  # timed batch-1 calls per level, in turns, after two warm-ups each
# "all" is kept only when clearly faster: for a model where the two are close (LeNet) a coin
# flip could cost up to 14% at batch 256.
ALL_MUST_WIN = 0.9


def probe_input(session) -> dict[str, np.ndarray] | None:
    """Zeros for each input (symbolic dimensions 1), or None where a type is not a number."""
    feeds = {}
    for inp in session.get_inputs():
        dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
                 "tensor(double)": np.float64, "tensor(int64)": np.int64,
                 "tensor(int32)": np.int32, "tensor(uint8)": np.uint8}.get(inp.type)
        if dtype is None:
            return None
        feeds[inp.name] = np.zeros([d if isinstance(d, int) and d > 0 else 1
                                    for d in inp.shape], dtype)
    return feeds


def probe_s(sessions: dict[str, Any], feeds: dict[str, np.ndarray],
            runs: int = PROBE_RUNS) -> dict[str, float]:
    """Each session's fastest of `runs` calls in seconds, timed in turns (a machine getting
    busier or quieter weighs on all alike) after two warm-up calls each (the first calls
    size ONNX Runtime's arenas and wake its threads)."""
    import time

    for session in sessions.values():
        for _ in range(2):
            session.run(None, feeds)
    best = dict.fromkeys(sessions, float("inf"))
    for _ in range(runs):
        for name, session in sessions.items():
            t = time.perf_counter()
            session.run(None, feeds)
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def fastest_cpu_session(source: str | bytes, threads: int | None = None):
    """(session, level) of the faster optimization level for this model on this CPU.

    Neither level wins everywhere (onnxruntime 1.32, 2 vCPUs, 2026-12-07, bench/ort_levels.py):
    "all" ran ResNet-18 3.8-4.9x faster at 32x32 and 1.4-1.8x at 224x224, while for LeNet the
    two trade places between runs (0.86-1.25x). So both sessions are built and timed on a
    batch-1 call, and "all" is kept where it is clearly faster; where the model cannot be
    probed (an input that is not a tensor of numbers, or a failing call) "extended" is kept."""
    import onnxruntime as ort

    cpu = [ORT_PROVIDERS["cpu"]]
    extended = ort.InferenceSession(source, sess_options=ort_session_options(threads),
                                    providers=cpu)
    feeds = probe_input(extended)
    if feeds is None:
        return extended, "extended"
    try:
        full = ort.InferenceSession(source, sess_options=ort_session_options(threads, "all"),
                                    providers=cpu)
        times = probe_s({"extended": extended, "all": full}, feeds)
    except Exception:  # noqa: BLE001 - ONNX Runtime's errors share no base class
        return extended, "extended"
    if times["all"] < ALL_MUST_WIN * times["extended"]:
        return full, "all"
    return extended, "extended"


ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def ort_provider_missing(provider: str) -> str | None:
    """Why ONNX Runtime cannot use this execution provider here ("cpu" or "cuda"), or None."""
    import onnxruntime as ort

    name = ORT_PROVIDERS[provider]
    if name in ort.get_available_providers():
        return None
    return (f"{name} not installed (onnxruntime {ort.__version__} offers "
            f"{', '.join(ort.get_available_providers())}; onnxruntime-gpu has CUDA)")


class OnnxRunner:
    """An ONNX model (path or bytes) on ONNX Runtime: the CPU execution provider (at the faster
    optimization level for the model, `level`), or the CUDA one where onnxruntime-gpu is
    installed (provider="cuda")."""

    backend = "onnxruntime-cpu"

    def __init__(self, onnx_model: str | os.PathLike | bytes, threads: int | None = None,
                 provider: str = "cpu") -> None:
        import onnxruntime as ort

        if provider not in ORT_PROVIDERS:
            raise ValueError(f"unknown ONNX Runtime provider {provider!r}: use cpu or cuda")
        missing = ort_provider_missing(provider)
        if missing:
            raise RuntimeError(missing)
        source = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
        self.backend = f"onnxruntime-{provider}"
        if provider == "cpu":
            self.session, self.level = fastest_cpu_session(source, threads)
        else:
            self.level = "extended"
            self.session = ort.InferenceSession(
                source, sess_options=ort_session_options(threads),
                providers=[ORT_PROVIDERS[provider]])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: x})[0]


class TorchRunner:
    """A checkpoint's network in PyTorch (eager, inference mode) on `device`: "auto" is the
    first GPU where CUDA is available, else the CPU. The answers are the exported model's
    (the bundle's ONNX is this network, traced); on a GPU without a TensorRT library it is
    what lets a server batch on the GPU. Calls come from one thread (the server's batcher)."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "auto") -> None:
        from engine.inference.predictor import Predictor
        from engine.training.trainer import resolve_device  # a ValueError naming what is wrong

        self.predictor = Predictor(checkpoint, str(resolve_device(device)))
        self.device = self.predictor.device
        self.backend = f"pytorch-{self.device.type}"

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            return self.predictor.model(x).float().cpu().numpy()


def _require_gpu(device: str) -> None:
    """NeedsGPU with the reason unless a TensorRT engine can run on `device` here: CUDA, a
    TensorRT library, and (for TensorRT-RTX) a GPU its default engines are built for."""
    from trt.library import NoTensorRT, tensorrt_module

    try:
        import torch
    except ImportError:
        raise NeedsGPU("PyTorch is not installed, and it provides the CUDA buffers") from None
    if not torch.cuda.is_available():
        raise NeedsGPU("CUDA is not available on this machine "
                       "(use the ONNX model with ONNX Runtime instead)")
    if torch.device(device).type != "cuda":
        raise NeedsGPU(f"device {device!r} is not a CUDA device")
    try:
        lib = tensorrt_module()
    except NoTensorRT as e:
        raise NeedsGPU(str(e)) from None
    index = cuda_device(device).index
    if index >= torch.cuda.device_count():
        raise NeedsGPU(f"device {device!r} does not exist: this machine has "
                       f"{torch.cuda.device_count()} GPU(s)")
    why = unsupported_gpu(lib.__name__, torch.cuda.get_device_name(index),
                          tuple(torch.cuda.get_device_capability(index)))
    if why:
        raise NeedsGPU(why)


def tensorrt_unusable_reason(device: str = "cuda:0") -> str | None:
    """Why TensorRT engines cannot run on `device` here (no CUDA, no library, a GPU the library
    does not support), or None when they can."""
    try:
        _require_gpu(device)
    except NeedsGPU as e:
        return str(e)
    return None


# Compute capabilities that TensorRT-RTX's engines run on as this project builds them (the
# library's default targets, within its support matrix: Ampere 8.6, Ada 8.9, Blackwell 12.x).
# Turing (7.5) is supported only by engines built for it alone, which the builder does not
# ask for; data-centre parts such as the A100 (8.0) and H100/H200 (9.0) need the data-centre
# `tensorrt` package instead.
RTX_CAPABILITIES = ((8, 6), (8, 9), (12, 0), (12, 1))


def unsupported_gpu(library: str, gpu: str, capability: tuple[int, int]) -> str | None:
    """Why `library`'s engines cannot run on this GPU, or None where they can."""
    if library != "tensorrt_rtx" or tuple(capability) in RTX_CAPABILITIES:
        return None
    cc = f"{capability[0]}.{capability[1]}"
    return (f"TensorRT-RTX engines run on compute capability "
            f"{', '.join(f'{a}.{b}' for a, b in RTX_CAPABILITIES)}, not {cc} ({gpu}): use "
            "the data-centre `tensorrt` package on this GPU, or ONNX Runtime")


def cuda_device(device: str):
    """The torch.device with an index: "cuda" means the current CUDA device. set_device() and
    stream constructors on torch 2.11 reject an index-less CUDA device with ValueError."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        raise NeedsGPU(f"device {device!r} is not a CUDA device")
    return dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())


# TensorRT requires every I/O tensor's address to be 256-byte aligned.
ALIGNMENT = 256


def aligned(tensor):
    """The contiguous tensor, or a copy of it at a 256-byte aligned address where it is not
    (a view at an offset into a larger tensor, such as batch[1:])."""
    if tensor.data_ptr() % ALIGNMENT == 0:
        return tensor
    copy = aligned_empty(tuple(tensor.shape), tensor.dtype, tensor.device)
    copy.copy_(tensor)
    return copy


def aligned_empty(shape: tuple[int, ...], dtype, device):
    """torch.empty at a 256-byte aligned address (CUDA's caching allocator gives one; the
    CPU's 64-byte alignment is met by starting a little into a larger buffer)."""
    import math

    import torch

    tensor = torch.empty(shape, dtype=dtype, device=device)
    if tensor.data_ptr() % ALIGNMENT == 0:
        return tensor
    size = tensor.element_size()
    numel = math.prod(shape)
    buffer = torch.empty(numel + ALIGNMENT // size, dtype=dtype, device=device)
    start = (-buffer.data_ptr() % ALIGNMENT) // size
    return buffer[start:start + numel].view(shape)


def check_batch(batch: int, profile_min: int, profile_max: int) -> None:
    """A clear error for a batch the engine's optimization profile does not cover."""
    if batch > profile_max:
        raise ValueError(f"a batch of {batch} images is over this engine's maximum of "
                         f"{profile_max} (its build's max_batch): split the batch or rebuild "
                         "the engine with a larger max_batch")
    if batch < profile_min:
        raise ValueError(f"a batch of {batch} images is under this engine's minimum of "
                         f"{profile_min} (its build's min_batch)")


def bind(context, input_name: str, output_name: str, x, out) -> None:
    """Set the input shape and both tensor addresses, checking what TensorRT answers (it
    returns False instead of raising)."""
    if not context.set_input_shape(input_name, tuple(x.shape)):
        raise RuntimeError(f"TensorRT refused input shape {tuple(x.shape)} for {input_name!r}")
    for name, t in ((input_name, x), (output_name, out)):
        if not context.set_tensor_address(name, t.data_ptr()):
            raise RuntimeError(f"TensorRT refused the address of {name!r} "
                               f"({t.data_ptr():#x}; it must be {ALIGNMENT}-byte aligned)")


def deserialize_error(library: str, engine_path: str | os.PathLike, gpu: str,
                      capability: tuple[int, int], messages: list[str]) -> str:
    """Why an engine did not load: the library's own words, and the likely cause."""
    from trt.library import unique_messages

    cc = f"{capability[0]}.{capability[1]}"
    lines = [f"{library} could not load {Path(engine_path).name} on {gpu} (compute capability "
             f"{cc})"]
    unsupported = unsupported_gpu(library, gpu, capability)
    if unsupported:
        lines.append(unsupported)
    else:
        lines.append("an engine runs only with the library version and on the GPU family it "
                     "was built for: rebuild it here")
    lines += [f"  {m}" for m in unique_messages(messages)]
    return "\n".join(lines)


def profile_batches(engine, input_name: str) -> tuple[int, int]:
    """The smallest and largest batch the engine takes: its first optimization profile's
    (the builder makes one), or the fixed batch of an engine built without a profile."""
    if getattr(engine, "num_optimization_profiles", 0):
        low, _, high = engine.get_tensor_profile_shape(input_name, 0)
        return int(low[0]), int(high[0])
    fixed = int(engine.get_tensor_shape(input_name)[0])
    return fixed, fixed


class TensorRTRunner:
    """A deserialized engine with an execution context, run on a torch CUDA stream.

    run() copies a numpy batch in and the logits out; run_tensor() keeps everything on the GPU.
    With cuda_graph=True, batch-1 calls replay a captured CUDA graph (captured after one
    warm-up call), which removes the per-launch CPU overhead that dominates tiny batches.
    """

    backend = "tensorrt"

    def __init__(self, engine_path: str | os.PathLike, device: str = "cuda:0",
                 cuda_graph: bool = False) -> None:
        _require_gpu(device)
        import torch

        from trt.library import captured_messages, logger, tensorrt_module

        self._trt = lib = tensorrt_module()
        self.device = cuda_device(device)
        torch.cuda.set_device(self.device)
        self.runtime = lib.Runtime(logger())
        with captured_messages() as messages:
            self.engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise RuntimeError(deserialize_error(
                lib.__name__, engine_path, torch.cuda.get_device_name(self.device),
                torch.cuda.get_device_capability(self.device), messages))
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = lib.TensorIOMode.INPUT
        self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == mode)
        self.output_name = next(n for n in names if self.engine.get_tensor_mode(n) != mode)
        self.min_batch, self.max_batch = profile_batches(self.engine, self.input_name)
        self.stream = torch.cuda.Stream(device=self.device)
        self.cuda_graph = cuda_graph
        self._graph: Any = None
        self._graph_io: tuple[Any, Any] | None = None

    def _torch_dtype(self, name: str):
        import torch

        dt = self._trt.DataType
        table = {dt.FLOAT: torch.float32, dt.HALF: torch.float16, dt.INT32: torch.int32,
                 dt.INT8: torch.int8, dt.BOOL: torch.bool}
        return table[self.engine.get_tensor_dtype(name)]

    def _enqueue(self, x, out) -> None:
        bind(self.context, self.input_name, self.output_name, x, out)
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")

    def _output_for(self, x):
        if not self.context.set_input_shape(self.input_name, tuple(x.shape)):
            raise RuntimeError(f"TensorRT refused input shape {tuple(x.shape)}")
        shape = tuple(self.context.get_tensor_shape(self.output_name))
        return aligned_empty(shape, self._torch_dtype(self.output_name), self.device)

    def run_tensor(self, x):
        """Logits for a float32 CUDA tensor (N x C x H x W), computed on this runner's stream.
        ValueError for a batch outside the engine's profile (run() splits large batches)."""
        import torch

        check_batch(int(x.shape[0]), self.min_batch, self.max_batch)
        x = aligned(x.to(self.device, self._torch_dtype(self.input_name)).contiguous())
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        if self.cuda_graph and x.shape[0] == 1:
            out = self._replay(x)
        else:
            out = self._output_for(x)
            with torch.cuda.stream(self.stream):
                self._enqueue(x, out)
        torch.cuda.current_stream(self.device).wait_stream(self.stream)
        return out

    def _replay(self, x):
        import torch

        if self._graph is None:
            static_in = aligned_empty(tuple(x.shape), x.dtype, x.device)
            static_out = self._output_for(static_in)
            with torch.cuda.stream(self.stream):
                self._enqueue(static_in, static_out)  # warm-up: TensorRT sets itself up here
            self.stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                self._enqueue(static_in, static_out)
            self._graph, self._graph_io = graph, (static_in, static_out)
        static_in, static_out = self._graph_io
        with torch.cuda.stream(self.stream):
            static_in.copy_(x)
            self._graph.replay()
            out = static_out.clone()
        # Allocated on this runner's stream but used (and freed) on the caller's: tell the
        # caching allocator, or it may hand the memory out again while still in use.
        out.record_stream(torch.cuda.current_stream(self.device))
        return out

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        batch = np.ascontiguousarray(batch, dtype=np.float32)
        parts = []
        for start in range(0, max(len(batch), 1), self.max_batch):  # the profile's maximum
            x = torch.from_numpy(batch[start:start + self.max_batch]).to(self.device)
            parts.append(self.run_tensor(x).float().cpu().numpy())
        return np.concatenate(parts) if len(parts) > 1 else parts[0]
