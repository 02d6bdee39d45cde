"""What a newcomer does, in a real browser: open the app, sign in, create the offline dataset,
train LeNet for 2 epochs, and watch the job finish with charts that have points."""

from __future__ import annotations

import shutil

import pytest

from engine import jobs
from testkit.browser import browser_page, dashboard, need_chromium, publish, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_newcomer_trains_lenet(jobs_home):
    need_chromium()
    shutil.rmtree(jobs_home / "datasets")  # start from nothing: the newcomer makes the dataset
    (jobs_home / "studio.db").unlink()
    with dashboard(jobs_home) as url, browser_page() as page:
        page.goto(url)
        sidebar = sign_in(page)  # click 1
        screenshot(page, "01-home")

        sidebar.get_by_role("link", name="Datasets").click()  # click 2
        page.get_by_role("button", name="Create dataset").click()  # click 3
        page.get_by_text("Images per class and split").wait_for(timeout=120_000)
        screenshot(page, "02-dataset")

        sidebar.get_by_role("link", name="New model").click()  # click 4
        epochs = page.get_by_label("Epochs", exact=True)
        epochs.fill("2")
        epochs.press("Enter")
        page.get_by_role("button", name="Submit").click()  # click 5
        page.get_by_text("Held-out (").first.wait_for(timeout=240_000)
        page.locator("[data-testid='stVegaLiteChart']").first.wait_for()
        page.wait_for_timeout(1500)  # let the charts draw
        shot = screenshot(page, "03-job-done")

        [job] = jobs.list_jobs()
        done = jobs.get_job(job["id"])
        assert done["status"] == "done" and done["owner"] == "alice"
        assert [m["epoch"] for m in done["metrics"]] == [1, 2]
        # Loss, accuracy, lr, throughput, per-class accuracy; then the evaluation's heatmap
        # when the evaluation queued at the end of training has finished.
        assert page.locator("[data-testid='stVegaLiteChart']").count() in (5, 6)
        # The loss chart has one point per epoch and series (vega renders marks as paths).
        assert page.get_by_text("done").first.is_visible()
    publish(shot, "job")
