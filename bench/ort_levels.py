"""ONNX Runtime's two graph optimization levels on this CPU, per model, and the one OnnxRunner
keeps: "extended" (the baseline) against "all" (which adds the NCHWc layout transforms of
convolutions), images/s at batch 1, 8 and 32, the model alone, in turns.

Neither wins everywhere, which is why trt.runtime.fastest_cpu_session probes each model.
Models: LeNet at 28x28, ResNet-18 at 32x32 and 224x224 (random weights: the cost of a forward
pass does not depend on them). Writes bench/results/ort_levels.json.

    python bench/ort_levels.py [--seconds 0.7] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.networks import build_network
from engine.networks.zoo import zoo_spec
from engine.state.workspace import atomic_write_json
from trt.bench import sample_calls
from trt.onnx_export import onnx_bytes
from trt.runtime import ORT_LEVELS, OnnxRunner, ort_session_options

ROOT = Path(__file__).resolve().parent.parent

MODELS = (("lenet", 28), ("resnet18", 32), ("resnet18", 224))
BATCHES = (1, 8, 32)


def rate(session: ort.InferenceSession, x: np.ndarray, seconds: float) -> float:
    """Images/s over the timed calls (trt.bench's loop: warm-up, then `seconds` of calls)."""
    times = sample_calls(lambda: session.run(None, {"input": x}), seconds, min_reps=1)
    return len(times) * len(x) / sum(times)


def measure(network: str, size: int, seconds: float, rounds: int) -> dict:
    model = onnx_bytes(build_network(zoo_spec(network), (1, size, size), 10).eval(),
                       (1, size, size), 17)
    sessions = {level: ort.InferenceSession(model, ort_session_options(level=level),
                                            providers=["CPUExecutionProvider"])
                for level in ORT_LEVELS}
    rows = {}
    for batch in BATCHES:
        x = np.random.default_rng(0).standard_normal((batch, 1, size, size)).astype(np.float32)
        rates: dict[str, list[float]] = {level: [] for level in sessions}
        for _ in range(rounds):
            for level, session in sessions.items():
                rates[level].append(rate(session, x, seconds))
        rows[str(batch)] = {level: statistics.median(r) for level, r in rates.items()}
    return {"network": network, "size": size, "batches": rows,
            "kept": OnnxRunner(model).level}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.7, help="per level, batch and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "ort_levels.json"))
    a = ap.parse_args()
    results = [measure(n, s, a.seconds, a.rounds) for n, s in MODELS]
    print(f"onnxruntime {ort.__version__}, {os.cpu_count()} CPUs; images/s, median of "
          f"{a.rounds} rounds in turns")
    print(f"{'model':<16} {'batch':>5} {'extended':>10} {'all':>10} {'all/extended':>13}  kept")
    for r in results:
        for batch, cell in r["batches"].items():
            print(f"{r['network'] + ' ' + str(r['size']):<16} {batch:>5} "
                  f"{cell['extended']:10,.0f} {cell['all']:10,.0f} "
                  f"{cell['all'] / cell['extended']:13.2f}  {r['kept']}")
    atomic_write_json(a.out, {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
                   "(shared)",
        "onnxruntime": ort.__version__, "command": "python bench/ort_levels.py "
        + " ".join(sys.argv[1:]), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
