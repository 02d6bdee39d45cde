"""The password gate (issue 16 item 13): guesses are limited, tracebacks are not shown to
users, and the page asked for is kept (the browser test checks the URL after unlocking)."""

from __future__ import annotations

from pathlib import Path

import tomllib
from streamlit.testing.v1 import AppTest

from testkit.apptest import APP

ROOT = Path(__file__).resolve().parents[2]


def _guess(at: AppTest, password: str) -> AppTest:
    at.text_input[0].input(password)
    return at.button[0].click().run()


def test_gate_limits_wrong_passwords(home, monkeypatch):
    monkeypatch.setenv("STUDIO_PASSWORD", "right")
    from dashboard import session

    session.attempt_limiter.clear()
    at = AppTest.from_file(APP, default_timeout=60).run()
    for _ in range(session.attempt_limiter().free):
        at = _guess(at, "wrong")
        assert [e.value for e in at.error] == ["Wrong password."]
    at = _guess(at, "right")  # even the right one waits once the free guesses are spent
    assert "Too many wrong passwords" in at.error[0].value
    assert "unlocked" not in at.session_state
    session.attempt_limiter.clear()


def test_gate_unlocks_with_the_password(home, monkeypatch):
    monkeypatch.setenv("STUDIO_PASSWORD", "right")
    from dashboard import session

    session.attempt_limiter.clear()
    at = _guess(AppTest.from_file(APP, default_timeout=60).run(), "right")
    assert at.session_state["unlocked"] is True
    assert not at.error


def test_tracebacks_are_not_shown_to_users():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] in ("none", False)


def _cookie_script(at: AppTest) -> str:
    [html] = [h.proto.body for h in at.get("html") if "document.cookie" in h.proto.body]
    return html


def test_cookies_are_written_on_every_run_until_they_change(home, monkeypatch):
    """A run cut short by a rerun must not lose the sign-in cookie: the script that writes it
    is drawn again on every run (unchanged, the browser does not run it twice)."""
    monkeypatch.setenv("STUDIO_PASSWORD", "right")
    from dashboard import session
    from engine.hosting import sessions

    session.attempt_limiter.clear()
    at = _guess(AppTest.from_file(APP, default_timeout=60).run(), "right")
    assert "studio_gate=" in _cookie_script(at) and "studio_session" not in _cookie_script(at)
    at.sidebar.text_input[0].input("alice")
    at = at.sidebar.button[0].click().run()
    script = _cookie_script(at)
    assert "studio_gate=" in script and "studio_session=" in script
    token = script.split("studio_session=")[1].split(";")[0]
    assert sessions.verify(token, "user").subject == "alice"
    assert _cookie_script(at.run()) == script  # the next run draws the same script again
    at = next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert "studio_session=; path=/; max-age=0" in _cookie_script(at)
