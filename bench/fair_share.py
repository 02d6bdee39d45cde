"""Fair share vs first in, first out for a class (issue 19's figure).

30 simulated students each submit 3 training jobs within the same minute (each student at a
random second of the minute, their 3 jobs a few seconds apart); N slots (GPUs) run one job
each. The figure: how long, from the start of that minute, until every student has a running
or finished job, with the queue in fair-share order vs strict FIFO (the same arrivals and
durations for both, per seed).

What runs is the real code, not a model of it: the real scheduler's `start_queued` (its
`engine.jobs.fair_share` order, `_pick` of a free GPU, `_launch`'s compare-and-set claim) on
a real SQLite workspace, on a simulated clock, with the worker processes replaced by simulated
durations: a job "runs" for its drawn duration and is then marked done in the store. The
scheduler is called at every arrival and every job end (the real one looks every poll_s = 1 s,
so real starts come up to a second later). A second, store-free pass drives the pure
`order_queue` alone and must give the same start times (checked).

Job durations are assumed, not measured: log-normal, median --median-s (default 120 s, a lab
step of LeNet on MNIST on a shared GPU), sigma 0.6 (90% within 0.37x-2.7x of the median),
clipped to 15 s-30 min.

    python bench/fair_share.py                 # 4 and 8 slots, 8 seeds each (~1-2 min)
    python bench/fair_share.py --slots 4 --seeds 3 --median-s 300

Writes bench/results/fair_share.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from engine.jobs.fair_share import FAIR, FIFO, order_queue  # noqa: E402
from engine.jobs.scheduler import Scheduler  # noqa: E402
from engine.jobs.settings import SchedulerSettings  # noqa: E402
from engine.state import store  # noqa: E402


@dataclass(frozen=True)
class SimJob:
    id: str
    owner: str
    submitted: float  # seconds into the minute
    duration: float


def draw_class(seed: int, students: int, jobs_each: int, median_s: float) -> list[SimJob]:
    rng = random.Random(seed)
    out = []
    for s in range(students):
        owner = f"student{s + 1:02d}"
        t = rng.uniform(0, 60 - 3 * jobs_each)
        for k in range(jobs_each):
            duration = min(1800.0, max(15.0, rng.lognormvariate(0, 0.6) * median_s))
            out.append(SimJob(f"{owner}-{k + 1}", owner, t, duration))
            t += rng.uniform(1, 3)  # the next click a second or two later
    return sorted(out, key=lambda j: (j.submitted, j.id))


class Clock:
    """time.time for the whole process while a simulation runs: the store's and the
    scheduler's timestamps are simulated seconds."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def simulated_time(clock: Clock) -> Iterator[None]:
    real = time.time
    time.time = clock
    try:
        yield
    finally:
        time.time = real


class _NoProcess:
    """Stands in for a worker process: the simulation ends the job itself."""

    pid = 1

    def __init__(self, *args, **kwargs) -> None:
        pass

    def poll(self) -> None:
        return None


def run_scheduler(jobs: list[SimJob], slots: int, order: str, home: Path) -> dict[str, float]:
    """The real scheduler on a real store, simulated clock: job id -> start time (s)."""
    import engine.jobs.scheduler as scheduler_module

    t0 = 1_000_000.0
    clock = Clock(t0)
    s = Scheduler(home, SchedulerSettings(cpu_slots=0, gpus=slots, queue_order=order),
                  on_demand=True)
    s.gpus, s.conn = slots, store.connect(home)
    s.log = lambda message: None  # its "job ... started" lines: 90 per run
    real_popen = scheduler_module.subprocess.Popen
    scheduler_module.subprocess.Popen = _NoProcess
    started: dict[str, float] = {}
    ends: dict[str, float] = {}
    by_id = {j.id: j for j in jobs}
    arrivals = list(jobs)
    try:
        with simulated_time(clock):
            while arrivals or len(started) < len(jobs) or ends:
                upcoming = [t0 + arrivals[0].submitted] if arrivals else []
                upcoming += list(ends.values())
                clock.now = min(upcoming)
                with store.transaction(s.conn):
                    while arrivals and t0 + arrivals[0].submitted <= clock.now:
                        j = arrivals.pop(0)
                        store.insert_job(s.conn, {
                            "id": j.id, "name": j.id, "owner": j.owner, "status": "queued",
                            "device": "auto", "config": {}, "created": clock.now,
                            "queued": clock.now})
                    for job_id, end in list(ends.items()):
                        if end <= clock.now:
                            store.update_job(s.conn, job_id, status="done", finished=end)
                            del ends[job_id]
                s.children.clear()
                s.start_queued()
                for row in store.list_jobs(s.conn, statuses=("running",)):
                    if row["id"] not in started:
                        started[row["id"]] = row["started"] - t0
                        ends[row["id"]] = row["started"] + by_id[row["id"]].duration
                if not arrivals and not ends and len(started) < len(jobs):
                    raise RuntimeError("jobs left queued with every slot free")
    finally:
        scheduler_module.subprocess.Popen = real_popen
        s.conn.close()
    return started


