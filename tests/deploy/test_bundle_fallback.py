"""A bundle whose TensorRT engine cannot be opened falls back to ONNX Runtime and says why,
whatever the TensorRT bindings raise (they raise TypeError for arguments they reject)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import trt.runtime
from trt.bundle import Bundle


def tiny_bundle(path):
    """A 1 x 28 x 28 -> 10 classes linear classifier, with an engine file beside it."""
    weights = numpy_helper.from_array(np.zeros((784, 10), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["logits"])], "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("model.onnx", model.SerializeToString())
        z.writestr("labels.json", json.dumps([str(i) for i in range(10)]))
        z.writestr("preprocess.json", json.dumps({"channels": 1, "height": 28, "width": 28,
                                                  "mean": [0.0], "std": [1.0]}))
        z.writestr("metadata.json", json.dumps({"input": {"shape": ["N", 1, 28, 28]}}))
        z.writestr("engines/fp32.engine", b"not an engine")
    onnx.checker.check_model(model)
    return path


@pytest.mark.parametrize("error", [TypeError("deserialize_cuda_engine(): incompatible "
                                             "function arguments"),
                                   ValueError("Expected a torch.device with a specified index"),
                                   RuntimeError("tensorrt_rtx could not load fp32.engine")])
def test_tensorrt_errors_fall_back_to_onnx_runtime_with_the_reason(monkeypatch, tmp_path, error):
    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(trt.runtime, "TensorRTRunner", refuse)
    monkeypatch.setattr(trt.runtime, "_require_gpu", lambda device: None)  # as on a GPU machine
    opened = Bundle(tiny_bundle(tmp_path / "b.zip"))
    assert opened.backend == "onnxruntime-cpu" and opened.model_file == "model.onnx"
    assert str(error) in opened.fallback_reason
    logits = opened.runner.run(np.zeros((2, 1, 28, 28), np.float32))
    assert logits.shape == (2, 10)
