"""What the Ray backend of the queue costs a job: submit to first metric, local mode against
the Ray backend, for the same tiny job (LeNet, 1 epoch of the offline digits sample).

Two workspaces with the same dataset, each with its own hosted scheduler (same poll interval):
one in local mode (a worker process per job), one with STUDIO_CLUSTER set to a Ray cluster
simulated here (`ray.cluster_utils.Cluster`: a head with no CPUs for jobs and one worker node
with 1 CPU, so the job crosses to another node as it would on a real cluster). Rounds
interleave the modes (A B, then B A, ...) so load on the machine hits both alike; each job
ends (and so does the evaluation it queues) before the next is submitted. Times, per job:
submit -> first progress report in SQLite, and submit -> first epoch's metrics row. The first
round is warm-up (Ray starts its worker process and caches the dataset on the node; it is
printed, not counted). Medians of the rest, and the ratio Ray / local.
Writes bench/results/ray_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from engine import jobs  # noqa: E402
from engine.datasets import DatasetOptions, create_dataset  # noqa: E402
from engine.state import store  # noqa: E402
from testkit import waiting  # noqa: E402
from testkit.processes import stop  # noqa: E402

JOB = {"dataset": "digits", "network": "lenet", "lr": 0.01, "device": "cpu", "epochs": 1,
       "batch_size": 64}
MIB = 1024 * 1024


def wait_until(pred, timeout: float, what: str):
    # polled every 10 ms: the figure is a latency of about a second
    return waiting.wait_until(pred, timeout, what, step=0.01)


def start_scheduler(home: Path, cluster: str | None, poll: str) -> subprocess.Popen:
    env = {**os.environ, "STUDIO_HOME": str(home), "STUDIO_SCHEDULER_POLL": poll,
           "STUDIO_GPUS": "0", "STUDIO_CPU_SLOTS": "1"}
    env.pop("STUDIO_CLUSTER", None)
    if cluster:
        env["STUDIO_CLUSTER"] = cluster
    log = open(home / "scheduler.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "engine.jobs"], cwd=home, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ready = "Ray cluster at" if cluster else "up:"
    wait_until(lambda: ready in (home / "scheduler.log").read_text() or proc.poll() is not None,
               120, "the scheduler to start", 0.1)
    if proc.poll() is not None:
        raise RuntimeError((home / "scheduler.log").read_text()[-1000:])
    return proc


def one_job(home: Path) -> dict[str, float]:
    """Submit the job, time its first progress report and first metrics row, wait for the
    workspace to go idle (the job and the evaluation it queues)."""
    with store.opened(home) as conn:
        t0 = time.perf_counter()
        job_id = jobs.submit(JOB, name="overhead", home=home, start_scheduler=False)

        def progressed():
            row = conn.execute("SELECT progress FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return row and row[0] and (json.loads(row[0]) or {}).get("step")

        wait_until(progressed, 300, "a first progress report")
        t_progress = time.perf_counter() - t0
        wait_until(lambda: conn.execute("SELECT 1 FROM metrics WHERE job = ?",
                                        (job_id,)).fetchone(), 300, "a first metrics row")
        t_metric = time.perf_counter() - t0
        wait_until(lambda: not store.count_jobs(conn, ("queued", "running")), 300,
                   "the workspace to go idle", 0.1)
        job = store.get_job(conn, job_id)
        if job["status"] != "done":
            raise RuntimeError(f"job {job_id} ended {job['status']}: {job['message']}")
    return {"first_progress_s": t_progress, "first_metric_s": t_metric}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="measured rounds (plus 1 warm-up)")
    ap.add_argument("--poll", default="0.2", help="both schedulers' poll interval, seconds")
    a = ap.parse_args(argv)
    from ray.cluster_utils import Cluster

    base = Path(tempfile.mkdtemp(prefix="ray-overhead-"))
    homes = {"local": base / "local", "ray": base / "ray"}
    create_dataset("digits", "digits-sample", None, DatasetOptions(val_percent=10.0),
                   home=homes["local"])
    shutil.copytree(homes["local"], homes["ray"])
    os.environ["STUDIO_NODE_CACHE"] = str(base / "node-cache")
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "object_store_memory": 80 * MIB})
    cluster.add_node(num_cpus=1, object_store_memory=80 * MIB)
    cluster.wait_for_nodes()
    procs = {"local": start_scheduler(homes["local"], None, a.poll),
             "ray": start_scheduler(homes["ray"], cluster.address, a.poll)}
    rows: list[dict] = []
    try:
        for r in range(a.rounds + 1):
            order = ["local", "ray"] if r % 2 == 0 else ["ray", "local"]
            for mode in order:
                t = one_job(homes[mode])
                rows.append({"round": r, "mode": mode, **t})
                print(f"round {r}{' (warm-up)' if r == 0 else ''} {mode:5s}: first progress "
                      f"{t['first_progress_s']:.2f} s, first metric {t['first_metric_s']:.2f} s",
                      flush=True)
    finally:
        for p in procs.values():
            stop(p)
        cluster.shutdown()
    measured = [r for r in rows if r["round"] > 0]
    med = {(m, k): statistics.median(r[k] for r in measured if r["mode"] == m)
           for m in ("local", "ray") for k in ("first_progress_s", "first_metric_s")}
    print(f"\n{'submit to':22s} {'local (baseline)':>17s} {'Ray backend':>12s} {'ratio':>7s}")
    summary = {}
    for k, label in (("first_progress_s", "first progress report"),
                     ("first_metric_s", "first metrics row")):
        ratio = med[("ray", k)] / med[("local", k)]
        summary[k] = {"local": med[("local", k)], "ray": med[("ray", k)], "ratio": ratio}
        print(f"{label:22s} {med[('local', k)]:16.2f}s {med[('ray', k)]:11.2f}s {ratio:6.2f}x")
    print(f"(medians of {a.rounds} interleaved rounds after 1 warm-up; scheduler poll {a.poll} s;"
          f" load average {os.getloadavg()[0]:.1f})")
    out = ROOT / "bench" / "results" / "ray_overhead.json"
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg()[0], "job": JOB,
        "poll_s": float(a.poll), "rounds": rows, "median": summary}, indent=2))
    shutil.rmtree(base, ignore_errors=True)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
