"""Classify in a real browser: draw a digit with the mouse on the real canvas, see the prediction,
keep it on a probe board, and find it in the board's comparison table (headless Chromium)."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from engine import jobs
from engine.evaluation import probes
from testkit.browser import (
    browser_page,
    dashboard,
    need_chromium,
    open_classify,
    publish,
    screenshot,
)

pytestmark = pytest.mark.browser


def draw_stroke(page, canvas, points: list[tuple[float, float]]) -> None:
    """Press, drag through the points (fractions of the canvas box), release: one stroke."""
    box = canvas.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=12)
    page.mouse.up()


def test_draw_classify_and_board(jobs_home):
    need_chromium()
    job_id = jobs.submit({"dataset": "digits", "network": "lenet", "epochs": 2}, owner="alice",
                         name="lenet-2")
    assert jobs.wait(job_id, timeout=300)["status"] == "done"
    with dashboard(jobs_home) as url, browser_page() as page:
        page.goto(url)
        canvas = open_classify(page)
        draw_stroke(page, canvas, [(0.5, 0.15), (0.5, 0.5), (0.5, 0.85)])  # a "1"
        page.get_by_text("What the network sees").wait_for()
        prediction = page.get_by_test_id("stMetricValue").first.inner_text()
        assert re.fullmatch(r"\d", prediction.strip()), prediction
        page.wait_for_timeout(1000)  # let the bar chart draw
        shot = screenshot(page, "classify-01-drawn")
        page.get_by_text("Inside the model").click()
        page.get_by_text("Activation statistics per layer").wait_for()
        page.get_by_text("First-layer filters").wait_for()
        screenshot(page, "classify-01b-inside")

        page.get_by_label("New board name").fill("browser board")
        page.get_by_role("button", name="Add to probe board").click()
        page.get_by_text("Added to board").wait_for()
        [board] = probes.list_boards("alice")
        assert board["name"] == "browser board" and board["probes"] == 1
        [probe] = probes.list_probes(board["id"], "alice")
        assert probe["polarity"] == "as-is"
        assert Image.open(io.BytesIO(probe["image"])).size == (280, 280)

        page.get_by_test_id("stSidebar").get_by_role("link", name="Probe boards").click()
        page.get_by_role("button", name="Download CSV").wait_for()
        page.locator("[data-testid='stDataFrame']").first.wait_for()
        page.wait_for_timeout(1000)
        screenshot(page, "classify-02-board")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download CSV").click()
        csv = download.value.path().read_text()
        lines = csv.strip().splitlines()
        assert lines[0] == "image,label,lenet-2"
        assert re.fullmatch(rf"#{probe['id']},{probe['label']},\d : \d+\.\d%", lines[1]), lines
        assert re.fullmatch(r"score,,[01]/1", lines[-1]), lines
    publish(shot, "classify")

