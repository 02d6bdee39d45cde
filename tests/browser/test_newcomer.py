"""Issue 13 in a real browser (headless Chromium): what only a browser shows.

- A reload, a second tab and a shared link keep the user signed in and the page addressable;
  the password gate keeps the asked-for /job?id= and limits guesses (issue 16 item 13).
- A cancelled job's page keeps polling: a Resume from elsewhere shows without a reload.
- The second Clone keeps a custom network.
- Enter in a number box does not submit the dataset form.
- Tables fit a 1400-px window (Home, Compare) and the probe board's score row is in view.
- The loss curve is drawn inside the first epoch.
- Deploy's Export works on a dataset without a test split.
"""

from __future__ import annotations

import time
from contextlib import closing

import pytest

from engine import jobs
from engine.datasets import DatasetOptions, create_dataset, list_datasets
from engine.evaluation import probes
from engine.state import store
from testkit.browser import browser_page, dashboard, need_chromium, screenshot, sign_in
from testkit.finished_jobs import finished_job
from tests.dashboard.test_names import wide_spec
from tests.dashboard.test_probe_board import png
from trt import layout

pytestmark = pytest.mark.browser

SCROLLERS = """(el) => [...el.querySelectorAll('.dvn-scroller')].map(
    e => [e.scrollWidth, e.clientWidth, e.scrollHeight, e.clientHeight])"""


