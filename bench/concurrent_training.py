"""Concurrent CPU work under the scheduler's thread budget (issue 15, item 1), in one run.

Real scheduler, real worker processes, LeNet on the MNIST sample split (8k train / 2k held out,
first 8,000 / last 2,000 images of ../shared/data/mnist-t10k), batch 64, on the CPU:

1. one training alone (the budget's default: it gets every core);
2. two trainings at once under the budget (each gets its share); target: their images/s
   together >= 0.9x of one alone;
3. the same two without the budget (the old behaviour: each worker sized for the whole
   machine, `cpu_threads` = 2x the cores, `threads_per_job` = the cores), the baseline;
4. one training beside a stream of evaluation tasks (one after another, each a worker process)
   and 10 canvas predictions per second in this process, through the dashboard's path
   (get_backend + classify, one interactive thread); target: its images/s drops <= 15%. Run
   with the default even share (the training gives a thread to each task while it runs) and
   with a fixed share (threads_per_job = cores // 2, a job never grows or shrinks), against
   one training alone in the same setting.

A training's images/s is the median of its epochs after the first (epoch 1 holds the pools'
warm-up). The rounds interleave the settings; the figures are the medians over rounds.
Writes bench/results/concurrent_training.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from engine import jobs  # noqa: E402
from engine.inference import backends  # noqa: E402
from engine.jobs.scheduler import ensure_scheduler, scheduler_status  # noqa: E402
from engine.processes import pid_alive  # noqa: E402
from engine.threads import usable_cores  # noqa: E402

CONFIG = {"dataset": "mnist-sample", "network": "lenet", "batch_size": 64, "lr": 0.01,
          "device": "cpu", "seed": 0}


def stop_scheduler(home: Path) -> None:
    status = scheduler_status(home)
    if status["alive"] and status.get("pid"):
        import os

        os.kill(status["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 30
        while pid_alive(status["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)


def with_scheduler(home: Path, **settings) -> None:
    stop_scheduler(home)
    ensure_scheduler(home, poll_s=0.2, gpus=0, idle_exit_s=600, **settings)


def wait_idle(home: Path, timeout: float = 900) -> None:
    """Until no job (training or task) is queued or running."""
    deadline = time.monotonic() + timeout
    while jobs.list_jobs(status=jobs.ACTIVE, kind=None, home=home):
        if time.monotonic() > deadline:
            raise TimeoutError("jobs still active after the benchmark's timeout")
        time.sleep(0.2)


def rate(home: Path, job_id: str) -> float:
    job = jobs.get_job(job_id, home, events=False)
    if job["status"] != "done":
        raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('message')}")
    rates = [m["images_per_s"] for m in job["metrics"][1:]] or [
        m["images_per_s"] for m in job["metrics"]]
    return statistics.median(rates)


def trainings(home: Path, count: int, epochs: int) -> list[float]:
    ids = [jobs.submit({**CONFIG, "epochs": epochs}, name=f"bench {i}", home=home,
                       start_scheduler=False) for i in range(count)]
    wait_idle(home)
    return [rate(home, i) for i in ids]


class Canvas:
    """10 predictions a second of a drawn digit, through the dashboard's path."""

    def __init__(self, checkpoint: Path, per_s: float = 10.0) -> None:
        from engine.inference import classify as cl
        from engine.threads import set_interactive_threads

        set_interactive_threads(1)  # as dashboard/app.py does
        self.cl = cl
        self.backend = backends.get_backend("pytorch-cpu", checkpoint)
        self.image = drawing()
        self.period = 1.0 / per_s
        self.done = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self.stop.is_set():
            self.cl.classify(self.backend, self.image, digit=True)
            self.done += 1
            next_t += self.period
            self.stop.wait(max(0.0, next_t - time.monotonic()))

    def __enter__(self) -> Canvas:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def drawing():
    """A white-on-black canvas stroke: a thick '1' in a 280x280 RGBA image, as the canvas
    sends it."""
    import numpy as np

    img = np.zeros((280, 280, 4), dtype=np.uint8)
    img[40:240, 125:155, :3] = 255
    img[..., 3] = 255
    return img


