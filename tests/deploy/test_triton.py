"""Triton model repository export: layout, config.pbtxt parsed by Triton's own protobuf."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from testkit import trained_digits
from trt.triton import export_triton, model_config, parse_config

digits_run = trained_digits.digits_run
ROOT = Path(__file__).resolve().parents[2]


def test_triton_repository_layout_and_config(digits_run, digits_home, tmp_path):
    pytest.importorskip("tritonclient", reason="tritonclient ships Triton's model_config_pb2")
    out = tmp_path / "repo"
    r = export_triton(digits_run, out, name="lenet", max_batch=64, home=digits_home)
    model = out / "lenet"
    assert {"lenet/config.pbtxt", "lenet/1/model.onnx", "lenet/labels.txt",
            "lenet/preprocess.json", "README.md"} <= set(r["files"])
    config = parse_config((model / "config.pbtxt").read_text())
    assert config.name == "lenet" and config.backend == "onnxruntime"
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 64
    pb2 = sys.modules["tritonclient_model_config_pb2"]
    (inp,), (outp,) = config.input, config.output
    assert inp.name == "input" and inp.data_type == pb2.TYPE_FP32 and list(inp.dims) == [1, 28, 28]
    assert outp.name == "logits" and list(outp.dims) == [10]
    assert outp.label_filename == "labels.txt"
    assert config.HasField("dynamic_batching")
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    assert config.dynamic_batching.max_queue_delay_microseconds == 100
    assert config.instance_group[0].kind == pb2.ModelInstanceGroup.KIND_GPU
    labels = (model / "labels.txt").read_text().splitlines()
    assert labels == [str(i) for i in range(10)]
    # the copied model is the export, and it takes what the config says
    session = ort.InferenceSession(str(model / "1" / "model.onnx"))
    x = np.zeros((3, *inp.dims), np.float32)
    assert session.run(None, {inp.name: x})[0].shape == (3, outp.dims[0])
    assert "ensemble" in (out / "README.md").read_text()


def test_config_text_that_triton_would_refuse_does_not_parse():
    pytest.importorskip("tritonclient", reason="tritonclient ships Triton's model_config_pb2")
    good = model_config("m", "onnxruntime", [{"name": "x", "data_type": "TYPE_FP32",
                                               "dims": [3, 8, 8]}],
                        [{"name": "y", "data_type": "TYPE_FP16", "dims": [5]}], 16, [4, 99],
                        kind="KIND_CPU", instances=2)
    config = parse_config(good)
    assert list(config.dynamic_batching.preferred_batch_size) == [4]  # 99 > max batch dropped
    assert config.instance_group[0].count == 2
    with pytest.raises(ValueError, match="ModelConfig"):
        parse_config(good.replace("TYPE_FP32", "TYPE_FLOAT"))
    with pytest.raises(ValueError, match="ModelConfig"):
        parse_config(good + "\nmax_batch: 3\n")


def test_triton_cli(digits_run, digits_home, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(digits_home))
    out = tmp_path / "repo"
    proc = subprocess.run([sys.executable, "-m", "trt", "triton", str(digits_run), "--out",
                           str(out), "--max-batch", "32", "--kind", "cpu"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "lenet-digits" / "1" / "model.onnx").exists()
    assert "max_batch_size: 32" in (out / "lenet-digits" / "config.pbtxt").read_text()
    assert "KIND_CPU" in (out / "lenet-digits" / "config.pbtxt").read_text()
    bad = subprocess.run([sys.executable, "-m", "trt", "triton", str(digits_run), "--out",
                          str(out), "--precision", "int4"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
