"""Page latency for a class (issue 15, item 3): N browser sessions at once against one
dashboard, started as `make run` does (a hosted scheduler and `streamlit run dashboard/app.py`),
while a training job runs.

Each session (its own Chromium context, like a student's browser) opens, one after another:
Home, Job (the finished job's page), Classify (draws a "1" on the canvas and waits for the
prediction) and Compare (two finished jobs). A page's time runs from starting to load its URL
until it is settled: its own content is on screen and Streamlit shows no script running for
0.25 s; "first content" is when its own content first appears. The first N=1 pass after the
dashboard starts is the cold one; then N = 1, 5, 20 (warm) in turn.

Beside each pass, the running training job's images/s (from its progress: steps done over
time) in the 10 s before the pass (baseline) and during it, and the ratio.
Targets on the 2-vCPU machine: N=1 every page < 1.5 s warm and < 3 s cold, N=20 p95 < 5 s,
training images/s drop <= 25% during the N=20 pass.
Chromium: /usr/bin/chromium (or $CHROMIUM). Writes bench/results/page_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from engine import jobs  # noqa: E402
from testkit.browser import CHROMIUM, CHROMIUM_ARGS, dashboard  # noqa: E402
from testkit.page_timing import (  # noqa: E402
    draw_one,
    images_done,
    percentile,
    settled,
    train_rate,
)

TIMEOUT_S = 180  # a page not settled by then counts as infinitely slow (the p95 says "inf")


async def visit(context, url: str, marker: str, draw: bool = False) -> tuple[float, float]:
    """(first content s, settled s) of one page."""
    from playwright.async_api import TimeoutError as PageTimeout

    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_S * 1000)
    first = math.inf
    try:
        t0 = time.perf_counter()
        await page.goto(url)
        await page.get_by_text(marker).first.wait_for()
        first = time.perf_counter() - t0
        if draw:
            await draw_one(page)
        await asyncio.wait_for(settled(page), TIMEOUT_S)
        return first, time.perf_counter() - t0
    except (PageTimeout, asyncio.TimeoutError):
        return first, math.inf  # not settled within TIMEOUT_S: counted, shown as inf
    finally:
        await page.close()


async def session(browser, base: str, pages: dict[str, tuple[str, str]]) -> dict:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    out = {}
    try:
        for name, (path, marker) in pages.items():
            out[name] = await visit(context, base + path, marker, draw=name == "classify")
    finally:
        await context.close()
    return out


async def one_pass(base: str, pages: dict, n: int) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=os.environ.get("CHROMIUM", CHROMIUM),
                                          args=CHROMIUM_ARGS)
        try:
            return await asyncio.gather(*[session(browser, base, pages) for _ in range(n)])
        finally:
            await browser.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", default="1,5,20", help="comma-separated N")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "page_latency.json"))
    a = ap.parse_args()
    ns = [int(v) for v in a.sessions.split(",") if v.strip()]
    from testkit.mnist import make_mnist_sample

    with tempfile.TemporaryDirectory() as tmp:
        home = make_mnist_sample(Path(tmp)).resolve()
        env = {**os.environ, "STUDIO_HOME": str(home)}
        os.environ["STUDIO_HOME"] = str(home)
        sched = subprocess.Popen([sys.executable, "-m", "engine", "scheduler"], cwd=ROOT,
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base_cfg = {"dataset": "mnist-sample", "network": "lenet", "device": "cpu"}
            done = [jobs.submit({**base_cfg, "epochs": 1, "lr": lr}, name=f"lenet lr={lr}",
                                home=home, start_scheduler=False) for lr in (0.01, 0.05)]
            for job_id in done:
                assert jobs.wait(job_id, timeout=900, home=home)["status"] == "done"
            while jobs.list_jobs(status=jobs.ACTIVE, kind=None, home=home):  # evaluations
                time.sleep(0.5)
            running = jobs.submit({**base_cfg, "epochs": 500}, name="running", home=home,
                                  start_scheduler=False)
            while jobs.get_job(running, home, metrics=False, events=False)["progress"] is None \
                    or images_done(running, home)[0] == 0:
                time.sleep(0.5)
            pages = {"home": ("/", "Jobs"), "job": (f"/job?id={done[0]}", "lenet lr=0.01"),
                     "classify": ("/classify", "Draw something"),
                     "compare": (f"/compare?ids={done[0]}&ids={done[1]}", "Final metrics")}
            results = []
            with dashboard(home) as url:
                for label, n in [("cold", 1)] + [(f"N={n}", n) for n in ns]:
                    baseline = train_rate(running, home, seconds=10)
                    box: dict = {}
                    t0 = time.perf_counter()
                    during = train_rate(running, home, until=lambda n=n, box=box: box.update(
                        r=asyncio.run(one_pass(url, pages, n))))
                    wall = time.perf_counter() - t0
                    row = {"pass": label, "sessions": n, "wall_s": wall,
                           "train_baseline": baseline, "train_during": during,
                           "train_ratio": during / baseline if baseline else None, "pages": {}}
                    for name in pages:
                        first = [s[name][0] for s in box["r"]]
                        full = [s[name][1] for s in box["r"]]
                        row["pages"][name] = {
                            "first_p50": statistics.median(first), "p50": statistics.median(full),
                            "p95": percentile(full, 0.95), "max": max(full),
                            "timed_out": sum(math.isinf(v) for v in full)}
                    results.append(row)
                    print(json.dumps(row), flush=True)
            jobs.cancel(running, home=home)
        finally:
            from testkit.processes import stop

            stop(sched, home)  # and the workers of this run's workspace alone

    print("\nseconds to a settled page (first content p50 in brackets); training images/s "
          "beside it vs the 10 s before")
    names = list(results[0]["pages"])
    print(f"{'pass':8} " + " ".join(f"{n + ' p50/p95':>22}" for n in names)
          + f" {'train img/s':>12} {'baseline':>9} {'ratio':>6}")
    for row in results:
        cells = []
        for n in names:
            p = row["pages"][n]
            cells.append(f"{p['p50']:.2f}/{p['p95']:.2f} ({p['first_p50']:.2f})")
        print(f"{row['pass']:8} " + " ".join(f"{c:>22}" for c in cells)
              + f" {row['train_during']:12.0f} {row['train_baseline']:9.0f} "
              f"{row['train_ratio']:6.2f}")
    print("targets: N=1 < 1.5 s warm, < 3 s cold; N=20 p95 < 5 s; training drop <= 25%")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
                               "cpus": os.cpu_count(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
