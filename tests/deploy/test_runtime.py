"""The TensorRT runner's own logic on the CPU, with a fake TensorRT library and fake CUDA
calls: device indices, checked binding answers, 256-byte alignment, the profile's batch range,
record_stream, and the check that offers TensorRT only where its engines can run.
tests/gpu runs the same runner against a real engine."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import trt.library
import trt.runtime as rt
from trt.runtime import NeedsGPU, TensorRTRunner


class FakeContext:
    """Records what the runner asks; answers False where told to."""

    def __init__(self, refuse: set[str] = frozenset()) -> None:
        self.refuse = refuse
        self.shape: tuple[int, ...] = ()
        self.addresses: dict[str, int] = {}
        self.runs = 0

    def set_input_shape(self, name, shape):
        self.shape = tuple(shape)
        return "shape" not in self.refuse

    def get_tensor_shape(self, name):
        return (self.shape[0], 10)

    def set_tensor_address(self, name, address):
        self.addresses[name] = address
        return "address" not in self.refuse

    def execute_async_v3(self, stream):
        self.runs += 1
        return True


class FakeEngine:
    num_io_tensors = 2
    num_optimization_profiles = 1

    def __init__(self, context: FakeContext, max_batch: int = 8) -> None:
        self.context, self.max_batch = context, max_batch

    def create_execution_context(self):
        return self.context

    def get_tensor_name(self, i):
        return ("input", "logits")[i]

    def get_tensor_mode(self, name):
        return "in" if name == "input" else "out"

    def get_tensor_profile_shape(self, name, profile):
        return [(1, 1, 28, 28), (4, 1, 28, 28), (self.max_batch, 1, 28, 28)]

    def get_tensor_dtype(self, name):
        return "float"


class FakeStream:
    cuda_stream = 0

    def wait_stream(self, other):
        pass

    def synchronize(self):
        pass


@pytest.fixture
def fake_cuda(monkeypatch):
    """CUDA calls answered on the CPU: device 3 is current; set_device records its argument,
    which must carry an index (torch 2.11 raises ValueError otherwise)."""
    calls: dict[str, list] = {"set_device": [], "record_stream": []}

    def set_device(device):
        if isinstance(device, torch.device) and device.index is None:
            raise ValueError("Expected a torch.device with a specified index or an integer")
        calls["set_device"].append(device)

    current = FakeStream()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: FakeStream())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: current)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: SimpleNamespace(replay=lambda: None))
    monkeypatch.setattr(torch.cuda, "graph", lambda g, stream=None: contextlib.nullcontext())
    monkeypatch.setattr(torch.Tensor, "record_stream",
                        lambda self, s: calls["record_stream"].append(s), raising=False)
    calls["current_stream"] = current
    return calls


def fake_library(name: str = "tensorrt", engine: FakeEngine | None = None):
    lib = SimpleNamespace(
        __name__=name, __version__="10.0",
        TensorIOMode=SimpleNamespace(INPUT="in"),
        DataType=SimpleNamespace(FLOAT="float", HALF="half", INT32="i32", INT8="i8",
                                 BOOL="bool"),
        Runtime=lambda logger: SimpleNamespace(deserialize_cuda_engine=lambda b: engine))
    return lib


@pytest.fixture
def runner_parts(monkeypatch, fake_cuda, tmp_path):
    """A TensorRTRunner over a fake engine, its tensors kept on the CPU."""
    context = FakeContext()
    engine = FakeEngine(context)
    lib = fake_library(engine=engine)
    monkeypatch.setattr(rt, "_require_gpu", lambda device: None)
    monkeypatch.setattr(trt.library, "tensorrt_module", lambda: lib)
    monkeypatch.setattr(trt.library, "logger", lambda: SimpleNamespace(sinks=[]))
    path = tmp_path / "fake.engine"
    path.write_bytes(b"engine")

    def make(device: str = "cuda", cuda_graph: bool = False) -> TensorRTRunner:
        runner = TensorRTRunner(path, device=device, cuda_graph=cuda_graph)
        runner.device = torch.device("cpu")  # buffers stay on the CPU from here on
        return runner
    return make, context, fake_cuda


def test_index_less_cuda_device_means_the_current_one(runner_parts):
    make, _, calls = runner_parts
    runner = make("cuda")
    assert calls["set_device"] == [torch.device("cuda", 3)]
    assert (runner.min_batch, runner.max_batch) == (1, 8)
    assert rt.cuda_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(NeedsGPU, match="not a CUDA device"):
        rt.cuda_device("cpu")


def test_offset_views_are_passed_at_aligned_addresses(runner_parts):
    make, context, _ = runner_parts
    runner = make()
    flat = torch.randn(1 + 4 * 784)
    view = flat[1:].view(4, 1, 28, 28)  # 4 bytes into its storage: never 256-aligned
    assert view.data_ptr() % rt.ALIGNMENT != 0
    out = runner.run_tensor(view)
    assert all(a % rt.ALIGNMENT == 0 for a in context.addresses.values())
    assert out.shape == (4, 10) and context.shape == (4, 1, 28, 28)


def test_aligned_copies_only_what_needs_it():
    base = torch.arange(64 * 10, dtype=torch.float32)
    view = base[3:3 + 64]
    copy = rt.aligned(view)
    assert copy.data_ptr() % rt.ALIGNMENT == 0
    assert torch.equal(copy, view)
    fresh = rt.aligned(copy)
    assert fresh.data_ptr() == copy.data_ptr()  # already aligned: no copy


def test_batch_over_the_profile_maximum_is_a_clear_error_and_run_splits(runner_parts):
    make, context, _ = runner_parts
    runner = make()
    with pytest.raises(ValueError, match="batch of 9 images is over this engine's maximum of 8"):
        runner.run_tensor(torch.zeros(9, 1, 28, 28))
    logits = runner.run(np.zeros((19, 1, 28, 28), np.float32))  # 8 + 8 + 3
    assert logits.shape == (19, 10) and context.runs == 3


@pytest.mark.parametrize("refused, message", [("shape", "refused input shape"),
                                              ("address", "refused the address")])
def test_refused_bindings_raise_instead_of_running(runner_parts, refused, message):
    make, context, _ = runner_parts
    runner = make()
    context.refuse = {refused}
    with pytest.raises(RuntimeError, match=message):
        runner.run_tensor(torch.zeros(2, 1, 28, 28))
    assert context.runs == 0


def test_cuda_graph_output_is_recorded_on_the_callers_stream(runner_parts):
    make, context, calls = runner_parts
    runner = make(cuda_graph=True)
    out = runner.run_tensor(torch.zeros(1, 1, 28, 28))
    assert out.shape == (1, 10) and runner._graph is not None
    assert calls["record_stream"] == [calls["current_stream"]]


@pytest.mark.parametrize("library, capability, runs", [
    ("tensorrt_rtx", (9, 0), False),   # H100/H200: the lent GPU
    ("tensorrt_rtx", (8, 0), False),   # A100
    ("tensorrt_rtx", (7, 5), False),   # Turing: not among the default build targets
    ("tensorrt_rtx", (8, 9), True),
    ("tensorrt_rtx", (12, 0), True),
    ("tensorrt", (9, 0), True),
])
def test_tensorrt_is_offered_only_where_its_engines_run(monkeypatch, library, capability,
                                                          runs):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "NVIDIA Test GPU")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: capability)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(trt.library, "tensorrt_module", lambda: fake_library(library))
    assert "'cuda:1' does not exist: this machine has 1 GPU(s)" in rt.tensorrt_unusable_reason(
        "cuda:1")
    why = rt.tensorrt_unusable_reason("cuda")
    if runs:
        assert why is None
    else:
        cc = f"{capability[0]}.{capability[1]}"
        assert f"not {cc} (NVIDIA Test GPU)" in why and "data-centre `tensorrt`" in why


def test_no_library_and_no_cuda_are_reasons(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "CUDA is not available" in rt.tensorrt_unusable_reason()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def missing():
        raise trt.library.NoTensorRT(["tensorrt: No module named 'tensorrt'"])
    monkeypatch.setattr(trt.library, "tensorrt_module", missing)
    assert "no TensorRT library is installed" in rt.tensorrt_unusable_reason()


def test_onnx_runtime_provider_missing_is_said(tmp_path):
    import onnxruntime as ort

    with pytest.raises(ValueError, match="unknown ONNX Runtime provider 'tpu'"):
        rt.OnnxRunner(b"", provider="tpu")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    assert "CUDAExecutionProvider not installed" in rt.ort_provider_missing("cuda")
    with pytest.raises(RuntimeError, match="CUDAExecutionProvider not installed"):
        rt.OnnxRunner(b"", provider="cuda")


def test_classify_page_is_told_why_tensorrt_rtx_cannot_run_on_an_h200(monkeypatch, tmp_path):
    from pathlib import Path

    from trt import backends

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(trt.library, "tensorrt_module", lambda: fake_library("tensorrt_rtx"))
    monkeypatch.setattr(backends, "export_report", lambda c: {"checkpoint": "best.pt"})
    monkeypatch.setattr(backends, "_checkpoint_mismatch", lambda c, r: None)
    monkeypatch.setattr(backends, "built_engines", lambda c: [Path("fp32.engine")])
    why = backends.unavailable_reason(backends.TENSORRT, tmp_path / "best.pt")
    assert "not 9.0 (NVIDIA H200)" in why
    assert backends.unavailable_reason(backends.ONNX, tmp_path / "best.pt") is None


# --- ONNX Runtime's optimization level, chosen per model -----------------------------------------


class SleepySession:
    def __init__(self, seconds: float) -> None:
        self.seconds, self.calls = seconds, 0

    def run(self, outputs, feeds):
        import time

        self.calls += 1
        time.sleep(self.seconds)


def test_the_probe_times_each_level_in_turns_and_finds_the_faster():
    slow, fast = SleepySession(0.004), SleepySession(0.0)
    times = rt.probe_s({"extended": slow, "all": fast}, {})
    assert min(times, key=times.get) == "all" and times["extended"] >= 0.004
    assert slow.calls == fast.calls == 2 + rt.PROBE_RUNS  # two warm-ups each, then the turns


def test_both_levels_answer_alike_and_the_runner_keeps_one():
    from engine.networks import build_network
    from engine.networks.zoo import zoo_spec
    from trt.onnx_export import onnx_bytes

    torch.manual_seed(0)
    model = build_network(zoo_spec("resnet18"), (1, 32, 32), 10).eval()
    onnx = onnx_bytes(model, (1, 32, 32), 17)
    x = np.random.default_rng(0).standard_normal((4, 1, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    runner = rt.OnnxRunner(onnx)
    assert runner.level in rt.ORT_LEVELS
    np.testing.assert_allclose(runner.run(x), want, atol=1e-4)
    import onnxruntime as ort

    for level in rt.ORT_LEVELS:  # the NCHWc transforms of "all" change no answer
        session = ort.InferenceSession(onnx, rt.ort_session_options(level=level),
                                       providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {"input": x})[0], want, atol=1e-4)


def test_a_model_whose_input_cannot_be_probed_keeps_the_extended_level():
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["text"], ["same"])], "strings",
                              [helper.make_tensor_value_info("text", TensorProto.STRING, [1])],
                              [helper.make_tensor_value_info("same", TensorProto.STRING, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session, level = rt.fastest_cpu_session(model.SerializeToString())
    assert level == "extended"
    assert session.run(None, {"text": np.array(["a"], dtype=object)})[0].tolist() == ["a"]


@pytest.mark.parametrize("all_s,kept", [(0.5, "all"), (0.95, "extended"), (1.2, "extended")])
def test_all_is_kept_only_when_clearly_faster(monkeypatch, all_s, kept):
    from engine.networks import build_network
    from engine.networks.zoo import zoo_spec
    from trt.onnx_export import onnx_bytes

    onnx = onnx_bytes(build_network(zoo_spec("lenet"), (1, 28, 28), 10).eval(), (1, 28, 28), 17)
    monkeypatch.setattr(rt, "probe_s", lambda sessions, feeds: {"extended": 1.0, "all": all_s})
    session, level = rt.fastest_cpu_session(onnx)
    assert level == kept
    assert session.get_session_options().graph_optimization_level.name == rt.ORT_LEVELS[kept]
