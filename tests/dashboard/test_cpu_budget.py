"""AppTest: every run of dashboard/app.py and every fragment passes the server's CPU budget,
which knows when a job runs on the CPU; a bad STUDIO_SERVER_CPU_SHARE is said in the page."""

from __future__ import annotations

from contextlib import closing

import pytest

from engine.hosting.server_share import CpuBudget
from engine.state import store
from testkit.apptest import app


def _running_cpu_job(home) -> None:
    with closing(store.connect(home)) as conn:
        store.insert_job(conn, {"id": "busy", "name": "busy", "status": "running",
                                "device": "cpu", "assigned_device": "cpu", "config": {},
                                "created": 1.0, "queued": 1.0})


@pytest.mark.parametrize("training", [True, False])
def test_every_page_run_of_the_dashboard_passes_the_budget(home, monkeypatch, training):
    seen = []
    real = CpuBudget.run

    def run(self):
        seen.append((self.share, self.busy()))
        return real(self)

    monkeypatch.setattr(CpuBudget, "run", run)
    # A share of its own per case: the app keeps one budget per share for the process.
    share = 0.21 if training else 0.22
    monkeypatch.setenv("STUDIO_SERVER_CPU_SHARE", str(share))
    if training:
        _running_cpu_job(home)
    at = app()
    assert not at.exception
    at.run()
    assert seen == [(share, training)] * 2


def test_a_bad_share_setting_is_said_in_the_page(home, monkeypatch):
    monkeypatch.setenv("STUDIO_SERVER_CPU_SHARE", "lots")
    at = app()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "STUDIO_SERVER_CPU_SHARE must be a number of CPU cores, 0 or more (e.g. 0.3; 0 for no "
        "limit), not 'lots'"]


def fragment_page() -> None:
    import streamlit as st

    from dashboard import cpu_budget

    @cpu_budget.fragment(run_every=None)
    def body() -> None:
        st.write("inside the fragment")

    body()


def test_a_fragment_runs_inside_the_budget(home, monkeypatch):
    from streamlit.testing.v1 import AppTest

    seen = []
    real = CpuBudget.run

    def run(self):
        seen.append(self.share)
        return real(self)

    monkeypatch.setattr(CpuBudget, "run", run)
    monkeypatch.setenv("STUDIO_SERVER_CPU_SHARE", "0.23")
    at = AppTest.from_function(fragment_page).run()
    assert not at.exception
    assert [m.value for m in at.markdown] == ["inside the fragment"]
    assert seen == [0.23]  # the fragment's own run (no app.py around it here)
