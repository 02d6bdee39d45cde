"""Accounts and roles in the dashboard (issue 19), through Streamlit's AppTest: the sign-in box
in both modes, no password left in the session, revocation ending an open session, a student
unable to see or act on another's job, an instructor able to, the Accounts page."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from engine.hosting import accounts
from engine.jobs import api
from testkit.accounts import PASSWORDS, job_row, make_class
from testkit.apptest import APP, open_page


@pytest.fixture(autouse=True)
def setting(monkeypatch):
    monkeypatch.setenv(accounts.SCRYPT_N_ENV, "1024")
    for name in ("STUDIO_INSTRUCTORS", "STUDIO_PASSWORD", accounts.SIGNUP_ENV):
        monkeypatch.delenv(name, raising=False)
    from dashboard import session

    session.attempt_limiter.clear()


def _as(user: str | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    if user:
        at.session_state["user"] = user
        at.session_state["user_issued"] = time.time()
    return at.run()


def _texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("caption", "info", "warning", "error",
                                               "markdown", "success")
                     for e in at.get(kind))


def test_laptop_mode_says_username_only(home):
    at = _as(None)
    assert "Username-only sign-in: this workspace has no accounts" in _texts(at)
    assert [t.label for t in at.sidebar.text_input] == ["Username"]


def test_password_sign_in_leaves_no_password_in_the_session(home):
    make_class(home)
    at = _as(None)
    assert "Sign in (sidebar) to continue" in _texts(at)
    assert not at.get("dataframe")  # no page behind the sign-in
    at.sidebar.text_input[0].input("alice")
    at.sidebar.text_input[1].input("not-her-password")
    at = at.sidebar.button[0].click().run()
    assert "Wrong username or password." in [e.value for e in at.error]
    at.sidebar.text_input[0].input("alice")
    at.sidebar.text_input[1].input(PASSWORDS["alice"])
    at = at.sidebar.button[0].click().run()
    assert at.session_state["user"] == "alice"
    state = {k: at.session_state[k] for k in at.session_state}
    assert PASSWORDS["alice"] not in repr(state)
    assert all(w.value != PASSWORDS["alice"] for w in at.text_input)  # the form was cleared
    # Sign out everywhere (from another device) ends this open session at its next run.
    accounts.revoke_sessions("alice", by="alice")
    at = at.run()
    assert at.session_state["user"] is None
    assert "Your session ended" in _texts(at)


def test_student_cannot_see_or_act_on_another_students_job(home):
    make_class(home)
    bobs = job_row(home, "bob", "bob's experiment")
    alices = job_row(home, "alice", "alice's experiment")
    at = _as("alice")
    table = at.get("arrow_data_frame") or at.dataframe
    shown = "\n".join(str(t.value) for t in table)
    assert "alice's experiment" in shown and "bob's experiment" not in shown
    at = open_page(at, "job", id=bobs)
    assert any("belongs to another user" in e.value for e in at.error)
    assert not [b for b in at.button if b.label == "Cancel"]
    # Her own job: Cancel works.
    at = open_page(at, "job", id=alices)
    [cancel] = [b for b in at.button if b.label == "Cancel"]
    assert not cancel.disabled
    at = cancel.click().run()
    assert api.get_job(alices)["status"] == "cancelled"
    assert api.get_job(bobs)["status"] == "queued"


def test_instructor_sees_and_cancels_any_job(home):
    make_class(home)
    bobs = job_row(home, "bob", "bob's experiment")
    at = _as("teacher")
    at = open_page(at, "job", id=bobs)
    assert not at.error
    [cancel] = [b for b in at.button if b.label == "Cancel"]
    assert not cancel.disabled
    cancel.click().run()
    job = api.get_job(bobs, events=True)
    assert job["status"] == "cancelled"
    assert any(e["message"] == "by teacher" for e in job["events"])  # under their own name


def test_accounts_page_creates_from_csv_and_lists_bad_rows(home):
    make_class(home)
    at = open_page(_as("teacher"), "accounts")
    assert "Sign-up is **closed" in _texts(at)
    area = [t for t in at.text_area if t.key == "accounts_csv_text"][0]
    area.input("carol\ncarol\nbad name\n")
    at = [b for b in at.button if b.label == "Create accounts"][0].click().run()
    err = "\n".join(e.value for e in at.error)
    assert "No account was created" in err and "line 2: 'carol' appears twice" in err
    assert "line 3: 'bad name'" in err
    area = [t for t in at.text_area if t.key == "accounts_csv_text"][0]
    area.input("carol\ndave\n")
    at = [b for b in at.button if b.label == "Create accounts"][0].click().run()
    assert "Created 2 account(s)" in _texts(at)
    [table] = [d for d in at.dataframe if "initial password" in d.value.columns]
    carol_pw = table.value.set_index("name").loc["carol", "initial password"]
    assert accounts.authenticate("carol", carol_pw)
    assert carol_pw not in repr({k: at.session_state[k] for k in at.session_state})
    # A student has no Accounts page at all (and the engine refuses them anyway).
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        open_page(_as("alice"), "accounts")


def test_single_sign_on_button_shows_only_when_configured(home):
    at = _as(None)
    assert not [b for b in at.button if b.label == "Sign in with single sign-on"]
    at = AppTest.from_file(APP, default_timeout=90)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback",
                          "cookie_secret": "x" * 32, "client_id": "id", "client_secret": "s",
                          "server_metadata_url": "https://idp.example/.well-known/"
                                                 "openid-configuration"}
    at = at.run()
    assert [b for b in at.button if b.label == "Sign in with single sign-on"]
