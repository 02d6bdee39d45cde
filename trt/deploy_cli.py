"""`python -m trt triton|damage|profile|import`: Triton export, accuracy vs latency, profiles
and bring-your-own ONNX models (issue 18). User errors end as trt.cli's do: one line, status 2."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trt import layout


def _print(data: Any, as_json: bool, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if as_json else text)


def cmd_triton(a: argparse.Namespace) -> None:
    from trt.triton import export_triton, parse_config

    r = export_triton(a.run, a.out, name=a.name, precision=a.precision, engine=a.engine,
                      max_batch=a.max_batch, delay_us=a.max_delay_us,
                      kind=f"KIND_{a.kind.upper()}", instances=a.instances)
    checked = "config.pbtxt not checked (pip install tritonclient to check it)"
    try:
        parse_config(r["config"])
        checked = "config.pbtxt parsed by Triton's ModelConfig protobuf"
    except ImportError:
        pass
    notes = "".join(f"\nnote: {n}" for n in r["notes"])
    _print(r, a.json, f"wrote Triton model repository {r['repository']} (model {r['model']!r}, "
           f"{r['backend']} backend, max batch {r['max_batch_size']}); {checked}:\n  "
           + "\n  ".join(r["files"]) + notes)


def cmd_damage(a: argparse.Namespace) -> None:
    from trt.damage import damage_report, format_damage

    r = damage_report(a.run, precisions=a.precisions.split(","), split=a.split,
                      batches=tuple(int(b) for b in a.batches.split(",")),
                      within_points=a.within, seconds=a.seconds)
    _print(r, a.json, format_damage(r))


def cmd_profile(a: argparse.Namespace) -> None:
    from trt.damage import onnxruntime_profile, tensorrt_profile

    if Path(a.model).suffix in (".engine", ".plan"):
        rows, key = tensorrt_profile(a.model, a.batch, a.runs), "layer"
    else:
        rows, key = onnxruntime_profile(a.model, a.batch, a.runs), "operator"
    lines = [f"{key:<40} {'ms/run':>9} {'share':>7}"]
    lines += [f"{r[key][:40]:<40} {r['ms_per_run']:9.4f} {100 * r['share']:6.1f}%" for r in rows]
    if key == "operator" and rows:
        lines.append(f"(ONNX Runtime at graph optimization level {rows[0]['level']!r}, the one "
                     "serving picks for this model here)")
    _print(rows, a.json, "\n".join(lines))


def cmd_import(a: argparse.Namespace) -> None:
    from trt.byo import contract, import_onnx, read_labels

    h, _, w = a.size.lower().partition("x")
    if not (h.isdigit() and w.isdigit()):
        raise ValueError(f"--size must be HEIGHTxWIDTH, e.g. 28x28, not {a.size!r}")
    pp = contract(int(h), int(w), a.channels, _floats(a.mean), _floats(a.std), a.scale,
                  a.polarity, a.resize_mode)
    r = import_onnx(a.onnx, a.out, read_labels(a.labels), pp, calibration_folder=a.calibration,
                    dataset=a.dataset)
    c = r["check"]
    text = (f"imported {a.onnx} into {a.out} ({len(r['classes'])} classes, input "
            f"{r['input']['name']!r} N x {'x'.join(map(str, r['input']['shape'][1:]))}); check "
            f"on ONNX Runtime, batch vs one at a time on {c['images']} {c['inputs']}: max |diff| "
            f"{c['max_abs_diff']:.2e}, top-1 agreement {100 * c['top1_agreement']:.1f}%")
    if a.bundle or a.precisions != "fp32":
        from trt.bundle import make_bundle

        b = make_bundle(a.out, layout.bundle_path(Path(a.out)),
                        variants=a.precisions.split(","))
        text += f"\nwrote {b['bundle']}: " + ", ".join(
            f"{p} {100 * v['accuracy']:.2f}%" if "accuracy" in v else p
            for p, v in b["variants"].items())
        r = r | {"bundle": b}
    _print(r, a.json, text)


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"expected numbers separated by commas, not {text!r}") from None


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("triton", help="write a Triton Inference Server model repository")
    p.add_argument("run", help="run folder, checkpoint, or imported model folder")
    p.add_argument("--out", required=True, help="model repository folder")
    p.add_argument("--name", help="model name (default: the run's folder name)")
    p.add_argument("--precision", default="fp32", help="ONNX variant: fp32, fp16 or int8")
    p.add_argument("--engine", help="serve this TensorRT engine (model.plan) instead of ONNX")
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--max-delay-us", type=int, default=100, help="dynamic batching queue delay")
    p.add_argument("--kind", default="gpu", choices=["gpu", "cpu", "auto"])
    p.add_argument("--instances", type=int, default=1)
    p.set_defaults(fn=cmd_triton)

    p = sub.add_parser("damage", help="per-class accuracy damage and accuracy vs latency of the "
                                      "precision variants")
    p.add_argument("run")
    p.add_argument("--precisions", default="fp32,fp16,int8")
    p.add_argument("--split", default="test")
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--within", type=float, default=1.0, help="points of FP32 accuracy allowed")
    p.add_argument("--seconds", type=float, default=0.3, help="time per latency cell")
    p.set_defaults(fn=cmd_damage)

    p = sub.add_parser("profile", help="time per operator (ONNX Runtime) or layer (TensorRT)")
    p.add_argument("model", help="an .onnx file, or an .engine/.plan (needs a GPU)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--runs", type=int, default=20)
    p.set_defaults(fn=cmd_profile)

    p = sub.add_parser("import", help="bring your own ONNX classifier into the deploy path")
    p.add_argument("onnx")
    p.add_argument("--labels", required=True, help="labels: .json list or one name per line")
    p.add_argument("--out", required=True, help="folder to create (laid out like a run)")
    p.add_argument("--size", default="28x28", help="input HEIGHTxWIDTH")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--mean", default="0", help="per channel, after x / scale (e.g. 0.1307)")
    p.add_argument("--std", default="1", help="per channel (e.g. 0.3081)")
    p.add_argument("--scale", type=float, default=255.0)
    p.add_argument("--polarity", default="as-is", choices=["as-is", "white-on-black"])
    p.add_argument("--resize-mode", default="squash")
    p.add_argument("--calibration", help="folder of images (class sub-folders score accuracy)")
    p.add_argument("--dataset", help="workspace dataset to calibrate and score on instead")
    p.add_argument("--precisions", default="fp32", help="variants to make, e.g. fp32,fp16,int8")
    p.add_argument("--bundle", action="store_true", help="also write exports/bundle.zip")
    p.set_defaults(fn=cmd_import)

    for name in ("triton", "damage", "profile", "import"):
        sub.choices[name].add_argument("--json", action="store_true", help="print JSON")
