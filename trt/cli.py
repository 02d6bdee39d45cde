"""python -m trt export|variants|build|bench|bundle|infer|serve|triton|import: the deployment steps.

User errors print one line, "error: ...", on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trt import layout


def _print(data: Any, as_json: bool, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if as_json else text)


def cmd_export(a: argparse.Namespace) -> None:
    from trt.onnx_export import export_onnx

    out = a.out or layout.onnx_path(a.run)
    r = export_onnx(a.run, out, opset=a.opset)
    c = r["check"]
    _print(r, a.json, f"wrote {r['onnx']} ({r['size_bytes']:,} bytes); vs PyTorch on "
           f"{c['images']} images: max |diff| {c['max_abs_diff']:.2e}, top-1 agreement "
           f"{100 * c['top1_agreement']:.2f}%")


def cmd_variants(a: argparse.Namespace) -> None:
    from trt.onnx_export import export_onnx
    from trt.variants import make_variants

    fp32 = layout.onnx_path(a.run)
    export_onnx(a.run, fp32)
    dataset = a.dataset or layout.read_run_config(a.run)["dataset"]
    r = make_variants(fp32, dataset, precisions=a.precisions.split(","), split=a.split)
    lines = [f"{'precision':<10} {'accuracy':>9} {'vs fp32':>8}  file"]
    for p, v in r["variants"].items():
        lines.append(f"{p:<10} {100 * v['accuracy']:8.2f}% {v['delta_points']:+7.2f}  {v['onnx']}")
    _print(r, a.json, "\n".join(lines))


def cmd_build(a: argparse.Namespace) -> None:
    from trt.builder import build_engine

    engine = a.out or Path(a.onnx).with_suffix(".engine")

    def show(fraction: float, message: str) -> None:
        if not a.json:
            print(f"\r{100 * fraction:5.1f}% {message[:60]:<60}", end="", file=sys.stderr)

    m = build_engine(a.onnx, engine, min_batch=a.min_batch, opt_batch=a.opt_batch,
                     max_batch=a.max_batch, workspace_mb=a.workspace_mb,
                     timing_cache=a.timing_cache, progress=show)
    if not a.json:
        print(file=sys.stderr)
    _print(m, a.json, f"wrote {m['engine']} ({m['engine_size_bytes']:,} bytes, {m['precision']},"
           f" {m['library']} {m['version']}) in {m['build_time_s']:.2f} s")


def cmd_bench(a: argparse.Namespace) -> None:
    from trt.bench import format_table, run_bench

    batches = tuple(int(b) for b in a.batches.split(","))
    r = run_bench(a.run, batches=batches, seconds=a.seconds,
                  progress=None if a.json else (lambda m: print(m, file=sys.stderr)))
    if a.out:
        from engine.state.workspace import atomic_write_json

        atomic_write_json(a.out, r)
    _print(r, a.json, format_table(r))


def cmd_bundle(a: argparse.Namespace) -> None:
    from trt.bundle import make_bundle

    out = a.out or layout.bundle_path(a.run)
    r = make_bundle(a.run, out, variants=a.variants.split(","), engines=a.engine or [])
    _print(r, a.json, f"wrote {r['bundle']} ({r['size_bytes']:,} bytes): "
           + ", ".join(r["files"]))


def cmd_infer(a: argparse.Namespace) -> None:
    from trt.bundle import Bundle

    bundle = Bundle(a.bundle, prefer_tensorrt=not a.cpu)
    results = bundle.classify(a.images, top_k=a.top_k, digit=a.digit, polarity=a.polarity)
    for path, r in zip(a.images, results, strict=True):
        r["image"] = str(path)
    data = {"backend": bundle.backend, "model": bundle.model_file,
            "tensorrt_not_used": bundle.fallback_reason, "results": results}
    why = f" (TensorRT not used: {bundle.fallback_reason})" if bundle.fallback_reason else ""
    text = "\n".join(f"{r['image']}: {r['label']} ({100 * r['confidence']:.1f}%)"
                     for r in results) + f"\n[{bundle.backend}{why}]"
    _print(data, a.json, text)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m trt", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="export a run's model to ONNX and check it")
    p.add_argument("run", help="run directory or checkpoint")
    p.add_argument("--out", help="ONNX path (default RUN/exports/model.onnx)")
    p.add_argument("--opset", type=int, default=17)
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("variants", help="fp32/fp16/int8 ONNX graphs and their accuracy")
    p.add_argument("run")
    p.add_argument("--precisions", default="fp32,fp16,int8")
    p.add_argument("--dataset", help="dataset for calibration and accuracy (default: the run's)")
    p.add_argument("--split", default="test")
    p.set_defaults(fn=cmd_variants)

    p = sub.add_parser("build", help="build a TensorRT engine from an ONNX graph")
    p.add_argument("onnx")
    p.add_argument("--out", help="engine path (default: next to the ONNX file)")
    p.add_argument("--min-batch", type=int, default=1)
    p.add_argument("--opt-batch", type=int, default=8)
    p.add_argument("--max-batch", type=int, default=256)
    p.add_argument("--workspace-mb", type=int, default=1024)
    p.add_argument("--timing-cache", help="timing cache file, created or reused")
    p.set_defaults(fn=cmd_build)

    p = sub.add_parser("bench", help="inference latency/throughput per backend and batch")
    p.add_argument("run")
    p.add_argument("--batches", default="1,8,64,256")
    p.add_argument("--seconds", type=float, default=1.0, help="time per cell")
    p.add_argument("--out", help="write the results JSON here")
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("bundle", help="zip the model(s), engine(s), labels and preprocessing")
    p.add_argument("run")
    p.add_argument("--out", help="zip path (default RUN/exports/bundle.zip)")
    p.add_argument("--variants", default="fp32")
    p.add_argument("--engine", action="append", help="engine file to include (repeatable)")
    p.set_defaults(fn=cmd_bundle)

    p = sub.add_parser("infer", help="classify images with a bundle")
    p.add_argument("bundle")
    p.add_argument("images", nargs="+")
    p.add_argument("--digit", action=argparse.BooleanOptionalAction, default=None,
                   help="frame the ink like MNIST (default: as the model's contract says)")
    p.add_argument("--polarity", default="auto", choices=["auto", "invert", "as-is"])
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--cpu", action="store_true", help="use ONNX Runtime even on a GPU")
    p.set_defaults(fn=cmd_infer)

    for name in ("export", "variants", "build", "bench", "bundle", "infer"):
        sub.choices[name].add_argument("--json", action="store_true", help="print JSON")
    for name in WRITES:
        sub.choices[name].add_argument("--user", help="who asks (default: $STUDIO_USER); only "
                                       "a workspace job's owner may write into its folder")
    from trt.deploy_cli import add_parsers as add_deploy
    from trt.serve.cli import add_parser as add_serve

    add_serve(sub)
    add_deploy(sub)
    return ap


# Commands that write into a run folder, and the words for the owner check.
WRITES = {"export": "export", "variants": "export variants of", "build": "build engines for",
          "bench": "benchmark", "bundle": "bundle"}


def _check_owner(args: argparse.Namespace) -> None:
    """The CLI acts as --user / $STUDIO_USER with the dashboard's rule: a job in the
    workspace is written to by its owner only."""
    from engine.hosting.ownership import acting_user, check_run_write

    if args.command not in WRITES:
        return
    target = getattr(args, "run", None) or args.out or args.onnx
    check_run_write(target, acting_user(args.user), WRITES[args.command])


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        _check_owner(args)
        args.fn(args)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError, OSError) as e:
        message = str(e).strip().replace("\n", " ") or type(e).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0
