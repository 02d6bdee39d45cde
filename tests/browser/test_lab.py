"""The guided lab in a real browser, as a student with the offline sample and a few photos
does it: sign in, open Lab, upload photos of digits (labels from their names), run the four
experiments, and see the comparison table and the chart of board scores. Counts the clicks
(the issue's target: under 25 for the whole lab)."""

from __future__ import annotations

import contextlib
import shutil

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from engine import jobs
from engine.lab import guide as lab
from testkit.browser import browser_page, dashboard, need_chromium, publish, screenshot, sign_in
from testkit.digit_images import digit_photo

pytestmark = pytest.mark.browser
EPOCHS = "2"  # short runs: the machine is shared (a student keeps the default)


def open_expander(page, expander) -> int:
    """Open an expander; returns the clicks it took. A click that lands while the page is
    still redrawing can be lost with the element it hit: then click again."""
    for attempt in range(1, 6):
        expander.locator("summary").click()
        for _ in range(10):
            page.wait_for_timeout(300)
            if expander.locator("details").get_attribute("open") is not None:
                return attempt
    raise AssertionError("the expander did not open")


def run_step(page, n: int) -> int:
    """Click "Run step n" until its job exists; returns the clicks it took. While jobs run the
    steps' part of the page redraws every 2 s, and a click landing mid-redraw can be lost."""
    key = lab.STEP_KEYS[n - 1]
    for attempt in range(1, 4):
        page.get_by_role("button", name=f"Run step {n}", exact=True).click()
        for _ in range(60):
            page.wait_for_timeout(500)
            if any(s.job for s in lab.lab_state("alice") if s.step.key == key):
                page.get_by_text(f"Step {n} queued").wait_for(timeout=60_000)
                return attempt
    raise AssertionError(f"step {n} did not start")


def test_guided_lab_end_to_end(jobs_home, tmp_path):
    need_chromium()
    shutil.rmtree(jobs_home / "datasets")  # start from nothing, as a student would
    (jobs_home / "studio.db").unlink()
    photos = []
    for d, fmt in ((1, "PNG"), (3, "JPEG"), (4, "PNG"), (7, "JPEG")):
        path = tmp_path / f"{d}_photo.{fmt.lower().replace('jpeg', 'jpg')}"
        path.write_bytes(digit_photo(d, size=120, fmt=fmt))
        photos.append(str(path))

    clicks = 0
    with dashboard(jobs_home) as url, browser_page() as page:
        page.goto(url)
        sidebar = sign_in(page)
        clicks += 1
        sidebar.get_by_role("link", name="Lab", exact=True).click()
        clicks += 1
        page.get_by_role("button", name="Run step 1", exact=True).wait_for()

        # A few photos onto the lab board (the file chooser counts as a click).
        page.locator("input[type=file]").first.set_input_files(photos)
        clicks += 1
        page.get_by_role("button", name="Add 4 images to the board").click()
        clicks += 1
        page.get_by_text("Added 4 images").wait_for()

        # Shorter runs than the defaults: open each step's settings and change the epochs.
        settings = page.get_by_test_id("stExpander").filter(
            has_text="Settings (pre-filled; change anything)")
        # Each step's caption says what Run will use, as the server has it: wait for it, so
        # an edit that a redraw swallowed is seen (and typed again) before running.
        for n in range(4):
            clicks += open_expander(page, settings.nth(n))
            epochs = settings.nth(n).get_by_label("Epochs", exact=True)
            for _ in range(3):
                epochs.fill(EPOCHS)
                epochs.press("Enter")
                with contextlib.suppress(PlaywrightTimeout):
                    page.get_by_text(f"for {EPOCHS} epochs").nth(n).wait_for(timeout=20_000)
                    break
            else:
                raise AssertionError(f"step {n + 1}'s epochs did not reach the server")

        for n in range(1, 5):
            clicks += run_step(page, n)

        page.get_by_text("4 of 4 experiments done").wait_for(timeout=600_000)
        # The last job's end redraws the whole page: wait for the old parts to go.
        page.get_by_text("Still to come").wait_for(state="detached", timeout=60_000)
        page.get_by_text("Board score per experiment").first.wait_for(timeout=60_000)
        page.wait_for_timeout(2000)  # let the chart draw
        publish(screenshot(page, "lab-done"), "lab")

        assert page.locator("[data-testid='stDataFrame']").count() >= 2  # scores, table
        assert page.get_by_text("done · held-out accuracy").count() == 4

    assert clicks < 25, clicks
    states = lab.lab_state("alice")
    assert [s.status for s in states] == ["done"] * 4
    assert [jobs.get_job(s.job["id"], metrics=False, events=False)["config"]["epochs"]
            for s in states] == [2] * 4
    comparison = lab.compare("alice")
    assert comparison.score.columns == [lab.step_column(s.step) for s in states]
    assert [p["label"] for p in comparison.score.probes] == ["1", "3", "4", "7"]
    assert len(comparison.chart_rows()) == 4
