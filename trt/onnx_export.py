"""Exporting a trained network to ONNX and proving the export computes what PyTorch does.

The graph has one input "input" (float32 N x C x H x W, already normalized by the preprocessing
contract) and one output "logits", with a dynamic batch axis. The check runs real dataset
images through PyTorch and ONNX Runtime and reports the largest logit difference and the top-1
agreement, next to the model as <model>.onnx.json.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from engine.inference.predictor import Predictor
from engine.state.workspace import atomic_write_bytes, atomic_write_json, sha256_file
from trt.layout import sidecar

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
DYNAMIC_BATCHES = (1, 37)  # batch sizes the check runs besides the big one


def export_onnx(run_dir_or_ckpt: str | os.PathLike, out_path: str | os.PathLike,
                opset: int = DEFAULT_OPSET, check_images: int = 1000,
                home: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write the ONNX model, check it against PyTorch, and return (and save) the report."""
    predictor = Predictor(run_dir_or_ckpt)
    out_path = Path(out_path)
    atomic_write_bytes(out_path, onnx_bytes(predictor.model, predictor.input_shape, opset))
    onnx.checker.check_model(str(out_path))
    batch, source = check_inputs(predictor, check_images, home)
    report = {
        "onnx": str(out_path),
        "checkpoint": str(predictor.path),
        "opset": opset,
        "input": {"name": INPUT_NAME, "shape": ["batch", *predictor.input_shape],
                  "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(predictor.classes)],
                   "dtype": "float32"},
        "classes": predictor.classes,
        "preprocess": predictor.contract.to_dict(),
        "exporter": "torch.onnx (TorchScript)",
        "torch_version": torch.__version__,
        "size_bytes": out_path.stat().st_size,
        "sha256": sha256_file(out_path),
        "check": compare_with_pytorch(predictor.model, out_path, batch) | {"inputs": source},
    }
    atomic_write_json(sidecar(out_path), report)
    return report


def onnx_bytes(model: torch.nn.Module, input_shape: tuple[int, ...], opset: int) -> bytes:
    """The serialized ONNX graph of an eval-mode model, batch axis dynamic."""
    buf = io.BytesIO()
    example = torch.zeros(2, *input_shape)
    with warnings.catch_warnings():  # the TorchScript exporter announces its deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), buf, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=opset,
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          dynamo=False)
    return buf.getvalue()


def check_inputs(predictor: Predictor, count: int, home: str | os.PathLike | None = None
                 ) -> tuple[np.ndarray, str]:
    """Normalized float inputs for the check: the run's held-out images where the dataset
    can be opened, else seeded random images (said so in the report)."""
    images = dataset_images(predictor.config.get("dataset"), count, home)
    source = f"dataset {predictor.config.get('dataset')!r}"
    if images is None:
        c, h, w = predictor.input_shape
        images = np.random.default_rng(0).integers(0, 256, (count, h, w, c), dtype=np.uint8)
        source = "random images (the run's dataset is not in this workspace)"
    return predictor.contract.normalize(images), source


def dataset_images(dataset: str | None, count: int, home: str | os.PathLike | None = None
                   ) -> np.ndarray | None:
    """Up to `count` images of the dataset's test split (else val, else train), or None."""
    if not dataset:
        return None
    from engine.datasets import open_dataset

    try:
        ds = open_dataset(dataset, home=home)
    except Exception:
        return None
    for split in ("test", "val", "train"):
        index = ds.split(split)
        if len(index):
            return np.asarray(ds.images[np.sort(index[:count])])
    return None


def compare_with_pytorch(model: torch.nn.Module, onnx_path: str | os.PathLike,
                         batch: np.ndarray) -> dict[str, Any]:
    """Largest absolute logit difference and top-1 agreement of ONNX Runtime vs PyTorch,
    on the whole batch and on the dynamic batch sizes."""
    from trt.runtime import OnnxRunner

    runner = OnnxRunner(onnx_path)
    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(batch)).numpy()
    got = runner.run(batch)
    per_batch = {}
    for n in DYNAMIC_BATCHES:
        if n <= len(batch):
            part = runner.run(batch[:n])
            per_batch[str(n)] = float(np.abs(part - expected[:n]).max())
    return {
        "images": int(len(batch)),
        "max_abs_diff": float(np.abs(got - expected).max()),
        "top1_agreement": float((got.argmax(1) == expected.argmax(1)).mean()),
        "dynamic_batches_max_abs_diff": per_batch,
    }
