"""How a training job's speed falls when another process takes one of the cores (issue 28).

Why the dashboard's stress load costs training more than its CPU share: torch's OpenMP threads
meet at a barrier after every parallel operator, so when the kernel preempts one of them the
others wait for it. This trains LeNet (the real zoo network, batch 64, random 28x28 images) for
--seconds with 2 torch threads and with 1, sized as the scheduler sizes a worker's pools
(engine.threads: passive OpenMP waiting unless OMP_WAIT_POLICY says otherwise), first alone
(the baseline, measured in the same run) and then beside a one-thread busy loop standing in
for the dashboard server, at each niceness of --nice. Prints images/s and the ratio to the
2-thread job alone.

    python bench/cpu_contention.py                     # ~1 min on 2 cores
    python bench/cpu_contention.py --nice 0,10,19 --seconds 8

Writes bench/results/cpu_contention.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _burn(nice: int) -> None:
    """One thread that never sleeps, at the given niceness."""
    os.nice(nice)
    while True:
        pass


def train_rate(threads: int, seconds: float) -> float:
    """Images/s of LeNet training steps on `threads` torch threads, after a short warm-up."""
    import torch

    from engine.networks import build_network, zoo_spec
    from engine.threads import use_threads

    use_threads(threads, interop=None)
    model = build_network(zoo_spec("lenet"), (1, 28, 28), 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(20):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 64
    return n / (time.perf_counter() - t0)


def beside(nice: int | None, threads: int, seconds: float) -> float:
    """train_rate with a busy loop at `nice` running beside it (None: alone)."""
    if nice is None:
        return train_rate(threads, seconds)
    burner = multiprocessing.get_context("spawn").Process(target=_burn, args=(nice,), daemon=True)
    burner.start()
    try:
        time.sleep(0.5)
        return train_rate(threads, seconds)
    finally:
        burner.kill()
        burner.join()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nice", default="0,10,19", help="comma-separated niceness of the busy loop")
    ap.add_argument("--seconds", type=float, default=6.0, help="seconds of training per figure")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "cpu_contention.json"))
    a = ap.parse_args()
    from engine.threads import thread_env

    os.environ.update(thread_env(2))  # before torch loads, as for a worker
    nices = [int(v) for v in a.nice.split(",") if v.strip()]
    baseline = beside(None, 2, a.seconds)
    print(f"baseline: 2 threads alone {baseline:.0f} img/s", flush=True)
    rows = []
    for threads in (2, 1):
        for nice in [None, *nices]:
            rate = baseline if (threads, nice) == (2, None) else beside(nice, threads, a.seconds)
            label = "alone" if nice is None else f"beside a busy loop at nice {nice}"
            rows.append({"threads": threads, "busy_loop_nice": nice, "img_per_s": rate,
                         "ratio": rate / baseline})
            print(f"{threads} thread(s), {label}: {rate:.0f} img/s, {rate / baseline:.2f}x",
                  flush=True)
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
           "command": "python bench/cpu_contention.py " + " ".join(sys.argv[1:]),
           "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "seconds": a.seconds, "rows": rows}
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
