"""Running an exported model: ONNX Runtime on the CPU, or a TensorRT engine on a GPU.

Both runners take a float32 N x C x H x W batch (the normalized network input) and return
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


def ort_session_options(threads: int | None = None):
    """Options that make ONNX Runtime fast on small models: extended graph optimizations, a
    sequential executor, and as many intra-op threads as there are cores."""
    import onnxruntime as ort

    from engine.jobs.threads import process_threads  # the dashboard's 1, a worker's share

    so = ort.SessionOptions()
    # EXTENDED, not ALL: ALL adds NCHWc layout reorders that made LeNet 20-25% slower at every
    # batch size (1 to 256) on the CPU (bench/deploy_cpu.py).
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads or process_threads() or (os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return so


class OnnxRunner:
    """An ONNX model (path or bytes) on ONNX Runtime's CPU execution provider."""

    backend = "onnxruntime-cpu"

    def __init__(self, onnx_model: str | os.PathLike | bytes, threads: int | None = None) -> None:
        import onnxruntime as ort

        source = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
        self.session = ort.InferenceSession(source, sess_options=ort_session_options(threads),
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: x})[0]


def _require_gpu(device: str) -> None:
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
        tensorrt_module()
    except NoTensorRT as e:
        raise NeedsGPU(str(e)) from None


# Compute capabilities in TensorRT-RTX's support matrix (RTX-class GPUs); data-centre parts such
# as the A100 (8.0) and H100/H200 (9.0) need the data-centre `tensorrt` package instead.
RTX_CAPABILITIES = ((7, 5), (8, 6), (8, 9), (12, 0), (12, 1))


def deserialize_error(library: str, engine_path: str | os.PathLike, gpu: str,
                      capability: tuple[int, int], messages: list[str]) -> str:
    """Why an engine did not load: the library's own words, and the likely cause."""
    from trt.library import unique_messages

    cc = f"{capability[0]}.{capability[1]}"
    lines = [f"{library} could not load {Path(engine_path).name} on {gpu} (compute capability "
             f"{cc})"]
    if library == "tensorrt_rtx" and tuple(capability) not in RTX_CAPABILITIES:
        lines.append(f"TensorRT-RTX supports compute capability "
                     f"{', '.join(f'{a}.{b}' for a, b in RTX_CAPABILITIES)}, not {cc}: use the "
                     "data-centre `tensorrt` package on this GPU, or ONNX Runtime")
    else:
        lines.append("an engine runs only with the library version and on the GPU family it "
                     "was built for: rebuild it here")
    lines += [f"  {m}" for m in unique_messages(messages)]
    return "\n".join(lines)


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
        self.device = torch.device(device)
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
        self.context.set_input_shape(self.input_name, tuple(x.shape))
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")

    def _output_for(self, x):
        import torch

        self.context.set_input_shape(self.input_name, tuple(x.shape))
        shape = tuple(self.context.get_tensor_shape(self.output_name))
        return torch.empty(shape, dtype=self._torch_dtype(self.output_name), device=self.device)

    def run_tensor(self, x):
        """Logits for a float32 CUDA tensor (N x C x H x W), computed on this runner's stream."""
        import torch

        x = x.to(self.device, self._torch_dtype(self.input_name)).contiguous()
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
            static_in = torch.empty_like(x)
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
            return static_out.clone()

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        out = self.run_tensor(x)
        return out.float().cpu().numpy()
