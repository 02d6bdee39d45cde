"""Deployment figures for LeNet on this machine's CPU, in one run:

1. LeNet trained 5 epochs on the MNIST sample split (first 8,000 of ../shared/data/mnist-t10k),
2. ONNX export checked against PyTorch on the 2,000 held-out images (max |logit diff|, top-1
   agreement), and the FP32/FP16/INT8 variants' held-out accuracy with ONNX Runtime,
3. TensorRT engine build time and size per precision (tensorrt or tensorrt_rtx; a refusal is
   reported with the builder's reason),
4. inference latency (p50/p90/p99) and throughput at batch 1, 8, 64, 256 for PyTorch eager and
   ONNX Runtime on the CPU; the baseline is PyTorch eager measured in the same run.

Target: ONNX Runtime batch-1 median latency at most 0.25x PyTorch eager's.
Writes bench/results/deploy_cpu.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from engine.state.workspace import atomic_write_json  # noqa: E402
from engine.training import TrainConfig, train  # noqa: E402
from testkit.mnist import MNIST_IMAGES, make_mnist_sample  # noqa: E402
from trt.bench import format_table, run_bench  # noqa: E402
from trt.builder import EngineBuildError, build_engine  # noqa: E402
from trt.onnx_export import export_onnx  # noqa: E402
from trt.variants import make_variants  # noqa: E402

TARGET = 0.25


def engines(variants: dict, out: Path) -> dict:
    results = {}
    for precision, v in variants.items():
        try:
            meta = build_engine(v["onnx"], out / f"{precision}.engine")
            results[precision] = {"status": "built", "build_time_s": meta["build_time_s"],
                                  "size_bytes": meta["engine_size_bytes"],
                                  "library": meta.get("library"),
                                  "library_version": meta.get("version")}
        except (EngineBuildError, ImportError) as e:
            results[precision] = {"status": "refused", "reason": str(e).splitlines()[0]}
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="time per benchmark cell")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "deploy_cpu.json"))
    a = ap.parse_args()
    if not MNIST_IMAGES.exists():
        print(f"skipped: {MNIST_IMAGES.parent} not found (real MNIST lives in ../shared/data)")
        return 0
    with tempfile.TemporaryDirectory(prefix="deploy-bench-") as d:
        tmp = Path(d)
        home = make_mnist_sample(tmp)
        run = tmp / "run"
        train(TrainConfig(dataset="mnist-sample", network="lenet", epochs=5, lr=0.01, seed=0),
              run, home=home)
        fp32 = run / "exports" / "model.onnx"
        check = export_onnx(run, fp32, check_images=2000, home=home)["check"]
        variants = make_variants(fp32, "mnist-sample", home=home)["variants"]
        built = engines(variants, run / "exports" / "engines")
        bench = run_bench(run, seconds=a.seconds, gpu=False)
    ratio = bench["ratios"]["onnxruntime-cpu_vs_pytorch-cpu_batch1_p50"]
    print(f"ONNX export: max |logit diff| {check['max_abs_diff']:.2e}, top-1 agreement "
          f"{check['top1_agreement']:.2%} on {check['images']} held-out images")
    for p, v in variants.items():
        print(f"{p}: held-out accuracy {v['accuracy']:.4f} ({v['delta_points']:+.2f} points)")
    for p, e in built.items():
        print(f"{p} engine: " + (f"{e['size_bytes']:,} bytes in {e['build_time_s']:.3f} s "
                                 f"({e['library']} {e['library_version']})"
                                 if e["status"] == "built" else f"refused: {e['reason']}"))
    print(format_table(bench))
    print(f"ONNX Runtime batch-1 p50 / PyTorch eager (baseline, same run): {ratio:.3f}x; "
          f"target <= {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'}")
    atomic_write_json(Path(a.out), {
        "date": time.strftime("%Y-%m-%d"), "command": "python bench/deploy_cpu.py",
        "export_check": check, "variants": variants, "engines": built, "bench": bench,
        "ort_vs_pytorch_batch1_p50": ratio, "target": TARGET, "target_met": ratio <= TARGET})
    return 0


if __name__ == "__main__":
    sys.exit(main())
