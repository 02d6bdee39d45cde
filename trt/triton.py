"""Triton Inference Server model repository export (`python -m trt triton RUN --out DIR`).

Writes the layout Triton loads:

    DIR/<name>/config.pbtxt       backend, max batch, inputs/outputs, dynamic batching
    DIR/<name>/1/model.onnx       (onnxruntime backend)  or  1/model.plan (tensorrt backend)
    DIR/<name>/labels.txt         one class per line (the output's label_filename)
    DIR/<name>/preprocess.json    the preprocessing contract the input expects
    DIR/README.md                 how to start Triton on it, and how to prepare the input

The model's input is the normalized float tensor (as in the bundle's model.onnx), so clients
apply the preprocessing contract before sending; the README says how, and how to move that step
into Triton (a Python-backend model chained in an ensemble). `python -m trt serve` speaks the
same KServe v2 protocol with the same input and output names, so one client works with both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import onnx

from trt.layout import sidecar

ONNX_TO_TRITON = {
    onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.DOUBLE: "TYPE_FP64", onnx.TensorProto.INT8: "TYPE_INT8",
    onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT64: "TYPE_INT64", onnx.TensorProto.BOOL: "TYPE_BOOL",
}
DEFAULT_MAX_BATCH = 64
DEFAULT_DELAY_US = 100


def graph_io(onnx_path: str | os.PathLike) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Inputs and outputs of the graph: name, Triton data type, dims without the batch axis."""
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}

    def describe(values) -> list[dict[str, Any]]:
        out = []
        for v in values:
            if v.name in initializers:
                continue
            t = v.type.tensor_type
            dtype = ONNX_TO_TRITON.get(t.elem_type)
            if dtype is None:
                raise ValueError(f"tensor {v.name!r} has an ONNX type Triton export does not map "
                                 f"({onnx.TensorProto.DataType.Name(t.elem_type)})")
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            if not dims or dims[0] != -1:
                raise ValueError(f"tensor {v.name!r} has no dynamic batch axis (shape {dims}); "
                                 "Triton's dynamic batching needs one")
            out.append({"name": v.name, "data_type": dtype, "dims": dims[1:]})
        return out

    return describe(graph.input), describe(graph.output)


def model_config(name: str, backend: str, inputs: list[dict[str, Any]],
                 outputs: list[dict[str, Any]], max_batch: int,
                 preferred: list[int] | None = None, delay_us: int = DEFAULT_DELAY_US,
                 kind: str = "KIND_GPU", instances: int = 1) -> str:
    """config.pbtxt text (Triton's ModelConfig protobuf in text format)."""
    if max_batch < 1:
        raise ValueError(f"max batch must be at least 1, not {max_batch}")
    if kind not in ("KIND_GPU", "KIND_CPU", "KIND_AUTO"):
        raise ValueError(f"instance kind must be KIND_GPU, KIND_CPU or KIND_AUTO, not {kind!r}")

    def tensor(t: dict[str, Any], label: bool) -> str:
        lines = [f'    name: "{t["name"]}"', f"    data_type: {t['data_type']}",
                 f"    dims: [ {', '.join(str(d) for d in t['dims'])} ]"]
        if label:
            lines.append('    label_filename: "labels.txt"')
        return "  {\n" + "\n".join(lines) + "\n  }"

    preferred = sorted({b for b in (preferred or []) if 1 <= b <= max_batch})
    batching = [f"  max_queue_delay_microseconds: {int(delay_us)}"]
    if preferred:
        batching.insert(0, f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]")
    platform = {"onnxruntime": "onnxruntime_onnx", "tensorrt": "tensorrt_plan"}[backend]
    return "\n".join([
        f'name: "{name}"',
        f'platform: "{platform}"',
        f'backend: "{backend}"',
        f"max_batch_size: {max_batch}",
        "input [\n" + ",\n".join(tensor(t, False) for t in inputs) + "\n]",
        "output [\n" + ",\n".join(tensor(t, i == 0) for i, t in enumerate(outputs)) + "\n]",
        "dynamic_batching {\n" + "\n".join(batching) + "\n}",
        f"instance_group [\n  {{\n    count: {instances}\n    kind: {kind}\n  }}\n]",
        "",
    ])