def beside_tasks(home: Path, epochs: int, evaluated: str) -> tuple[float, int, int]:
    """A training's images/s while evaluation tasks run one after another and the canvas
    predicts 10 times a second; returns (rate, evaluations run, canvas predictions)."""
    job_id = jobs.submit({**CONFIG, "epochs": epochs}, name="bench beside", home=home,
                         start_scheduler=False)
    evals = 0
    with Canvas(jobs.job_dir(evaluated, home) / "best.pt") as canvas:
        while jobs.get_job(job_id, home, metrics=False, events=False)["status"] in jobs.ACTIVE:
            task = jobs.submit_task("engine.evaluate", {"checkpoint": "best.pt"},
                                    parent=evaluated, home=home, start_scheduler=False)
            jobs.wait(task, timeout=120, home=home)
            evals += 1
    wait_idle(home)
    return rate(home, job_id), evals, canvas.done


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "concurrent_training.json"))
    a = ap.parse_args()
    from testkit.mnist import make_mnist_sample

    cores = usable_cores()
    budget = {}  # the default: cpu_threads = cores, even shares
    unbudgeted = {"cpu_threads": 2 * cores, "threads_per_job": cores}
    fixed = {"threads_per_job": max(1, cores // 2)}
    runs: dict[str, list[float]] = {k: [] for k in (
        "alone", "two_budget", "two_unbudgeted", "alone_fixed", "beside_even",
        "beside_fixed")}
    notes: dict[str, list[int]] = {"evaluations": [], "canvas_predictions": []}
    with tempfile.TemporaryDirectory() as tmp:
        home = make_mnist_sample(Path(tmp))
        try:
            for r in range(a.rounds):
                print(f"round {r + 1}/{a.rounds}", flush=True)
                with_scheduler(home, **budget)
                one = jobs.submit({**CONFIG, "epochs": a.epochs}, name="bench alone",
                                  home=home, start_scheduler=False)
                wait_idle(home)
                runs["alone"].append(rate(home, one))
                runs["two_budget"].append(sum(trainings(home, 2, a.epochs)))
                e_rate, evals, preds = beside_tasks(home, a.epochs + 2, one)
                runs["beside_even"].append(e_rate)
                notes["evaluations"].append(evals)
                notes["canvas_predictions"].append(preds)
                with_scheduler(home, **unbudgeted)
                runs["two_unbudgeted"].append(sum(trainings(home, 2, a.epochs)))
                with_scheduler(home, **fixed)
                runs["alone_fixed"].append(trainings(home, 1, a.epochs)[0])
                f_rate, evals, preds = beside_tasks(home, a.epochs + 2, one)
                runs["beside_fixed"].append(f_rate)
                print({k: [round(v) for v in vs] for k, vs in runs.items()}, flush=True)
        finally:
            stop_scheduler(home)
    med = {k: statistics.median(v) for k, v in runs.items()}
    rows = [
        ("one training alone (budget: all cores)", med["alone"], None, None),
        ("two at once, under the budget (total)", med["two_budget"], med["alone"], 0.9),
        ("two at once, no budget (old behaviour)", med["two_unbudgeted"], med["alone"], None),
        ("training beside evaluations + canvas (even share)", med["beside_even"], med["alone"],
         0.85),
        ("one alone, fixed share (cores // 2)", med["alone_fixed"], med["alone"], None),
        ("training beside evaluations + canvas (fixed share)", med["beside_fixed"],
         med["alone_fixed"], 0.85),
    ]
    print(f"\nLeNet, MNIST 8k/2k, batch 64, CPU, {cores} usable cores, {a.rounds} round(s); "
          "images/s (median of epochs 2+)")
    print(f"{'what':54} {'images/s':>9} {'baseline':>9} {'ratio':>6}  target")
    result_rows = []
    for name, value, base, target in rows:
        ratio = value / base if base else None
        met = target is not None and ratio >= target
        verdict = "" if target is None else f">= {target:.2f}: {'met' if met else 'NOT met'}"
        print(f"{name:54} {value:9.0f} {base or 0:9.0f} "
              f"{'' if ratio is None else f'{ratio:6.2f}'}  {verdict}")
        result_rows.append({"what": name, "images_per_s": value, "baseline": base,
                            "ratio": ratio, "target": target})
    print(f"evaluation tasks run beside the training: {notes['evaluations']}; canvas "
          f"predictions: {notes['canvas_predictions']}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "cores": cores,
        "python": platform.python_version(), "rounds": a.rounds, "epochs": a.epochs,
        "runs": runs, "rows": result_rows, **notes}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
