"""The Evaluation tab's reliability diagram in a real browser (headless Chromium), for a job
calibrated by temperature scaling: ECE before and after, and both diagrams drawn."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine import jobs
from engine.evaluation.evaluate import calibrate_job
from testkit.browser import browser_page, dashboard, need_chromium, screenshot, sign_in
from testkit.finished_jobs import finished_job

pytestmark = pytest.mark.browser


def test_reliability_diagram_before_and_after_temperature_scaling(jobs_home):
    need_chromium()
    job_id = finished_job(jobs_home)
    result = calibrate_job(job_id, home=jobs_home)
    cal = jobs.job_evaluations(job_id)[0]["calibration"]
    with dashboard(jobs_home) as url, browser_page(height=1600) as page:
        page.goto(f"{url}/job?id={job_id}")
        sign_in(page)
        page.get_by_role("tab", name="Evaluation").click()
        panel = page.get_by_role("tabpanel", name="Evaluation")
        panel.get_by_text("ECE before").wait_for(timeout=120_000)
        assert panel.get_by_text(f"{cal['ece_raw']:.2%}").first.is_visible()
        assert panel.get_by_text(f"{result['temperature']:.3f}").first.is_visible()
        # The heatmap is the tab's first chart, the reliability diagrams its second.
        diagram = panel.get_by_test_id("stVegaLiteChart").nth(1)
        diagram.locator("canvas, svg").first.wait_for()
        diagram.scroll_into_view_if_needed()
        page.wait_for_timeout(1500)  # let vega draw
        box = diagram.bounding_box()
        assert box["width"] > 500 and box["height"] > 200  # two panels side by side
        rgb = np.asarray(Image.open(io.BytesIO(diagram.screenshot())).convert("RGB")).astype(int)
        coloured = np.abs(rgb[:, :, 0] - rgb[:, :, 2]) > 60  # red or blue bars, not text
        half = rgb.shape[1] // 2
        assert coloured[:, :half].sum() > 200 and coloured[:, half:].sum() > 200  # both drawn
        screenshot(page, "calibration-01")