def run_policy(jobs: list[SimJob], slots: int, order: str) -> dict[str, float]:
    """The pure policy alone (order_queue), the same event loop: job id -> start time."""
    queued: list[dict] = []
    running: dict[str, float] = {}  # id -> end
    owner = {j.id: j.owner for j in jobs}
    last: dict[str, float] = {}
    started: dict[str, float] = {}
    arrivals = list(jobs)
    while arrivals or running:
        now = min(([arrivals[0].submitted] if arrivals else []) + list(running.values()))
        while arrivals and arrivals[0].submitted <= now:
            j = arrivals.pop(0)
            queued.append({"id": j.id, "owner": j.owner, "queued": j.submitted})
        for job_id, end in list(running.items()):
            if end <= now:
                del running[job_id]
        free = slots - len(running)
        placements = order_queue(queued, [{"owner": owner[i]} for i in running],
                                 order=order, last_served=last)
        for p in [p for p in placements if p.may_start][:max(0, free)]:
            job_id = p.job["id"]
            queued = [q for q in queued if q["id"] != job_id]
            started[job_id] = now
            last[owner[job_id]] = now
            running[job_id] = now + next(j.duration for j in jobs if j.id == job_id)
    return started


def served_times(jobs: list[SimJob], started: dict[str, float]) -> dict[str, float]:
    """Student -> when their first job started (s into the minute)."""
    first: dict[str, float] = {}
    for j in jobs:
        first[j.owner] = min(first.get(j.owner, float("inf")), started[j.id])
    return first


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--jobs-each", type=int, default=3)
    ap.add_argument("--slots", default="4,8", help="comma-separated slot counts (GPUs)")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--median-s", type=float, default=120.0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fair_share.json"))
    a = ap.parse_args(argv)
    wall = time.monotonic()
    rows = []
    print("Real scheduler (start_queued, fair_share order, _pick, _launch) on a real SQLite "
          "store, simulated clock and job durations (log-normal, median "
          f"{a.median_s:.0f} s); {a.students} students x {a.jobs_each} jobs in one minute; "
          f"{a.seeds} seeds. Time: seconds from the start of the minute.")
    print(f"{'slots':>5} | {'every student running or done: fair':>37} | {'fifo':>21} | "
          f"{'fifo/fair':>9} | {'mean first wait fair / fifo':>27} | all done fair / fifo")
    for slots in [int(x) for x in a.slots.split(",")]:
        result = {FAIR: [], FIFO: []}
        for seed in range(a.seeds):
            jobs = draw_class(seed, a.students, a.jobs_each, a.median_s)
            for order in (FAIR, FIFO):  # interleaved: same arrivals and durations
                with tempfile.TemporaryDirectory() as tmp:
                    started = run_scheduler(jobs, slots, order, Path(tmp) / "workspace")
                pure = run_policy(jobs, slots, order)
                if any(abs(pure[k] - started[k]) > 1e-6 for k in started):
                    raise SystemExit(f"the pure policy and the scheduler disagree (seed {seed},"
                                     f" {order}, {slots} slots)")
                first = served_times(jobs, started)
                waits = [first[s] - min(j.submitted for j in jobs if j.owner == s)
                         for s in first]
                result[order].append({
                    "all_served_s": max(first.values()), "mean_first_wait_s":
                    statistics.mean(waits), "makespan_s": max(
                        started[j.id] + j.duration for j in jobs)})
        med = {o: {k: statistics.median(r[k] for r in result[o]) for k in result[o][0]}
               for o in result}
        spread = {o: (min(r["all_served_s"] for r in result[o]),
                      max(r["all_served_s"] for r in result[o])) for o in result}
        ratio = med[FIFO]["all_served_s"] / med[FAIR]["all_served_s"]
        print(f"{slots:>5} | {med[FAIR]['all_served_s']:>8.0f} s (seeds {spread[FAIR][0]:.0f}-"
              f"{spread[FAIR][1]:.0f} s){'':>9} | {med[FIFO]['all_served_s']:>6.0f} s "
              f"({spread[FIFO][0]:.0f}-{spread[FIFO][1]:.0f} s) | {ratio:>8.1f}x | "
              f"{med[FAIR]['mean_first_wait_s']:>11.0f} s / {med[FIFO]['mean_first_wait_s']:.0f}"
              f" s | {med[FAIR]['makespan_s']:.0f} s / {med[FIFO]['makespan_s']:.0f} s")
        rows.append({"slots": slots, "median": med, "all_served_range_s": spread,
                     "fifo_over_fair": ratio, "runs": result})
    out = {"what": "time until every student has a running or finished job, fair share vs "
                   "FIFO", "how": "real scheduler start_queued on a real SQLite store, "
                                  "simulated clock and durations; cross-checked against the "
                                  "pure order_queue",
           "students": a.students, "jobs_each": a.jobs_each, "seeds": a.seeds,
           "median_duration_s": a.median_s, "duration_sigma": 0.6,
           "date": time.strftime("%Y-%m-%d"), "machine": platform.platform(),
           "wall_s": round(time.monotonic() - wall, 1), "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {a.out} ({out['wall_s']} s of wall time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
