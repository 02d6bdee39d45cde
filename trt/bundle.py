"""Export bundles: one zip holding everything needed to classify images elsewhere.

Contents: model.onnx (+ model-fp16.onnx, model-int8.onnx when asked for), engines/*.engine with
their metadata, labels.json, preprocess.json (the contract), metadata.json, README.md with a
standalone example (onnxruntime + numpy + Pillow only). classify_with_bundle() reads a bundle
back, on TensorRT where a GPU and an engine are there, else on ONNX Runtime.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.images.contract import Contract
from engine.inference.results import predictions
from trt import layout
from trt.bundle_schema import BundleInfo, check_model_io, read_bundle_info
from trt.layout import sidecar

README = """# {name}: image classifier bundle

Classes ({n_classes}): {classes}

Input "input": float32 N x {c} x {h} x {w}; output "logits".

Files in this bundle:
{files}

Preprocessing (preprocess.json): resize to {h}x{w} ({resize_mode}), {c} channel(s),
x / 255, then (x - mean) / std per channel; polarity: {polarity}.

```python
import json, numpy as np, onnxruntime as ort
from PIL import Image

pp = json.load(open("preprocess.json"))
labels = json.load(open("labels.json"))
mode = "L" if pp["channels"] == 1 else "RGB"
img = Image.open("digit.png").convert(mode).resize((pp["width"], pp["height"]),
                                                   Image.Resampling.BILINEAR)
a = np.asarray(img, dtype=np.float32).reshape(pp["height"], pp["width"], -1)
if pp.get("polarity") == "white-on-black" and np.median(a) > 127:  # dark ink on light paper
    a = 255.0 - a
x = (a / 255.0 - np.array(pp["mean"], np.float32)) / np.array(pp["std"], np.float32)
x = x.transpose(2, 0, 1)[None].astype(np.float32)  # 1 x C x H x W
session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
logits = session.run(None, {{"input": x.astype(np.float32)}})[0][0]
z = logits / pp.get("temperature", 1.0)  # temperature scaling; 1.0 = uncalibrated
p = np.exp(z - z.max()); p /= p.sum()
print(labels[int(p.argmax())], float(p.max()))
```

