"""Precision variants as ONNX graphs, so TensorRT builds them strongly typed.

- fp32: the export itself.
- fp16: weights and arithmetic in float16, input and output kept float32 (Cast nodes at the
  edges) so callers feed the same tensors as for fp32.
- int8: explicit QuantizeLinear/DequantizeLinear pairs, calibrated on training images prepared
  by the contract; symmetric activations and per-channel symmetric weights (what TensorRT
  requires), biases left in float (TensorRT's parser refuses int32-quantized biases).

Each variant's held-out accuracy is measured with ONNX Runtime on the CPU.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from engine.state.workspace import atomic_write_json, sha256_file
from trt.layout import PRECISIONS, variant_path, variants_report_path

CALIBRATION_IMAGES = 512
CALIBRATION_BATCH = 64
DatasetLike = Any  # an engine.datasets.Dataset, or a dataset id or name


def to_fp16(fp32_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Float16 weights and compute, float32 input/output."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    _sort_topologically(model.graph)  # the converter appends its input Casts at the end
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
    return Path(out_path)


def to_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike, calibration: np.ndarray,
            quantize_bias: bool = False) -> Path:
    """QDQ int8 graph calibrated (min/max) on `calibration`, a float32 NCHW batch."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # it warns on the root logger about preprocessing
    try:
        quantize_static(
            str(fp32_path), str(out_path), _BatchReader(calibration, _input_name(fp32_path)),
            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                           "QuantizeBias": quantize_bias})
    finally:
        root.setLevel(level)
    return Path(out_path)


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """Reorder nodes so each comes after the producers of its inputs (ONNX requires it)."""
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise ValueError("the graph has a cycle or an input nothing produces")
        for n in ready:
            ordered.append(n)
            known.update(n.output)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)


class _BatchReader:
    """onnxruntime's CalibrationDataReader protocol over a float batch, in chunks."""

    def __init__(self, batch: np.ndarray, input_name: str) -> None:
        self._chunks = iter(batch[i:i + CALIBRATION_BATCH]
                            for i in range(0, len(batch), CALIBRATION_BATCH))
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        chunk = next(self._chunks, None)
        return None if chunk is None else {self._name: chunk}


def _input_name(path: str | os.PathLike) -> str:
    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def _open(dataset: DatasetLike, home: str | os.PathLike | None):
    if isinstance(dataset, (str, os.PathLike)):
        from engine.datasets import open_dataset

        return open_dataset(str(dataset), home=home)
    return dataset


def calibration_batch(dataset: DatasetLike, count: int = CALIBRATION_IMAGES,
                      home: str | os.PathLike | None = None, seed: int = 0) -> np.ndarray:
    """`count` training images, chosen by a seeded draw and normalized by the contract."""
    ds = _open(dataset, home)
    index = ds.split("train")
    if len(index) == 0:
        raise ValueError(f"dataset {ds!r} has no training images to calibrate int8 with")
    pick = np.sort(np.random.default_rng(seed).permutation(index)[:count])
    return ds.contract.normalize(np.asarray(ds.images[pick]))


def measure_accuracy(onnx_path: str | os.PathLike, dataset: DatasetLike, split: str = "test",
                     home: str | os.PathLike | None = None, batch_size: int = 500) -> float:
    """Top-1 accuracy of the ONNX model on a dataset split, with ONNX Runtime on the CPU."""
    labels, predicted = predict_split(onnx_path, dataset, split, home, batch_size)
    return float((labels == predicted).mean())


def predict_split(onnx_path: str | os.PathLike, dataset: DatasetLike, split: str = "test",
                  home: str | os.PathLike | None = None, batch_size: int = 500
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(true labels, predicted labels) of the ONNX model on a dataset split, in index order,
    with ONNX Runtime on the CPU."""
    from trt.runtime import OnnxRunner

    ds = _open(dataset, home)
    index = np.sort(ds.split(split))
    if len(index) == 0:
        raise ValueError(f"dataset {ds!r} has no {split!r} images")
    runner = OnnxRunner(onnx_path)
    predicted = []
    for i in range(0, len(index), batch_size):
        part = index[i:i + batch_size]
        logits = runner.run(ds.contract.normalize(np.asarray(ds.images[part])))
        predicted.append(logits.argmax(1))
    return np.asarray(ds.labels[index]).astype(np.int64), np.concatenate(predicted)


def make_variants(fp32_path: str | os.PathLike, dataset: DatasetLike,
                  precisions: tuple[str, ...] | list[str] = PRECISIONS, split: str | None = None,
                  home: str | os.PathLike | None = None,
                  progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    """Write each precision's ONNX graph next to the fp32 one, measure their accuracy on the
    split (the held-out one by default: test, else validation; the report names it), and save
    the comparison as <model>-variants.json."""
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown:
        raise ValueError(f"unknown precision {unknown[0]!r}: choose from {', '.join(PRECISIONS)}")
    ds = _open(dataset, home)
    if split is None:
        split = ds.held_out_split() if hasattr(ds, "held_out_split") else "test"
    out: dict[str, Any] = {}
    for i, precision in enumerate(precisions):
        if progress:
            progress(i / len(precisions), f"{precision}: converting")
        path = variant_path(fp32_path, precision)
        if precision == "fp16":
            to_fp16(fp32_path, path)
        elif precision == "int8":
            to_int8(fp32_path, path, calibration_batch(ds))
        if progress:
            progress((i + 0.5) / len(precisions), f"{precision}: measuring accuracy")
        out[precision] = {"onnx": str(path), "size_bytes": Path(path).stat().st_size,
                          "sha256": sha256_file(path),
                          "accuracy": measure_accuracy(path, ds, split)}
    base = out.get("fp32", {}).get("accuracy")
    for v in out.values():
        v["delta_points"] = None if base is None else round(100 * (v["accuracy"] - base), 3)
    report = {"split": split, "dataset": getattr(ds, "name", str(dataset)),
              "calibration_images": CALIBRATION_IMAGES, "variants": out}
    atomic_write_json(variants_report_path(fp32_path), report)
    if progress:
        progress(1.0, "variants done")
    return report


def detect_precision(onnx_path: str | os.PathLike) -> str:
    """int8 if the graph quantizes, fp16 if its weights are float16, else fp32."""
    model = onnx.load(str(onnx_path))
    if any(n.op_type == "QuantizeLinear" for n in model.graph.node):
        return "int8"
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        return "fp16"
    return "fp32"
