"""The learning-rate finder in a real browser (issue 27 item 4): on the New model page, run
the range test, see its chart (loss against a log-scaled learning rate, the suggestion
marked), and put the suggested rate into the learning-rate input with one click."""

from __future__ import annotations

import re

import pytest

from testkit.browser import browser_page, dashboard, need_chromium, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_finder_chart_and_fill(jobs_home):
    need_chromium()
    with dashboard(jobs_home) as url, browser_page() as page:
        page.goto(url)
        sidebar = sign_in(page)
        sidebar.get_by_role("link", name="New model").click()
        lr_input = page.get_by_label("Base learning rate")
        lr_input.wait_for()
        assert float(lr_input.input_value()) == pytest.approx(0.01)
        page.get_by_text("Learning-rate finder (range test)").click()  # open the expander
        steps = page.get_by_label("Mini-batches (at most)")
        steps.fill("40")
        steps.press("Enter")
        charts_before = page.locator("[data-testid='stVegaLiteChart']").count()
        page.get_by_role("button", name="Find learning rate").click()
        use = page.get_by_role("button", name=re.compile(r"^Use .* \(steepest descent\)$"))
        use.wait_for(timeout=180_000)
        chart = page.locator("[data-testid='stVegaLiteChart']")
        assert chart.count() == charts_before + 1
        finder_chart = chart.nth(charts_before)
        finder_chart.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)  # let vega draw
        # A drawn chart: vega's canvas or svg, with a nonzero size.
        box = finder_chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 150
        assert page.get_by_text(re.compile(r"mini-batches of 64 on (cpu|cuda)")).is_visible()
        screenshot(page, "lr-finder")

        rate = float(re.match(r"Use (\S+) ", use.inner_text()).group(1))
        use.click()
        page.wait_for_function(
            "([r]) => [...document.querySelectorAll('input')].some("
            "i => i.getAttribute('aria-label') === 'Base learning rate' "
            "&& Math.abs(parseFloat(i.value) - r) <= 1e-5)", arg=[rate], timeout=30_000)
        assert float(lr_input.input_value()) == pytest.approx(rate, abs=1e-5)
