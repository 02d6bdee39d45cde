"""The Evaluation tab's PR / ROC curves and embedding view in a real browser (headless
Chromium): both charts are drawn, a click on a curve moves the threshold and the galleries,
and the embedding shows a probe board's photos."""

from __future__ import annotations

import pytest

from engine import jobs
from engine.evaluation import curves, probes
from engine.evaluation.evaluate import load_evaluation
from testkit.browser import browser_page, dashboard, need_chromium, screenshot, sign_in
from testkit.digit_images import digit_photo
from testkit.finished_jobs import finished_job

pytestmark = pytest.mark.browser


def test_pr_curves_and_embedding(jobs_home):
    need_chromium()
    job_id = finished_job(jobs_home)
    ev = load_evaluation(jobs.job_dir(job_id))
    every = curves.evaluation_curves(ev)
    worst = min(every, key=lambda k: k.average_precision)
    at = curves.evaluation_threshold_images(ev, worst.index, 0.5)
    board = probes.create_board("photos", "alice", home=jobs_home)
    probes.add_probes(board, [(digit_photo(d), str(d), f"photo-{d}.png") for d in (2, 5)],
                      polarity="as-is", user="alice", digit=False, home=jobs_home)
    with dashboard(jobs_home) as url, browser_page(height=1400) as page:
        page.goto(f"{url}/job?id={job_id}")
        sign_in(page)
        page.get_by_role("tab", name="Evaluation").click()
        panel = page.get_by_role("tabpanel", name="Evaluation")
        page.get_by_role("tab", name="PR / ROC curves").click()  # a lazy tab: drawn when open
        panel.get_by_text("Precision-recall and ROC curves").wait_for(timeout=120_000)
        panel.get_by_text(f"False positives (taken for {worst.name}, most confident "
                          f"first): {at.false_positive_count}").wait_for(timeout=60_000)
        curve = panel.get_by_test_id("stVegaLiteChart").last  # before the embedding is on
        curve.scroll_into_view_if_needed()
        curve.locator("canvas, svg").first.wait_for()
        page.wait_for_timeout(1500)  # let vega draw
        box = curve.bounding_box()
        assert box["width"] > 500 and box["height"] > 250  # two 300 px plots side by side
        screenshot(page, "eval-curves-01")
        # A click on the PR plot picks the nearest (class, threshold) point: the caption and
        # the galleries follow it (the chart is drawn from a cached spec, events still come).
        caption = panel.get_by_text(f"{worst.name} at threshold 0.500")
        assert caption.is_visible()
        page.mouse.click(box["x"] + 120, box["y"] + box["height"] * 0.45)
        panel.get_by_text(" at threshold ").filter(has_not_text="0.500").wait_for(
            timeout=60_000)

        page.get_by_role("tab", name="Embedding").click()
        panel.get_by_text("Show the embedding").click()
        panel.get_by_text("probe(s) lie farther").wait_for(timeout=120_000)
        emb = panel.get_by_test_id("stVegaLiteChart").last
        emb.scroll_into_view_if_needed()
        page.wait_for_timeout(1500)
        box = emb.bounding_box()
        assert box["height"] > 400
        assert panel.get_by_text("2 of 2 probe(s) lie farther").is_visible()
        screenshot(page, "eval-curves-02-embedding")