def metric(page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return box.get_by_test_id("stMetricValue").inner_text()


def test_session_gate_polling_clone_and_enter(jobs_home, monkeypatch):
    need_chromium()
    monkeypatch.setenv("STUDIO_PASSWORD", "lab-pass")
    job_id = jobs.submit({"dataset": "digits", "epochs": 3, "network": wide_spec()},
                         owner="alice", name="wide", start_scheduler=False)
    with closing(store.connect(jobs_home)) as conn, store.transaction(conn):
        store.update_job(conn, job_id, status="cancelled", finished=time.time(),
                         progress={"epoch": 1, "epochs": 3, "step": 5, "steps": 24})
    with dashboard(jobs_home) as url, browser_page() as page:
        # A shared link to a job, behind the gate: a wrong guess, then the password.
        page.goto(f"{url}/job?id={job_id}")
        page.get_by_label("Access password").fill("guess")
        page.get_by_role("button", name="Enter").click()
        page.get_by_text("Wrong password.").wait_for()
        page.get_by_label("Access password").fill("lab-pass")
        page.get_by_role("button", name="Enter").click()
        page.get_by_role("heading", name="wide").wait_for()  # the job asked for, unlocked
        assert page.url.endswith(f"/job?id={job_id}")
        sign_in(page)
        # Resume enabled for its owner (a rerun may briefly show the old button beside it).
        page.get_by_role("button", name="Resume", disabled=False).first.wait_for()

        # F5 and a second tab: still unlocked and signed in, on the same job.
        page.reload()
        page.get_by_text("Signed in as").wait_for()
        page.get_by_role("heading", name="wide").wait_for()
        # Resume enabled for its owner (a rerun may briefly show the old button beside it).
        page.get_by_role("button", name="Resume", disabled=False).first.wait_for()
        tab = page.context.new_page()
        tab.goto(f"{url}/job?id={job_id}")
        tab.get_by_text("Signed in as").wait_for()
        assert tab.get_by_label("Access password").count() == 0
        screenshot(tab, "lab-01-second-tab")

        # Resumed elsewhere (another tab, the CLI): this page follows without a reload.
        assert metric(page, "Status") == "cancelled"
        jobs.resume(job_id, start_scheduler=False)
        page.get_by_test_id("stMetricValue").filter(has_text="queued").wait_for(timeout=30_000)
        page.get_by_text("in the queue").wait_for()
        page.get_by_text("Scheduler not running").wait_for()
        screenshot(page, "lab-02-resumed-elsewhere")

        # Clone twice: the custom spec is there both times.
        for _ in range(2):
            page.goto(f"{url}/job?id={job_id}")
            page.get_by_role("button", name="Clone").click()
            spec = page.get_by_role("textbox", name="Network spec (YAML or JSON)")
            spec.wait_for()
            assert "lenet-75-100-relu" in spec.input_value() and "out: 75" in spec.input_value()
        screenshot(page, "lab-03-second-clone")

        # Enter in the dataset form's number box does not create the dataset.
        before = len(list_datasets())
        page.get_by_test_id("stSidebar").get_by_role("link", name="Datasets").click()
        page.get_by_role("button", name="Create dataset").wait_for()
        form = page.get_by_test_id("stForm").first
        form.get_by_label("Name").fill("half-filled")
        form.get_by_text("Options").click()
        seed = form.get_by_label("Seed")
        seed.fill("7")
        seed.press("Enter")
        page.wait_for_timeout(3000)
        assert len(list_datasets()) == before
        assert page.get_by_text("Created 'half-filled'").count() == 0


def test_tables_fit_and_loss_curve_inside_the_first_epoch(jobs_home):
    need_chromium()
    ids = []
    for k, net in enumerate(["lenet", wide_spec()]):
        job_id = jobs.submit({"dataset": "digits", "epochs": 3, "network": net}, owner="alice",
                             name=f"LeNet experiment number {k}", start_scheduler=False)
        with closing(store.connect(jobs_home)) as conn, store.transaction(conn):
            for e in (1, 2, 3):
                store.put_metrics(conn, job_id, {
                    "epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "val_accuracy": 0.9,
                    "images_per_s": 12345.0, "lr": 0.01})
            store.update_job(conn, job_id, status="done", result={
                "held_out": {"split": "test", "accuracy": 0.91, "loss": 0.3}})
        ids.append(job_id)
    live = jobs.submit({"dataset": "digits", "epochs": 3}, owner="alice", name="live",
                       start_scheduler=False)
    with closing(store.connect(jobs_home)) as conn, store.transaction(conn):
        store.update_job(conn, live, status="running", assigned_device="cpu",
                         heartbeat=time.time() + 3600, started=time.time(), progress={
                             "epoch": 0, "epochs": 3, "step": 40, "steps": 100, "loss": 1.2,
                             "eta_s": 80, "time": time.time(),
                             "curve": [[i / 100, 2.3 - i / 50] for i in range(0, 40, 4)]})
    board = probes.create_board("real world", "alice")
    for k in range(14):
        probes.add_probe(board, png(), str(k % 10), "as-is", user="alice")
    finished = finished_job(jobs_home, epochs=1, evaluate=False)

    with dashboard(jobs_home) as url, browser_page(width=1400) as page:
        page.goto(url)
        sign_in(page)
        table = page.get_by_test_id("stDataFrame").first
        table.wait_for()
        page.wait_for_timeout(1500)
        [jobs_grid] = table.evaluate(SCROLLERS)[:1]
        assert jobs_grid[0] <= jobs_grid[1], "Home's jobs table scrolls sideways at 1400 px"
        screenshot(page, "lab-04-home")

        page.goto(f"{url}/compare?ids={ids[0]}&ids={ids[1]}")
        page.get_by_text("Final metrics").wait_for()
        page.get_by_text("conv1 20 → 75").wait_for()  # markdown typesets ->
        page.get_by_text("+ relu after pool1").wait_for()
        grid = page.get_by_test_id("stDataFrame").first
        page.wait_for_timeout(1500)
        [metrics_grid] = grid.evaluate(SCROLLERS)[:1]
        assert metrics_grid[0] <= metrics_grid[1], "Compare's metrics scroll sideways"
        screenshot(page, "lab-05-compare")

        page.goto(f"{url}/probes?board={board}")
        page.get_by_role("button", name="Download CSV").wait_for()
        # The score row is a table of its own above the board; the board's table shows every
        # row (no inner scroll).
        grid = page.get_by_test_id("stDataFrame").nth(1)
        grid.wait_for()
        page.wait_for_timeout(1500)
        [board_grid] = grid.evaluate(SCROLLERS)[:1]
        assert board_grid[2] <= board_grid[3], "the board's rows scroll inside the table"
        assert board_grid[0] <= board_grid[1]
        screenshot(page, "lab-06-board")
        assert finished

        page.goto(f"{url}/job?id={live}")
        page.get_by_text("Epoch 1 at step 40 / 100").wait_for()
        chart = page.get_by_test_id("stVegaLiteChart").first
        chart.locator("canvas, svg").first.wait_for()
        page.wait_for_timeout(1500)
        assert chart.bounding_box()["height"] > 150
        screenshot(page, "lab-07-first-epoch-curve")


def test_export_without_a_test_split(jobs_home):
    need_chromium()
    create_dataset("no-test", "digits-sample", None, DatasetOptions(val_percent=10.0),
                   home=jobs_home)
    job_id = finished_job(jobs_home, dataset="no-test", epochs=1, evaluate=False)
    with dashboard(jobs_home) as url, browser_page() as page:
        page.goto(f"{url}/deploy?id={job_id}")
        sign_in(page)
        page.get_by_role("button", name="Export", exact=True).click()
        page.get_by_text("Precision variants").wait_for(timeout=240_000)
        page.get_by_text("on the validation split (the dataset has no test split)").wait_for()
        assert page.get_by_text("has no 'test' images").count() == 0
        screenshot(page, "lab-08-export-no-test")
    assert (layout.exports_dir(jobs.job_dir(job_id, jobs_home)) / "model-int8.onnx").exists()
