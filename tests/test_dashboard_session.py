"""The password gate (issue 16 item 13): guesses are limited, tracebacks are not shown to
users, and the page asked for is kept (the browser test checks the URL after unlocking)."""

from __future__ import annotations

from pathlib import Path

import tomllib
from streamlit.testing.v1 import AppTest

from apptest import APP

ROOT = Path(__file__).resolve().parent.parent


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
