"""The Studies page in a real browser (headless Chromium): a study's trials table, its
parallel-coordinates and importance charts drawn, and Clone best trial opening New model."""

from __future__ import annotations

import pytest

from engine.jobs import studies
from testkit.browser import browser_page, dashboard, need_chromium, sign_in
from tests.dashboard.test_study import finished_study

pytestmark = pytest.mark.browser


def test_study_page_in_the_browser(jobs_home):
    need_chromium()
    sid = finished_study(jobs_home)
    best = studies.get_study(sid)["best"]
    with dashboard(jobs_home) as url, browser_page(height=1600) as page:
        page.goto(f"{url}/studies?id={sid}")
        sign_in(page)
        page.get_by_text("lr search").first.wait_for(timeout=120_000)
        page.get_by_test_id("stDataFrame").first.wait_for(timeout=60_000)
        charts = page.get_by_test_id("stVegaLiteChart")
        charts.nth(1).locator("canvas, svg").first.wait_for(timeout=60_000)
        assert charts.count() == 2  # parallel coordinates and importances
        for i in range(2):
            box = charts.nth(i).bounding_box()
            assert box["width"] > 200 and box["height"] > 60
        assert page.get_by_text("0.9000").first.is_visible()  # the best value
        page.get_by_role("button", name="Clone best trial").click()
        page.wait_for_url(f"**/new-model?clone={best['job']}", timeout=60_000)
