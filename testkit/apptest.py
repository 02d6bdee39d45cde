"""Helpers for Streamlit AppTest: the whole app signed in, a page opened, its errors."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


def app(user: str | None = "alice", timeout: float = 120) -> AppTest:
    """The app, run once, signed in as `user` (None: signed out)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    if user:
        at.session_state["user"] = user
    return at.run()


def open_page(at: AppTest, name: str, **query: str) -> AppTest:
    """Follow the navigation to dashboard/routes/<name>.py with query parameters."""
    for key, value in query.items():
        at.query_params[key] = value
    return at.switch_page(f"routes/{name}.py").run()


def open_job(at: AppTest, job_id: str, tab: str = "Evaluation") -> AppTest:
    """The Job page of a trained job at rest with one of its lazy tabs open."""
    from dashboard.nav import JOB_TAB

    return open_page(at, "job", id=job_id, **{JOB_TAB: tab})


def switch_tab(at: AppTest, tab: str) -> AppTest:
    """Open another of the Job page's tabs as a click does: the tabs are bound to the URL
    (?tab=), which AppTest, having no browser, does not update from the session state."""
    from dashboard.nav import JOB_TAB

    at.query_params[JOB_TAB] = tab
    return at.run()


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]
