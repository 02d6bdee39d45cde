"""The model a server serves: a bundle opened for inference, with its v2 protocol description.

Preprocessing is the bundle's own contract (engine.images.contract.Contract prepare/normalize),
so the server answers exactly what `python -m trt infer` answers for the same image.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.inference.results import predictions
from trt.bundle import Bundle
from trt.serve import binary
from trt.serve.errors import BadInput  # noqa: F401 - callers import it from here

# auto: TensorRT when the bundle has an engine this machine runs, else ONNX Runtime (CPU);
# pytorch: the run's checkpoint in PyTorch, on a GPU where CUDA is (no TensorRT needed).
BACKENDS = ("auto", "tensorrt", "onnxruntime", "pytorch")
DEFAULT_MAX_PIXELS = 16_000_000  # decoded width x height of one uploaded image


def bundle_for(source: str | os.PathLike, home: str | os.PathLike | None = None) -> Path:
    """The bundle to serve: `source` itself if it is one, else the run's exports/bundle.zip,
    (re)made from the run (with its built engines) when missing or older than the checkpoint."""
    import zipfile

    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist (give a bundle .zip or a run folder)")
    if source.is_file() and zipfile.is_zipfile(source):
        return source
    if source.is_file() and source.suffix != ".pt":
        raise ValueError(f"{source} is neither a bundle (a zip file) nor a checkpoint (.pt)")
    from engine.inference.predictor import resolve_checkpoint
    from trt.bundle import make_bundle
    from trt.byo import is_imported
    from trt.layout import built_engines, bundle_path, onnx_path

    if is_imported(source):  # an imported ONNX model: no checkpoint, its model.onnx instead
        origin = onnx_path(source)
        engines = built_engines(source)
    else:
        origin = resolve_checkpoint(source)
        engines = built_engines(origin)
    bundle = bundle_path(source)
    if not bundle.exists() or bundle.stat().st_mtime < origin.stat().st_mtime:
        make_bundle(source, bundle, engines=engines, home=home)
    return bundle


def model_name(bundle: Bundle) -> str:
    """A URL-safe name: the run's folder name, else the bundle file's stem."""
    run = bundle.metadata.get("run")
    raw = Path(run).name if run else bundle.path.stem
    if raw in ("", "bundle") or (run and Path(run).suffix == ".pt"):
        raw = Path(run).parent.name if run else bundle.path.stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-.") or "model"


def torch_runner_for(source: str | os.PathLike, device: str = "auto") -> Any:
    """The PyTorch runner of a run folder or checkpoint; a bundle or an imported ONNX model
    has no network to run in PyTorch (ValueError saying what to give instead)."""
    import zipfile

    from trt.byo import is_imported
    from trt.runtime import TorchRunner

    path = Path(source)
    if path.is_file() and zipfile.is_zipfile(path):
        raise ValueError(f"the pytorch backend runs a checkpoint: give the run folder or its "
                         f".pt, not the bundle {path.name} (a bundle holds the ONNX model, "
                         "which --backend onnxruntime or tensorrt serve)")
    if path.is_dir() and is_imported(path):
        raise ValueError(f"{path.name} is an imported ONNX model, with no PyTorch checkpoint: "
                         "serve it with --backend onnxruntime or tensorrt")
    return TorchRunner(path, device)


class ServedModel:
    """A bundle on TensorRT, ONNX Runtime or (its checkpoint) PyTorch, with the pieces the
    server's routes need. `device` places the pytorch backend (auto: a GPU where CUDA is)."""

    def __init__(self, source: str | os.PathLike, backend: str = "auto", name: str | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS,
                 home: str | os.PathLike | None = None, device: str = "auto") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: choose from {', '.join(BACKENDS)}")
        if device != "auto" and backend != "pytorch":
            raise ValueError(f"a device is chosen for the pytorch backend only (TensorRT runs "
                             f"on cuda:0, ONNX Runtime on the CPU), not for {backend!r}")
        runner = torch_runner_for(source, device) if backend == "pytorch" else None
        self.bundle = Bundle(bundle_for(source, home), prefer_tensorrt=backend == "auto"
                             or backend == "tensorrt", runner=runner)
        if backend == "tensorrt" and self.bundle.fallback_reason:
            raise RuntimeError(f"TensorRT was asked for but cannot run: "
                               f"{self.bundle.fallback_reason}")
        self.name = name or model_name(self.bundle)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"model name {self.name!r} may hold only letters, digits, _ . -")
        self.max_pixels = max_pixels
        self.classes = self.bundle.classes
        self.input_shape: tuple[int, int, int] = self.bundle.contract.input_shape
        self.input_name = self.bundle.metadata.get("input", {}).get("name", "input")
        self.output_name = self.bundle.metadata.get("output", {}).get("name", "logits")

    @property
    def backend(self) -> str:
        return self.bundle.backend

    @property
    def fallback_reason(self) -> str | None:
        return self.bundle.fallback_reason

    def describe_backend(self) -> str:
        """The same words as `python -m trt infer`: the backend, and why not TensorRT."""
        why = f" (TensorRT not used: {self.fallback_reason})" if self.fallback_reason else ""
        return f"{self.backend}{why}"

    # --- the model call (one batch, on the batcher's worker thread) -------------------------

    def run(self, rows: np.ndarray) -> np.ndarray:
        """Logits for normalized float32 N x C x H x W rows."""
        return self.bundle.runner.run(rows)

    # --- /classify: image files in, labels out ---------------------------------------------

    def decode(self, data: bytes, filename: str) -> Image.Image:
        """An uploaded file as an image, refusing undecodable files and oversized pictures
        before their pixels are decoded."""
        from engine.images.loading import load_image

        try:
            with Image.open(io.BytesIO(data)) as probe:
                w, h = probe.size
        except Image.DecompressionBombError as e:
            raise BadInput(f"{filename}: {e}", status=413) from None
        except Exception:
            raise BadInput(f"{filename}: not an image Pillow can identify") from None
        if w * h > self.max_pixels:
            raise BadInput(f"{filename}: {w}x{h} pixels is more than the limit of "
                           f"{self.max_pixels:,}", status=413)
        try:
            return load_image(data)
        except ValueError as e:
            raise BadInput(f"{filename}: {e}") from None

    def prepare(self, images: list[Image.Image], digit: bool, polarity: str) -> np.ndarray:
        """Network input rows for images, by the bundle's preprocessing contract."""
        if polarity not in ("auto", "invert", "as-is"):
            raise BadInput(f"polarity must be auto, invert or as-is, not {polarity!r}")
        try:
            batch = self.bundle.contract.prepare_batch(images, digit=digit, polarity=polarity)
        except ValueError as e:  # e.g. a blank drawing has no ink to frame
            raise BadInput(str(e)) from None
        return self.bundle.contract.normalize(batch)

    def results(self, logits: np.ndarray, top_k: int) -> list[dict[str, Any]]:
        """Label, confidence and top-k per row, as `trt infer` reports them."""
        probs = self.bundle.contract.probabilities(logits)  # the model's temperature
        return [p.to_dict() for p in predictions(probs, self.classes, probs, max(1, top_k))]

    def default_digit(self) -> bool:
        """Frame digits like MNIST when the contract says the model was trained on framed
        digits (a `framing` entry other than none)."""
        return self.bundle.contract.framing == "mnist"

    # --- the KServe v2 protocol's description ----------------------------------------------

    def metadata(self) -> dict[str, Any]:
        c, h, w = self.input_shape
        return {"name": self.name, "versions": ["1"], "platform": f"digits-studio/{self.backend}",
                "inputs": [{"name": self.input_name, "datatype": "FP32",
                            "shape": [-1, c, h, w]}],
                "outputs": [{"name": self.output_name, "datatype": "FP32",
                             "shape": [-1, len(self.classes)]}],
                "parameters": {"classes": self.classes,
                               "preprocess": self.bundle.contract.to_dict(),
                               "backend": self.describe_backend()}}

    def v2_rows(self, body: Any, tail: memoryview | None = None, header_given: bool = False
                ) -> tuple[np.ndarray, str | None]:
        """The input rows of a v2 infer request (tensor JSON, or its input as binary tensor
        data in `tail`, the bytes after the inference header), and its id."""
        tail = tail if tail is not None else memoryview(b"")
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise BadInput('the request needs "inputs": a list of tensors')
        binary.check_sizes(body["inputs"], tail, header_given)
        if len(body["inputs"]) != 1:
            raise BadInput(f"the model has one input ({self.input_name!r}), "
                           f"the request gave {len(body['inputs'])}")
        t = body["inputs"][0]
        if not isinstance(t, dict):
            raise BadInput("each input must be an object with name, shape, datatype, data")
        if t.get("name") != self.input_name:
            raise BadInput(f"unknown input {t.get('name')!r}: the model's input is "
                           f"{self.input_name!r}")
        if t.get("datatype") != "FP32":
            raise BadInput(f"input datatype must be FP32, not {t.get('datatype')!r}")
        c, h, w = self.input_shape
        shape = t.get("shape")
        if (not isinstance(shape, list) or len(shape) != 4
                or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
                or shape[0] < 1 or tuple(shape[1:]) != (c, h, w)):
            raise BadInput(f"input shape must be [N, {c}, {h}, {w}] with N >= 1, not {shape}")
        if binary.binary_size(t) is not None:
            if "data" in t:
                raise BadInput(f"input {self.input_name!r} has both \"data\" and "
                               "binary_data_size: give one")
            rows = binary.tensor_from_bytes(self.input_name, tail, "FP32", shape)
            rows = rows.astype(np.float32)  # a native, writable copy of the request's bytes
        else:
            rows = self._json_rows(t.get("data"), shape)
        if not np.isfinite(rows).all():
            raise BadInput("input data holds NaN or infinity")
        rid = body.get("id")
        return rows.reshape(shape), rid if isinstance(rid, str) else None

    def _json_rows(self, data: Any, shape: list[int]) -> np.ndarray:
        if not isinstance(data, list):
            raise BadInput('input "data" must be a list of numbers, or the tensor sent as '
                           'binary data ("parameters": {"binary_data_size": bytes})')
        try:
            rows = np.asarray(data, dtype=np.float32)
        except (TypeError, ValueError):
            raise BadInput('input "data" must hold numbers only') from None
        if rows.size != int(np.prod(shape)):
            raise BadInput(f"input data holds {rows.size} numbers, shape {shape} needs "
                           f"{int(np.prod(shape))}")
        return rows

    def v2_outputs(self, body: dict[str, Any]) -> bool:
        """Check the request's "outputs"; True when the logits go back as binary data."""
        outputs = body.get("outputs")
        if outputs is not None and not isinstance(outputs, list):
            raise BadInput('"outputs" must be a list of {"name": ...} objects')
        for o in outputs or []:
            if not isinstance(o, dict) or o.get("name") != self.output_name:
                raise BadInput(f"unknown output {o.get('name') if isinstance(o, dict) else o!r}"
                               f": the model's output is {self.output_name!r}")
        return binary.wants_binary(body, outputs[0] if outputs else None)

    def v2_response(self, logits: np.ndarray, request_id: str | None,
                    as_binary: bool = False) -> tuple[bytes, int | None]:
        """The response body and, when the logits go as binary data, its JSON header's
        length (the Inference-Header-Content-Length of the response)."""
        logits = np.ascontiguousarray(logits, dtype="<f4")
        tensor: dict[str, Any] = {"name": self.output_name, "datatype": "FP32",
                                  "shape": list(logits.shape)}
        blobs = []
        if as_binary:
            tensor["parameters"] = {"binary_data_size": logits.nbytes}
            blobs.append(logits.tobytes())
        else:
            tensor["data"] = logits.ravel().tolist()
        out: dict[str, Any] = {"model_name": self.name, "model_version": "1",
                               "outputs": [tensor]}
        if request_id is not None:
            out["id"] = request_id
        return binary.encode_response(out, blobs)
