"""Timing pages and training for the dashboard's benchmarks (bench/page_latency.py,
bench/server_cost.py): a percentile, a Chromium page settled (no Streamlit script running for
SETTLE_S), a "1" drawn on the Classify canvas, and a running job's training speed."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

from engine import jobs

SETTLE_S = 0.25
RUNNING = '[data-testid^="stStatusWidgetRunning"]'
TRAIN_IMAGES = 7200  # the MNIST sample split's training part (8,000 less 10% validation)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    if k == lo or math.isinf(ordered[lo]):
        return ordered[lo]
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def settled(page) -> None:
    """No Streamlit script running for SETTLE_S in a row."""
    quiet_since = None
    while True:
        running = await page.locator(RUNNING).count()
        now = time.perf_counter()
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= SETTLE_S:
            return
        await asyncio.sleep(0.05)


async def draw_one(page) -> None:
    canvas = page.locator("canvas.upper-canvas").first
    await canvas.wait_for()
    box = await canvas.bounding_box()
    x = box["x"] + box["width"] / 2
    await page.mouse.move(x, box["y"] + 0.15 * box["height"])
    await page.mouse.down()
    await page.mouse.move(x, box["y"] + 0.85 * box["height"], steps=12)
    await page.mouse.up()
    await page.get_by_text("What the network sees").first.wait_for()


def images_done(job_id: str, home: Path) -> tuple[float, float]:
    """(images trained so far, time of that report) of a running job: finished epochs (its
    metrics rows) times the training images, plus the steps of the epoch under way."""
    job = jobs.get_job(job_id, home, events=False)
    p = job["progress"] or {}
    batch = job["config"]["batch_size"]
    per_epoch = TRAIN_IMAGES
    # Mid-epoch reports carry the step; the report written at an epoch's end does not.
    step = (p.get("step") or 0) if p.get("steps") else 0
    return len(job["metrics"]) * per_epoch + step * batch, p.get("time") or 0.0


def train_rate(job_id: str, home: Path, seconds: float | None = None, until=None) -> float:
    """Images/s of the running job over `seconds`, or until `until()` is done."""
    n0, t0 = images_done(job_id, home)
    if until is None:
        time.sleep(seconds)
    else:
        until()
    time.sleep(0.6)  # let the worker's next progress report (every 0.5 s) land
    n1, t1 = images_done(job_id, home)
    return (n1 - n0) / max(t1 - t0, 1e-9)
