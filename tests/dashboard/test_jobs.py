"""AppTest of New model, Job and Compare, with real jobs trained by a real scheduler; sign-in
rules, ownership and the password gate."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from engine import jobs
from testkit.apptest import APP, app, errors, open_page


def test_submit_watch_clone_compare(jobs_home):
    at = open_page(app(), "new_model")
    assert not at.exception and not errors(at)
    at.number_input(key="nm_epochs").set_value(2)
    at.text_input(key="nm_name").set_value("lenet-a")
    at.button(key="nm_submit").click().run()
    assert not at.exception, at.exception
    [job] = jobs.list_jobs()
    assert job["owner"] == "alice" and job["name"] == "lenet-a"
    done = jobs.wait(job["id"], timeout=300)
    assert done["status"] == "done" and len(done["metrics"]) == 2

    at = open_page(app(), "job", id=job["id"])
    assert not at.exception and not errors(at)
    assert any("done" in str(m.value) for m in at.metric)
    assert any("Held-out" in s.value for s in at.success)
    # Loss, accuracy, learning rate, throughput and per-class accuracy charts; the evaluation
    # queued when training ended may already have added its confusion matrix.
    curves = [c for c in at.get("vega_lite_chart") if "Confusion matrix" not in c.proto.spec]
    assert len(curves) == 5

    at.button[2].click().run()  # Clone -> New model, pre-filled
    assert at.query_params["clone"] == job["id"]
    # AppTest reruns the page it was told to; follow the app's switch explicitly.
    at = open_page(at, "new_model")
    assert at.number_input(key="nm_epochs").value == 2
    at.number_input(key="nm_lr").set_value(0.02)
    at.text_input(key="nm_name").set_value("lenet-b")
    at.button(key="nm_submit").click().run()
    assert not at.exception, at.exception
    clone = next(j for j in jobs.list_jobs() if j["name"] == "lenet-b")
    assert clone["parent"] == job["id"] and clone["config"]["lr"] == 0.02
    assert jobs.wait(clone["id"], timeout=300)["status"] == "done"

    at = app()
    at.session_state["compare_ids"] = [job["id"], clone["id"]]
    at = open_page(at, "compare")
    assert not at.exception and not errors(at)
    assert len(at.get("vega_lite_chart")) == 2
    assert any("setting(s) differ" in c.value for c in at.caption)
    settings = at.dataframe[-1].value
    assert "lr" in settings.index and "name" in settings.index
    assert settings.loc["lr"].tolist() == ["0.01", "0.02"]


def test_other_user_cannot_cancel_or_delete(jobs_home):
    job_id = jobs.submit({"dataset": "digits", "epochs": 1}, owner="alice",
                         start_scheduler=False)
    at = open_page(app("bob"), "job", id=job_id)
    buttons = {b.label: b for b in at.button}
    assert buttons["Cancel"].disabled and buttons["Delete"].disabled
    at = open_page(app("alice"), "job", id=job_id)
    buttons = {b.label: b for b in at.button}
    assert not buttons["Cancel"].disabled
    buttons["Cancel"].click().run()
    assert jobs.get_job(job_id)["status"] == "cancelled"
    with pytest.raises(PermissionError):
        jobs.delete(job_id, user="bob")


def test_submit_needs_a_user(jobs_home):
    at = open_page(app(user=None), "new_model")
    at.button(key="nm_submit").click().run()
    assert any("Sign in" in w.value for w in at.warning)
    assert jobs.list_jobs() == []


def test_a_sweep_with_a_bad_value_names_it_and_queues_nothing(jobs_home):
    at = open_page(app(), "new_model")
    at.text_input(key="nm_sweep_lr").set_value("0.1,abc")
    at.button(key="nm_submit").click().run()
    assert not at.exception, at.exception
    assert "Sweep learning rates: 'abc' is not a number; separate values with commas, " \
           "e.g. 0.1,0.01" in errors(at)
    assert at.text_input(key="nm_sweep_lr").value == "0.1,abc"  # kept, to be corrected
    assert jobs.list_jobs() == []


def test_custom_spec_live_validation(jobs_home):
    at = open_page(app(), "new_model")
    at.toggle(key="nm_custom").set_value(True).run()
    assert "conv" in at.text_area(key="nm_spec").value
    assert at.get("graphviz_chart")
    at.text_area(key="nm_spec").set_value(
        "layers:\n  - {type: conv, out: 8, kernel: 40}\n  - {type: flatten}\n"
        "  - {type: linear, out: classes}\n").run()
    assert any("layer 0 (conv)" in e for e in errors(at))
    at.button(key="nm_submit").click().run()
    assert jobs.list_jobs() == []


def test_sign_in_validates_names(jobs_home):
    at = app(user=None)
    at.sidebar.text_input[0].set_value("no spaces allowed")
    at.sidebar.button[0].click().run()
    assert "user" not in at.session_state and at.sidebar.error
    at.sidebar.text_input[0].set_value("carol")
    at.sidebar.button[0].click().run()
    assert at.session_state["user"] == "carol"


def test_password_gate(jobs_home, monkeypatch):
    monkeypatch.setenv("STUDIO_PASSWORD", "s3cret")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert [t.value for t in at.title] == ["DIGITS Studio"]
    assert not at.dataframe and not at.sidebar.text_input  # nothing visible before the password
    at.text_input[0].set_value("wrong")  # form values go with the submit click
    at.button[0].click().run()
    assert "Wrong password." in errors(at)
    at.text_input[0].set_value("s3cret")
    at.button[0].click().run()
    assert at.session_state["unlocked"] is True
    assert at.sidebar.text_input  # the sign-in box is shown now
