"""Classify in a real browser with a photo (issue 14) and the canvas toolbar (issue 13, item 11):
upload a photo-like JPEG through the file picker and see the crop box drawn on it, the cleaned
page, the 28x28 the network sees and the polarity decision; the canvas's toolbar, shown on
hover, leaves the stroke-width slider uncovered (headless Chromium)."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from engine.images.framing import frame_digit
from testkit.browser import (
    browser_page,
    dashboard,
    need_chromium,
    open_classify,
    publish,
    screenshot,
)
from testkit.finished_jobs import trained_job
from tests.dashboard.test_classify_photos import photo_of_a_one

pytestmark = pytest.mark.browser


def overlaps(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def red_pixels(png: bytes) -> int:
    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(((a[:, :, 0] > 180) & (a[:, :, 1] < 90) & (a[:, :, 2] < 90)).sum())


@pytest.fixture
def trained_home(jobs_home, digits_home):
    trained_job(jobs_home)
    yield jobs_home
    shutil.rmtree(jobs_home / "jobs", ignore_errors=True)


def test_photo_upload_shows_crop_box_and_what_the_network_sees(trained_home):
    need_chromium()
    photo = photo_of_a_one(seed=2)
    framed = frame_digit(Image.open(io.BytesIO(photo)))
    with dashboard(trained_home) as url, browser_page() as page:
        page.goto(url)
        canvas = open_classify(page)
        # Issue 13, item 11: the toolbar appears above the canvas on hover, over blank room.
        canvas.hover()
        toolbar = page.locator(".dc-toolbar").first
        page.wait_for_function(
            "el => getComputedStyle(el).opacity === '1'", arg=toolbar.element_handle())
        page.wait_for_timeout(400)  # its slide-up transition
        slider = page.get_by_test_id("stSlider").first
        assert not overlaps(toolbar.bounding_box(), slider.bounding_box()), (
            toolbar.bounding_box(), slider.bounding_box())
        screenshot(page, "classify-03-toolbar")

        page.get_by_role("tab", name="Upload").click()
        page.locator("input[type=file]").first.set_input_files(
            files=[{"name": "photo-of-a-1.jpg", "mimeType": "image/jpeg", "buffer": photo}])
        page.get_by_text("Original and crop box").wait_for()
        page.get_by_text("Cleaned page").wait_for()
        page.get_by_text("What the network sees").wait_for()
        page.get_by_text("28x28 input").wait_for()
        page.get_by_text("Polarity auto: dark ink").wait_for()
        assert page.get_by_test_id("stMetricValue").first.inner_text().strip() == "1"

        # The crop box is drawn in red on the original: find it in the page's pixels.
        images = page.get_by_test_id("stImage")
        original = images.first
        original.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        assert red_pixels(original.screenshot()) > 50
        h, w = Image.open(io.BytesIO(photo)).size[::-1]
        top, left, bottom, right = framed.box
        page.get_by_text(f"{w}x{h}; the digit: rows {top}-{bottom}, columns {left}-{right}"
                         ).wait_for()
        shot = screenshot(page, "classify-04-photo")

        # As the network was trained: no inversion, and the page says so.
        page.get_by_text("as the network was trained (as-is)").click()
        page.get_by_text("Polarity as-is: dark ink").wait_for()
        screenshot(page, "classify-05-photo-as-is")
    publish(shot, "classify-photo")