With the studio installed: `python -m trt infer bundle.zip digit.png [--digit] [--json]`.
"""


def make_bundle(run_dir: str | os.PathLike, out_zip: str | os.PathLike,
                variants: Sequence[str] = ("fp32",), engines: Sequence[str | os.PathLike] = (),
                home: str | os.PathLike | None = None) -> dict[str, Any]:
    """Export (and convert) what is missing under <run_dir>/exports, then zip it all."""
    from trt.byo import ensure_export, evaluation_dataset
    from trt.variants import make_variants

    run_dir = Path(run_dir)
    fp32 = layout.onnx_path(run_dir)
    export = ensure_export(run_dir, fp32, home=home)  # an imported model's report, or export
    report = None
    extra = [v for v in variants if v != "fp32"]
    if extra:
        report = make_variants(fp32, evaluation_dataset(run_dir, home),
                               precisions=["fp32", *extra], home=home)
    # Names inside the bundle only: no paths of the workspace it was made in.
    made = report["variants"] if report else {"fp32": {"onnx": str(fp32)}}
    bundled = {p: _no_paths(made[p]) for p in variants if p in made}
    metadata = {
        "format": "digits-studio-bundle/1",
        "run": run_dir.name if run_dir.is_dir() else run_dir.parent.name,
        "classes": export["classes"],
        "input": export["input"],
        "output": export["output"],
        "export_check": _no_paths(export["check"]),
        "variants": bundled,
        "engines": [],
    }
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_zip.with_name(f".{out_zip.name}.tmp-{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for precision in variants:
            path = layout.variant_path(fp32, precision)
            z.write(path, path.name)
        for engine in engines:
            engine = Path(engine)
            z.write(engine, f"engines/{engine.name}")
            info = json.loads(sidecar(engine).read_text()) if sidecar(engine).exists() else {}
            info = {k: v for k, v in info.items() if k not in ("engine", "onnx")}
            metadata["engines"].append({"file": f"engines/{engine.name}", **_no_paths(info)})
        z.writestr("labels.json", json.dumps(export["classes"], indent=2))
        z.writestr("preprocess.json", json.dumps(export["preprocess"], indent=2))
        z.writestr("metadata.json", json.dumps(metadata, indent=2))
        files = [layout.variant_path(fp32, p).name + (" (the default)" if p == "fp32" else
                                                f" ({p} variant)") for p in variants]
        files += [f"{e['file']} (TensorRT engine, built for one TensorRT version and GPU "
                  "family; see metadata.json)" for e in metadata["engines"]]
        files += ["labels.json (class names)", "preprocess.json (the preprocessing)",
                  "metadata.json (input, output, export check, variants, engines)"]
        z.writestr("README.md", _readme(run_dir.name, export, files))
    os.replace(tmp, out_zip)
    return {"bundle": str(out_zip), "size_bytes": out_zip.stat().st_size,
            "files": zipfile.ZipFile(out_zip).namelist(), **metadata}


def _no_paths(value: Any) -> Any:
    """A copy with every absolute path replaced by its file name: a bundle travels, the
    workspace it came from does not."""
    if isinstance(value, dict):
        return {k: _no_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_paths(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return Path(value).name
    return value


def _readme(name: str, export: dict[str, Any], files: list[str]) -> str:
    pp = export["preprocess"]
    c, h, w = export["input"]["shape"][1:]
    classes = export["classes"]
    return README.format(name=name, n_classes=len(classes), classes=", ".join(classes[:20])
                         + (" ..." if len(classes) > 20 else ""), c=c, h=h, w=w,
                         resize_mode=pp.get("resize_mode", "squash"),
                         polarity=pp.get("polarity", "as-is"),
                         files="\n".join(f"- `{f.split(' ')[0]}` {' '.join(f.split(' ')[1:])}"
                                          for f in files))


class Bundle:
    """A bundle opened for inference."""

    def __init__(self, path: str | os.PathLike, prefer_tensorrt: bool = True,
                 runner: Any = None) -> None:
        """`runner` (a trt.runtime.TorchRunner of the checkpoint the bundle was made from) runs
        the model instead of the bundle's engine or ONNX; it must take the bundle's input and
        give one score per label."""
        self.path = Path(path)
        label = self.path.name
        if not self.path.is_file():
            raise FileNotFoundError(f"no bundle at {self.path}")
        if not zipfile.is_zipfile(self.path):
            raise ValueError(f"{self.path} is not a bundle (not a zip file)")
        try:
            with zipfile.ZipFile(self.path) as z:
                info = read_bundle_info(z, label)  # everything checked before loading anything
                self.classes: list[str] = info.classes
                self.preprocess: dict[str, Any] = info.preprocess
                self.metadata: dict[str, Any] = info.metadata
                self.fallback_reason: str | None = None  # why TensorRT is not the runner
                self.runner, self.model_file = (
                    self._own(runner, info) if runner is not None
                    else self._runner(z, info, prefer_tensorrt))
        except (zipfile.BadZipFile, EOFError, NotImplementedError) as e:
            raise ValueError(f"{label} is a damaged zip file: {e}") from None
        self.backend: str = self.runner.backend
        self.contract = Contract.from_dict(self.preprocess, info.input_shape)

    def _own(self, runner: Any, info: BundleInfo):
        """A given runner (PyTorch), checked against the bundle's contract and labels."""
        predictor = runner.predictor
        if tuple(predictor.input_shape) != tuple(info.input_shape) \
                or list(predictor.classes) != list(info.classes):
            raise ValueError(f"bundle {self.path.name} was not made from checkpoint "
                             f"{predictor.path.name}: their input shapes or labels differ")
        self.fallback_reason = "PyTorch was asked for"
        return runner, predictor.path.name

    def _runner(self, z: zipfile.ZipFile, info: BundleInfo, prefer_tensorrt: bool):
        from trt.runtime import NeedsGPU, OnnxRunner, TensorRTRunner, _require_gpu

        engines = info.engines
        if not prefer_tensorrt:
            self.fallback_reason = "ONNX Runtime was asked for"
        elif not engines:
            self.fallback_reason = "the bundle has no TensorRT engine"
        else:
            try:
                _require_gpu("cuda:0")  # before extracting anything
                self._tmp = tempfile.TemporaryDirectory(prefix="bundle-")
                path = Path(z.extract(engines[0], self._tmp.name))
                return TensorRTRunner(path), engines[0]
            except (NeedsGPU, RuntimeError, TypeError, ValueError) as e:
                # TypeError: the TensorRT bindings reject an argument (a library built for
                # another API version); ValueError: a device torch cannot use.
                self.fallback_reason = f"{type(e).__name__}: {e}" if isinstance(
                    e, TypeError) else str(e)
        try:
            runner = OnnxRunner(z.read("model.onnx"))
        except Exception as e:  # noqa: BLE001 - ONNX Runtime's errors share no base class
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ValueError(f"bundle {self.path.name}: model.onnx is not a model ONNX Runtime "
                             f"can load ({first})") from None
        check_model_io(runner, info.input_shape, len(info.classes), self.path.name)
        return runner, "model.onnx"

    def prepare(self, image, digit: bool | None = None, polarity: str = "auto") -> np.ndarray:
        """The uint8 H x W x C image the network sees, by the bundle's contract."""
        return self.contract.prepare(image, digit=digit, polarity=polarity)

    def classify(self, images: Sequence[Any], top_k: int = 5, digit: bool | None = None,
                 polarity: str = "auto") -> list[dict[str, Any]]:
        batch = self.contract.prepare_batch(images, digit=digit, polarity=polarity)
        return [p.to_dict() for p in predictions(self.probabilities(batch), self.classes,
                                                 batch, top_k)]

    def probabilities(self, batch: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Class probabilities of prepared uint8 N x H x W x C images: softmax(logits / T)
        with the bundle's temperature (preprocess.json), or the raw softmax."""
        try:
            logits = self.runner.run(self.contract.normalize(batch))
        except Exception as e:  # noqa: BLE001 - the runtimes' errors share no base class
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ValueError(f"bundle {self.path.name}: the model failed on the input "
                             f"({first})") from None
        if logits.ndim != 2 or logits.shape[1] != len(self.classes):
            raise ValueError(f"bundle {self.path.name}: the model returned {logits.shape[1:]} "
                             f"scores per image, but labels.json has {len(self.classes)} classes")
        return self.contract.probabilities(logits, calibrated)
