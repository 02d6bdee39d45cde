"""The job page (issue 13 items 2, 7, 12, 13; issue 16 item 8), with AppTest: the picked job
goes into the URL, one epoch definition, the queue position, the loss curve before the first
epoch ends, a reason on owner-only buttons, and "scheduler not running" with a start button."""

from __future__ import annotations

import time
from contextlib import closing

from dashboard.nav import JOB_TAB
from engine import jobs
from engine.jobs import scheduler_alive
from engine.state import store
from testkit.apptest import app, errors, open_page, switch_tab
from testkit.finished_jobs import finished_job


def _fake_running(job_id, home, **progress):
    with closing(store.connect(home)) as conn, store.transaction(conn):
        store.update_job(conn, job_id, status="running", assigned_device="cpu",
                         heartbeat=time.time(), started=time.time(),
                         progress={"epochs": 3, "time": time.time(), **progress})


def test_queued_job_says_where_it_is_and_scheduler_can_be_started(jobs_home):
    first = jobs.submit({"dataset": "digits", "epochs": 1}, owner="alice", name="first",
                        start_scheduler=False)
    second = jobs.submit({"dataset": "digits", "epochs": 1}, owner="alice", name="second",
                         start_scheduler=False)
    at = open_page(app(), "job", id=second)
    assert not at.exception and not errors(at)
    infos = " ".join(i.value for i in at.info)
    assert "number 2 of 2 in the queue" in infos and "scheduler" in infos
    assert any("Scheduler not running" in w.value for w in at.warning)
    at.button(key="start_scheduler").click().run()
    assert scheduler_alive()
    assert jobs.wait(first, timeout=300)["status"] == "done"


def test_running_job_shows_step_losses_and_one_epoch_count(jobs_home):
    job_id = jobs.submit({"dataset": "digits", "epochs": 3}, owner="alice", name="live",
                         start_scheduler=False)
    _fake_running(job_id, jobs_home, epoch=0, step=12, steps=24, loss=1.9, eta_s=None,
                  curve=[[0.1, 2.3], [0.25, 2.2], [0.5, 1.9]])
    at = open_page(app(), "job", id=job_id)
    assert not at.exception and not errors(at)
    assert [m.value for m in at.metric][:2] == ["running", "0 / 3"]
    assert any("Epoch 1 at step 12 / 24" in c.value for c in at.caption)
    assert any(m.value == "measuring…" for m in at.metric)  # no ETA before warm-up ends
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1 and "every few steps" in charts[0].proto.spec
    # Cancelled mid-epoch: the same numbers, said as stopped.
    with closing(store.connect(jobs_home)) as conn, store.transaction(conn):
        store.update_job(conn, job_id, status="cancelled", finished=time.time())
    at = open_page(app(), "job", id=job_id)
    assert [m.value for m in at.metric][:2] == ["cancelled", "0 / 3"]
    assert any("Epoch 1 at step 12 / 24 when it stopped" in c.value for c in at.caption)


def test_signed_out_visitor_is_told_why_buttons_are_off(jobs_home):
    job_id = jobs.submit({"dataset": "digits", "epochs": 1}, owner="alice",
                         start_scheduler=False)
    at = open_page(app(user=None), "job", id=job_id)
    assert any("sign in as **alice**" in c.value for c in at.caption)
    cancel = next(b for b in at.button if b.label == "Cancel")
    assert cancel.disabled and "Sign in as alice" in cancel.help


def test_picking_a_job_puts_it_in_the_url(jobs_home):
    a = jobs.submit({"dataset": "digits", "epochs": 1}, owner="alice", name="a",
                    start_scheduler=False)
    b = jobs.submit({"dataset": "digits", "epochs": 1}, owner="alice", name="b",
                    start_scheduler=False)
    at = open_page(app(), "job")
    assert at.query_params["id"] in ([a], [b], a, b)
    at.selectbox(key="job_pick").set_value(a).run()
    assert at.query_params["id"] in ([a], a)
    assert at.title[0].value == "a"
    # Names, not ids: the caption names the dataset.
    assert any("dataset digits" in c.value for c in at.caption)


def test_two_jobs_of_one_name_and_minute_are_told_apart_in_the_picker(jobs_home):
    a = jobs.submit({"dataset": "digits", "epochs": 1}, owner="alice", name="same",
                    start_scheduler=False)
    b = jobs.submit({"dataset": "digits", "epochs": 1}, owner="alice", name="same",
                    start_scheduler=False)
    with closing(store.connect(jobs_home)) as conn, store.transaction(conn):
        store.update_job(conn, b, created=jobs.get_job(a, metrics=False, events=False)["created"])
    at = open_page(app(), "job", id=a)
    assert not at.exception and not errors(at)
    options = at.selectbox(key="job_pick").options
    assert len(set(options)) == len(options) == 2
    assert {o.rsplit(" · ", 1)[1] for o in options} == {a[-6:], b[-6:]}
    assert at.selectbox(key="job_pick").value == a


def test_a_trained_job_opens_on_training_and_draws_its_evaluation_when_asked(jobs_home):
    """Lazy tabs: the Training tab (curves, progress) opens first and the evaluation is not
    drawn until its tab is, which was most of the page's server CPU (issue 28)."""
    job_id = finished_job(jobs_home)
    at = open_page(app("alice"), "job", id=job_id)
    assert not at.exception, at.exception
    assert at.session_state[JOB_TAB] == "Training"
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert len(specs) == 5 and any("per class" in s for s in specs)  # loss, acc, lr, img/s
    assert not any("Confusion matrix" in s for s in specs)
    assert [b.proto.text for b in at.get("progress")] == ["100%"]
    assert not any(s.value == "Calibration" for s in at.subheader)

    switch_tab(at, "Evaluation")
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any("Confusion matrix" in s for s in specs) and len(specs) == 2
    assert any(s.value == "Calibration" for s in at.subheader)
    assert not at.get("progress")



def test_the_open_tab_is_in_the_url_so_a_reload_or_a_link_opens_it(jobs_home):
    """?tab=Evaluation opens the Evaluation tab: a reload, a shared link, a second browser tab
    (the browser test checks that a click puts the tab into the URL)."""
    job_id = finished_job(jobs_home)
    at = open_page(app("alice"), "job", id=job_id, tab="Evaluation")
    assert not at.exception, at.exception
    assert at.session_state[JOB_TAB] == "Evaluation"
    assert any("Confusion matrix" in c.proto.spec for c in at.get("vega_lite_chart"))



def test_a_held_out_figure_from_the_validation_split_is_called_optimistic(jobs_home):
    job_id = finished_job(jobs_home, epochs=1, evaluate=False)
    optimistic = "The dataset has no test split"
    at = open_page(app(), "job", id=job_id)
    assert any(s.value.startswith("Held-out (test) accuracy") for s in at.success)
    assert not any(optimistic in c.value for c in at.caption)

    result = jobs.get_job(job_id, metrics=False, events=False).result
    with closing(store.connect(jobs_home)) as conn, store.transaction(conn):
        store.update_job(conn, job_id, result={  # what training writes without a test split
            **result, "held_out": {**result["held_out"], "split": "val"}})
    at = open_page(app(), "job", id=job_id)
    assert any(s.value.startswith("Held-out (val) accuracy") for s in at.success)
    assert any(optimistic in c.value and "Test %" in c.value for c in at.caption)
