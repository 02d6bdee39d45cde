"""The load generator's Streamlit client (testkit/streamlit_protocol.py, bench/server_cost.py)
against a real dashboard server: a view runs the page, and a tab click opens a lazy tab."""

from __future__ import annotations

import asyncio

import pytest

from dashboard.nav import JOB_TAB
from engine.hosting import sessions
from testkit.browser import dashboard
from testkit.finished_jobs import finished_job
from testkit.streamlit_protocol import Session


def test_a_session_views_a_page_and_opens_its_evaluation_tab(jobs_home):
    job_id = finished_job(jobs_home)
    cookies = {"studio_session": sessions.issue("alice", "user", home=jobs_home)}

    async def go(url: str) -> tuple:
        async with Session(url, cookies=cookies, timeout=120) as tab:
            training = await tab.view("job", f"id={job_id}")
            assert JOB_TAB in tab.tabs
            evaluated = await tab.view("job", f"id={job_id}", tabs={JOB_TAB: "Evaluation"})
            with pytest.raises(KeyError, match="no st.tabs with key 'nope'"):
                await tab.view("job", f"id={job_id}", tabs={"nope": "x"})
            return training, evaluated

    with dashboard(jobs_home) as url:
        training, evaluated = asyncio.run(go(url))
    for seen in (training, evaluated):
        assert seen.finished == "FINISHED_SUCCESSFULLY" and seen.exception is None
    # The Evaluation tab draws the metrics, the matrix, the galleries: more elements than the
    # Training tab's curves (and none of them).
    assert evaluated.deltas > training.deltas + 20
