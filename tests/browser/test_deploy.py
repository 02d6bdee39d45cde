"""The Deploy page in a real browser (headless Chromium): export a finished job to ONNX, see
the check and the precision variants, build TensorRT engines with tensorrt_rtx, see the table.
Each step runs as a job in a real worker process."""

from __future__ import annotations

import json

import pytest

from engine import jobs
from testkit.browser import browser_page, dashboard, need_chromium, publish, screenshot, sign_in
from testkit.finished_jobs import finished_job

pytestmark = pytest.mark.browser


def test_export_then_build(jobs_home):
    need_chromium()
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed")
    job_id = finished_job(jobs_home, evaluate=False)
    with dashboard(jobs_home) as url, browser_page(height=1600) as page:
        page.goto(f"{url}/deploy?id={job_id}")
        sign_in(page)
        build = page.get_by_role("button", name="Build engines")
        assert build.is_disabled()  # nothing to build from before the export

        page.get_by_role("button", name="Export", exact=True).click()
        page.get_by_text("Top-1 agreement").wait_for(timeout=120_000)
        assert page.get_by_text("100.00%").first.is_visible()
        variants = page.get_by_test_id("stDataFrame").first
        variants.wait_for()

        build.click()
        # The engines table (a second data frame, drawn on a canvas) appears once they are built.
        page.get_by_test_id("stDataFrame").nth(1).wait_for(timeout=120_000)
        page.wait_for_timeout(1000)  # let the tables draw
        shot = screenshot(page, "deploy-01-built")
        assert page.get_by_role("button", name="Benchmark").is_enabled()
    engines = json.loads((jobs.job_dir(job_id) / "exports" / "engines.json").read_text())
    assert {p: e["status"] for p, e in engines.items()} == {
        "fp32": "built", "fp16": "built", "int8": "built"}  # all three chosen by default
    publish(shot, "deploy")
