"""What a bundle must hold before anything in it is loaded: its members' sizes, and the types
and ranges of labels.json, preprocess.json and metadata.json.

A bundle is a zip from anywhere; every field it carries is checked here, so a damaged or
hostile one ends in one ValueError line naming the member and the field, never in ONNX
Runtime's, numpy's or the allocator's words.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass
from typing import Any

from engine.images.loading import RESIZE_MODES
from engine.state import limits

REQUIRED = ("model.onnx", "labels.json", "preprocess.json")
META = ("labels.json", "preprocess.json", "metadata.json")
POLARITIES = ("white-on-black", "as-is", "black-on-white", "auto", "detect")
MAX_SIDE = 4096


@dataclass
class BundleInfo:
    classes: list[str]
    preprocess: dict[str, Any]
    metadata: dict[str, Any]
    input_shape: tuple[int, int, int]  # C, H, W
    engines: list[str]


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"bundle {where}: {message}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json(z: zipfile.ZipFile, name: str, label: str) -> Any:
    try:
        return json.loads(z.read(name))
    except (ValueError, UnicodeDecodeError) as e:
        raise _fail(label, f"{name} is not valid JSON ({str(e).splitlines()[0][:120]})") from None
    except RecursionError:
        raise _fail(label, f"{name} is nested too deeply") from None


def check_members(z: zipfile.ZipFile, label: str) -> None:
    """Required members there; no member above its size limit (read from the central
    directory: nothing is decompressed yet)."""
    infos = {i.filename: i for i in z.infolist()}
    for needed in REQUIRED:
        if needed not in infos:
            raise ValueError(f"{label} is not a bundle: it has no {needed}")
    meta_cap, member_cap = limits.BUNDLE_META_BYTES.value, limits.BUNDLE_MEMBER_BYTES.value
    for name, info in infos.items():
        cap, setting = ((meta_cap, limits.BUNDLE_META_BYTES.name) if name in META
                        else (member_cap, limits.BUNDLE_MEMBER_BYTES.name))
        if info.file_size > cap:
            raise _fail(label, f"{name} is {limits.size(info.file_size)}, above the "
                               f"{limits.size(cap)} limit ({setting})")


def check_labels(labels: Any, label: str) -> list[str]:
    if not isinstance(labels, list) or not labels:
        raise _fail(label, f"labels.json must be a non-empty list of class names, not "
                           f"{_short(labels)}")
    if len(labels) > limits.CLASSES.value:
        raise _fail(label, f"labels.json has {len(labels):,} classes, above the limit of "
                           f"{limits.CLASSES.value:,} ({limits.CLASSES.name})")
    bad = next((x for x in labels if not isinstance(x, (str, int)) or isinstance(x, bool)
                or len(str(x)) > 200), None)
    if bad is not None:
        raise _fail(label, f"labels.json must hold class names (text), found {_short(bad)}")
    return [str(x) for x in labels]


def check_preprocess(pp: Any, label: str) -> tuple[dict[str, Any], tuple[int, int, int]]:
    where = f"{label} preprocess.json"
    if not isinstance(pp, dict):
        raise ValueError(f"{where} must be a mapping, not {_short(pp)}")
    for key in ("height", "width"):
        if not _int(pp.get(key), 1, MAX_SIDE):
            raise ValueError(f"{where}: {key} must be a whole number from 1 to {MAX_SIDE}, not "
                             f"{_short(pp.get(key))}")
    c = pp.get("channels", 1)
    if c not in (1, 3) or isinstance(c, bool):
        raise ValueError(f"{where}: channels must be 1 or 3, not {_short(c)}")
    if "scale" in pp and pp["scale"] is not None and not (_number(pp["scale"])
                                                          and pp["scale"] > 0):
        raise ValueError(f"{where}: scale must be a finite number > 0, not {_short(pp['scale'])}")
    t = pp.get("temperature", 1.0)
    if t is not None and not (_number(t) and t > 0):
        raise ValueError(f"{where}: temperature must be a finite number > 0, not {_short(t)}")
    for key, positive in (("mean", False), ("std", True)):
        v = pp.get(key)
        if v is None:
            continue
        if not (isinstance(v, list) and len(v) == c and all(_number(x) for x in v)
                and (not positive or all(x > 0 for x in v))):
            need = "positive " if positive else ""
            raise ValueError(f"{where}: {key} must be a list of {c} finite {need}numbers (one "
                             f"per channel), not {_short(v)}")
    if pp.get("resize_mode", "squash") not in RESIZE_MODES:
        raise ValueError(f"{where}: resize_mode must be one of {', '.join(RESIZE_MODES)}, not "
                         f"{_short(pp.get('resize_mode'))}")
    if pp.get("polarity", "as-is") not in POLARITIES:
        raise ValueError(f"{where}: polarity must be one of {', '.join(POLARITIES)}, not "
                         f"{_short(pp.get('polarity'))}")
    return pp, (c, pp["height"], pp["width"])


def check_metadata(meta: Any, shape: tuple[int, int, int], classes: int, label: str
                   ) -> dict[str, Any]:
    where = f"{label} metadata.json"
    if not isinstance(meta, dict):
        raise ValueError(f"{where} must be a mapping, not {_short(meta)}")
    inp = meta.get("input")
    if inp is not None:
        dims = inp.get("shape") if isinstance(inp, dict) else None
        if not (isinstance(dims, list) and len(dims) == 4):
            raise ValueError(f"{where}: input.shape must be [batch, channels, height, width], "
                             f"not {_short(dims)}")
        if tuple(dims[1:]) != shape:
            raise ValueError(f"{where}: input.shape {_short(dims)} disagrees with "
                             f"preprocess.json ({shape[0]} x {shape[1]} x {shape[2]})")
    if "classes" in meta and (not isinstance(meta["classes"], list)
                              or len(meta["classes"]) != classes):
        raise ValueError(f"{where}: classes disagree with labels.json ({classes} classes)")
    if not isinstance(meta.get("engines", []), list):
        raise ValueError(f"{where}: engines must be a list")
    return meta


def read_bundle_info(z: zipfile.ZipFile, label: str) -> BundleInfo:
    """Every check above, in order; returns the validated contents."""
    check_members(z, label)
    classes = check_labels(_json(z, "labels.json", label), label)
    pp, shape = check_preprocess(_json(z, "preprocess.json", label), label)
    meta = (check_metadata(_json(z, "metadata.json", label), shape, len(classes), label)
            if "metadata.json" in z.namelist() else {})
    engines = sorted(n for n in z.namelist() if n.startswith("engines/")
                     and n.endswith(".engine"))
    return BundleInfo(classes, pp, meta, shape, engines)


def check_model_io(runner: Any, shape: tuple[int, int, int], classes: int, label: str) -> None:
    """The ONNX model's input must take N x C x H x W of the contract, and its output one
    score per label (dimensions the model leaves symbolic are accepted)."""
    inputs, outputs = runner.session.get_inputs(), runner.session.get_outputs()
    if len(inputs) != 1 or not outputs:
        raise _fail(label, f"model.onnx must have one input and an output, has {len(inputs)} "
                           f"input(s) and {len(outputs)} output(s)")
    dims = list(inputs[0].shape)
    if len(dims) != 4 or any(isinstance(d, int) and d != want
                             for d, want in zip(dims[1:], shape, strict=True)):
        raise _fail(label, f"model.onnx takes input {dims}, not N x {shape[0]} x {shape[1]} x "
                           f"{shape[2]} as preprocess.json says")
    out = list(outputs[0].shape)
    if len(out) != 2 or (isinstance(out[1], int) and out[1] != classes):
        raise _fail(label, f"model.onnx outputs {out}, not N x {classes} (one score per label "
                           "in labels.json)")