def export_triton(run: str | os.PathLike, out_dir: str | os.PathLike, name: str | None = None,
                  precision: str = "fp32", engine: str | os.PathLike | None = None,
                  max_batch: int = DEFAULT_MAX_BATCH, delay_us: int = DEFAULT_DELAY_US,
                  kind: str = "KIND_GPU", instances: int = 1,
                  home: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write a Triton model repository for a run's export (made if missing) or an engine."""
    from trt.layout import PRECISIONS, onnx_path, run_dir_of, variant_path

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    fp32 = onnx_path(run)
    if not sidecar(fp32).exists():
        from trt.onnx_export import export_onnx

        export_onnx(run, fp32, home=home)
    report = json.loads(sidecar(fp32).read_text())
    source = variant_path(fp32, precision)
    if not source.exists():
        raise FileNotFoundError(f"no {precision} variant at {source}: make it first "
                                f"(python -m trt variants {run} --precisions {precision})")
    name = name or run_dir_of(run).name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"model name {name!r} may hold only letters, digits, _ . -")
    inputs, outputs = graph_io(source)
    notes: list[str] = []
    if engine is not None:
        engine = Path(engine)
        if not engine.exists():
            raise FileNotFoundError(f"engine {engine} does not exist")
        info = json.loads(sidecar(engine).read_text()) if sidecar(engine).exists() else {}
        profile = info.get("profile", {})
        profile_max = profile.get("max_batch")
        if profile_max and max_batch > profile_max:
            notes.append(f"max batch lowered from {max_batch} to the engine profile's "
                         f"{profile_max}")
            max_batch = int(profile_max)
        if info.get("library") == "tensorrt_rtx":
            notes.append("this engine was built with TensorRT-RTX; Triton's tensorrt backend "
                         "loads engines of the data-centre `tensorrt` library (its own version) "
                         "only: export the ONNX model instead, or rebuild the plan with it")
        backend, model_file = "tensorrt", "model.plan"
        opt = profile.get("opt_batch")
    else:
        backend, model_file, opt = "onnxruntime", "model.onnx", None
        if precision != "fp32":
            notes.append(f"{precision} graph: ONNX Runtime runs it as written (QDQ / float16)")
    preferred = [b for b in (opt, 8, 32) if b]
    config = model_config(name, backend, inputs, outputs, max_batch, preferred, delay_us, kind,
                          instances)
    root = Path(out_dir)
    model_dir = root / name
    if model_dir.exists():
        shutil.rmtree(model_dir)
    (model_dir / "1").mkdir(parents=True)
    shutil.copyfile(engine if engine is not None else source, model_dir / "1" / model_file)
    (model_dir / "config.pbtxt").write_text(config)
    (model_dir / "labels.txt").write_text("\n".join(report["classes"]) + "\n")
    (model_dir / "preprocess.json").write_text(json.dumps(report["preprocess"], indent=2))
    (root / "README.md").write_text(readme(name, inputs[0], outputs[0], report["preprocess"]))
    return {"repository": str(root), "model": name, "backend": backend,
            "files": sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
            "max_batch_size": max_batch, "inputs": inputs, "outputs": outputs, "notes": notes,
            "config": config}


def readme(name: str, inp: dict[str, Any], out: dict[str, Any], pp: dict[str, Any]) -> str:
    c, h, w = inp["dims"]
    return f"""# Triton model repository: {name}

Start Triton Inference Server on it (NVIDIA's container; pick the release matching your driver):

```bash
docker run --gpus all --rm -p 8000:8000 -p 8001:8001 -p 8002:8002 \\
  -v "$PWD":/models nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models
curl -s localhost:8000/v2/models/{name}
# input "{inp['name']}" {inp['data_type']} [-1, {c}, {h}, {w}]
```

Dynamic batching is on (config.pbtxt); add instances or GPUs in `instance_group`, and run the
same repository on more machines behind a load balancer when one is not enough.

## Preprocessing

The input "{inp['name']}" is the *normalized* image: resize to {h}x{w} ({pp.get('resize_mode',
'squash')}), {c} channel(s), x / {pp.get('scale', 255.0)}, then (x - mean) / std with mean
{pp.get('mean')} and std {pp.get('std')}; polarity {pp.get('polarity', 'as-is')}
(preprocess.json). Do it in the client (the bundle's README has a numpy version), or inside
Triton: a Python-backend model `preprocess` (model.py reading preprocess.json, taking the
encoded image bytes as TYPE_STRING and returning "{inp['name']}") chained to `{name}` by an
ensemble model whose config has `platform: "ensemble"` and an `ensemble_scheduling` step per
model. The output "{out['name']}" holds logits; Triton's classification extension
(`"parameters": {{"classification": 3}}` on the output) returns the top classes by name from
labels.txt.

`python -m trt serve` (this studio) speaks the same KServe v2 protocol with the same tensor
names, so a client written against it works against this repository.
"""


def model_config_pb2():
    """Triton's ModelConfig protobuf module, from tritonclient (loaded from its file, so the
    grpc extra and grpcio are not needed)."""
    import importlib.util
    import sys

    if "tritonclient_model_config_pb2" in sys.modules:
        return sys.modules["tritonclient_model_config_pb2"]
    try:
        import tritonclient
    except ImportError:
        raise ImportError("tritonclient is not installed (pip install tritonclient)") from None
    path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("tritonclient_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["tritonclient_model_config_pb2"] = module
    return module


def parse_config(text: str):
    """config.pbtxt text as Triton's ModelConfig message; ValueError where Triton would refuse
    to parse it."""
    from google.protobuf import text_format

    pb2 = model_config_pb2()
    try:
        return text_format.Parse(text, pb2.ModelConfig())
    except text_format.ParseError as e:
        raise ValueError(f"config.pbtxt does not parse as Triton's ModelConfig: {e}") from None
