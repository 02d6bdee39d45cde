"""ONNX export and precision variants, checked with ONNX Runtime on the real MNIST sample."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from engine.datasets import open_dataset
from engine.inference.predictor import Predictor
from trt.layout import variant_path
from trt.onnx_export import export_onnx
from trt.runtime import OnnxRunner
from trt.variants import detect_precision, make_variants


@pytest.fixture(scope="module")
def exported(mnist_lenet, mnist_sample_home, tmp_path_factory):
    run_dir, _ = mnist_lenet
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return out, export_onnx(run_dir, out, home=mnist_sample_home)


@pytest.fixture(scope="module")
def variants(exported, mnist_sample_home):
    onnx_path, _ = exported
    return make_variants(onnx_path, "mnist-sample", home=mnist_sample_home)


def test_export_matches_pytorch_on_real_images(exported):
    path, report = exported
    check = report["check"]
    assert check["images"] >= 500
    assert "mnist-sample" in check["inputs"]
    assert check["max_abs_diff"] < 1e-4
    assert check["top1_agreement"] == 1.0
    saved = json.loads(path.with_name("model.onnx.json").read_text())
    assert saved["check"] == check and saved["sha256"] == report["sha256"]


def test_export_has_named_dynamic_batch_axis(exported):
    path, report = exported
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["logits"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert set(report["check"]["dynamic_batches_max_abs_diff"]) == {"1", "37"}


@pytest.mark.parametrize("batch", [1, 37])
def test_dynamic_batch_runs_and_matches(exported, mnist_lenet, mnist_sample_home, batch):
    path, _ = exported
    predictor = Predictor(mnist_lenet[0])
    ds = open_dataset("mnist-sample", home=mnist_sample_home)
    x = ds.contract.normalize(np.asarray(ds.images[ds.split("test")[:batch]]))
    got = OnnxRunner(path).run(x)
    with torch.inference_mode():
        want = predictor.model(torch.from_numpy(x)).numpy()
    assert got.shape == (batch, 10)
    assert np.abs(got - want).max() < 1e-4


def test_variants_keep_accuracy(variants):
    v = variants["variants"]
    assert set(v) == {"fp32", "fp16", "int8"}
    assert v["fp32"]["accuracy"] > 0.9
    assert v["fp32"]["accuracy"] - v["fp16"]["accuracy"] <= 0.005
    assert v["fp32"]["accuracy"] - v["int8"]["accuracy"] <= 0.010
    assert variants["split"] == "test"


def test_variant_graphs_have_their_precision(exported, variants):
    path, _ = exported
    assert detect_precision(path) == "fp32"
    fp16 = onnx.load(str(variant_path(path, "fp16")))
    assert detect_precision(variant_path(path, "fp16")) == "fp16"
    # Callers keep feeding float32: the casts sit inside the graph.
    assert fp16.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert fp16.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    int8 = onnx.load(str(variant_path(path, "int8")))
    ops = {n.op_type for n in int8.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # Symmetric activations: every zero point is 0 (what TensorRT requires).
    zero_points = [onnx.numpy_helper.to_array(t) for t in int8.graph.initializer
                   if "zero_point" in t.name]
    assert zero_points and all((z == 0).all() for z in zero_points)


def test_unknown_precision_is_refused(exported, mnist_sample_home):
    path, _ = exported
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        make_variants(path, "mnist-sample", precisions=["int4"], home=mnist_sample_home)
