"""Compare in a real browser, where a sweep lands when it is submitted: the page follows its
queued and running jobs (no reload) and comes to rest when the last one ends."""

from __future__ import annotations

import pytest

from engine import jobs
from testkit.browser import browser_page, dashboard, need_chromium, screenshot
from tests.dashboard.test_compare_page import _epoch

pytestmark = pytest.mark.browser


def test_the_curves_of_a_running_sweep_fill_in_without_a_reload(jobs_home):
    need_chromium()
    ids = jobs.submit_sweep({"dataset": "digits", "network": "lenet", "epochs": 1},
                            lrs=[0.1, 0.01], owner="alice", name="sweep",
                            start_scheduler=False)
    charts = "[data-testid='stVegaLiteChart']"
    with dashboard(jobs_home) as url, browser_page() as page:
        page.goto(f"{url}/compare?ids={ids[0]}&ids={ids[1]}")
        page.get_by_text("No validation point yet: each job's curve starts").wait_for()
        assert page.locator(charts).count() == 0

        _epoch(jobs_home, ids[0], "running", 0.8)  # the worker's first epoch
        page.locator(charts).first.wait_for(timeout=15_000)
        page.get_by_text("No validation point yet for sweep lr=0.01").wait_for()
        screenshot(page, "compare-01-running")

        _epoch(jobs_home, ids[0], "done", 0.8)
        _epoch(jobs_home, ids[1], "done", 0.7)
        page.get_by_text("No validation point yet").wait_for(state="detached", timeout=15_000)
        assert page.locator(charts).count() == 2
        assert page.get_by_text("1 setting(s) differ").is_visible()
        page.wait_for_timeout(4_000)  # at rest: nothing polls, the page stays as it is
        assert page.locator(charts).count() == 2
        assert page.get_by_test_id("stException").count() == 0
