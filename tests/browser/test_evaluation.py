"""A finished job's evaluation in a real browser (headless Chromium): the confusion heatmap is
drawn, and clicking one of its cells shows that (true, predicted) pair's images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine import jobs
from testkit.browser import browser_page, dashboard, need_chromium, publish, screenshot, sign_in
from testkit.finished_jobs import finished_job

pytestmark = pytest.mark.browser


def grid_box(png: bytes, n: int) -> tuple[float, float, float]:
    """Left, top and cell size of an n x n heatmap in a screenshot of the chart: the widest run
    of columns holding a tall stack of blue pixels (the colour legend is a narrow one)."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    blue = rgb[:, :, 2] - rgb[:, :, 0] > 12  # every shade of the blues scheme, not text
    cols = blue.sum(0) > 0.3 * blue.sum(0).max()
    runs, start = [], None
    for x, on in enumerate([*cols, False]):
        if on and start is None:
            start = x
        elif not on and start is not None:
            runs.append((x - start, start))
            start = None
    width, left = max(runs)
    rows = np.flatnonzero(blue[:, left:left + width].mean(1) > 0.6)
    cell = width / n
    assert abs((rows[-1] - rows[0] + 1) - width) < cell / 2, "not a square grid"
    return left, rows[0], cell


def evaluation_panel(page, url: str, job_id: str, ready: str):
    """The job page's Evaluation tab, signed in, once `ready` is on it."""
    page.goto(f"{url}/job?id={job_id}")
    sign_in(page)
    page.get_by_role("tab", name="Evaluation").click()
    panel = page.get_by_role("tabpanel", name="Evaluation")
    panel.get_by_text(ready).wait_for(timeout=120_000)
    return panel


def test_evaluation_heatmap(jobs_home):
    need_chromium()
    job_id = finished_job(jobs_home)
    [stored] = jobs.job_evaluations(job_id)
    with dashboard(jobs_home) as url, browser_page(height=1200) as page:
        panel = evaluation_panel(page, url, job_id, "Top-1 accuracy")
        assert panel.get_by_text(f"{stored['accuracy']:.2%}").first.is_visible()
        heatmap = panel.get_by_test_id("stVegaLiteChart").first
        heatmap.locator("canvas, svg").first.wait_for()
        page.wait_for_timeout(1500)  # let vega draw
        box = heatmap.bounding_box()
        assert box["width"] > 200 and box["height"] > 200  # 10 x 10 cells of 34 px
        heatmap.scroll_into_view_if_needed()
        shot = screenshot(page, "evaluation-01")

        # Click the cell (true 2, predicted 2): the pair pickers and gallery follow it.
        cm = stored["confusion"]
        left, top, cell = grid_box(heatmap.screenshot(), len(cm))
        box = heatmap.bounding_box()
        page.mouse.click(box["x"] + left + 2.5 * cell, box["y"] + top + 2.5 * cell)
        panel.get_by_text(f"{cm[2][2]} image(s) of 2 predicted as 2").wait_for()
        screenshot(page, "evaluation-02-clicked")
    publish(shot, "evaluation")


def test_top_confusions_table_picks_a_pair(jobs_home):
    """Above 100 classes the evaluation shows a table of the top confusions instead of the
    matrix (here a 10-class evaluation stored in that form): clicking a row's selector shows
    that pair's images."""
    need_chromium()
    from engine.evaluation.evaluate import load_evaluation, top_confusions
    from engine.state import store

    job_id = finished_job(jobs_home)
    [stored] = jobs.job_evaluations(job_id)
    ev = load_evaluation(jobs.job_dir(job_id))
    top = top_confusions(ev.labels, ev.predicted)
    assert len(top) >= 2
    conn = store.connect(jobs_home)
    with store.transaction(conn):
        store.put_evaluation(conn, job_id, {**stored, "confusion": None, "top_confusions": top})
    conn.close()
    classes = stored["classes"]
    with dashboard(jobs_home) as url, browser_page(height=1200) as page:
        panel = evaluation_panel(page, url, job_id, "Most frequent confusions")
        t, p, n = top[0]
        panel.get_by_text(f"{n} image(s) of {classes[t]} predicted as {classes[p]}").wait_for()
        table = panel.get_by_test_id("stDataFrame").first
        table.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)  # let the grid draw
        box = table.bounding_box()
        row = 35  # the grid's row height (header included)
        t, p, n = top[1]
        page.mouse.click(box["x"] + 18, box["y"] + row * 2.5)  # second row's selector
        panel.get_by_text(f"{n} image(s) of {classes[t]} predicted as {classes[p]}").wait_for(
            timeout=30_000)
        screenshot(page, "evaluation-03-top-confusions")


def test_galleries_load_inline_and_the_tab_follows_a_resume_from_elsewhere(jobs_home):
    """The Evaluation tab's galleries arrive inside the page (data URIs: no media request per
    image) and every image decodes; a job at rest is watched, so a Resume from another tab or
    the CLI redraws the page as queued while its Evaluation tab is open (issue 28); the open
    tab is in the URL, so a reload keeps it."""
    need_chromium()
    from contextlib import closing
    from urllib.parse import urlsplit

    from engine.state import store

    job_id = finished_job(jobs_home)
    with closing(store.connect(jobs_home)) as conn, store.transaction(conn):
        store.update_job(conn, job_id, status="cancelled")  # stopped early: resumable
    with dashboard(jobs_home) as url, browser_page(height=1200) as page:
        media = []
        page.on("request", lambda r: media.append(r.url)  # Streamlit's media files, not fonts
                if urlsplit(r.url).path.startswith("/media/") else None)
        panel = evaluation_panel(page, url, job_id, "Most confident mistakes")
        panel.locator("[data-testid=stImage] img").first.wait_for()
        page.wait_for_timeout(1000)
        images = page.evaluate("() => [...document.querySelectorAll("
                               "'[data-testid=stImage] img')].map(i => [i.naturalWidth, "
                               "i.src.slice(0, 22)])")
        assert len(images) >= 2  # a pair's images and the confident mistakes
        assert all(w == 84 and src == "data:image/png;base64," for w, src in images), images
        assert not media
        # The open tab is in the URL, so a reload comes back to it (it reset to Training).
        page.wait_for_function("() => location.search.includes('tab=Evaluation')")
        page.reload()
        page.get_by_role("tabpanel", name="Evaluation").get_by_text(
            "Most confident mistakes").wait_for(timeout=60_000)
        assert page.get_by_role("tab", name="Evaluation").get_attribute(
            "aria-selected") == "true"
        jobs.resume(job_id, start_scheduler=False)
        page.get_by_test_id("stMetricValue").filter(has_text="queued").wait_for(timeout=30_000)
        assert page.get_by_role("tab", name="Evaluation").count() == 0  # active: live view
