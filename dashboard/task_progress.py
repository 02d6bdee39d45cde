"""Task jobs on a page (evaluation, classify-many, deployment steps): queue one, then show the
newest one's live progress bar with a Cancel button while it is queued or running, how it
ended if it failed, and redraw the whole page once when it ends so its results show."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from dashboard import cpu_budget, session
from engine import jobs


def submit(task: str, job_id: str, params: dict[str, Any], what: str,
           name: str | None = None) -> None:
    """Queue a task job for trained job `job_id`, then redraw; an error is shown, not raised."""
    try:
        jobs.submit_task(task, params, owner=session.current_user(),
                         name=name or f"{what} {job_id}", parent=job_id)
    except Exception as e:  # a deleted job, a broken database: say so, keep the page up
        st.error(f"Could not queue {what}: {e}")
        return
    time.sleep(0.2)  # let the scheduler pick it up, so the redraw shows it running
    st.rerun()


def newest(job_id: str, task: str) -> dict[str, Any] | None:
    return next(iter(jobs.list_tasks(job_id, task)), None)


def show(job_id: str, task: str, what: str, key: str) -> dict[str, Any] | None:
    """The newest task job of this kind, after drawing its state: a bar that polls once a
    second while it is active, or how it ended when it failed or was stopped."""
    latest = newest(job_id, task)
    if latest is None:
        return None
    status = latest.status
    if status in jobs.ACTIVE:
        cpu_budget.fragment(_live, run_every=1.0)(job_id, task, what, key)
    elif status == "failed":
        st.error(f"{what} failed ({latest.reason or 'error'}): "
                 f"{latest.message or 'no message'}")
    elif status in jobs.STOPPED_EARLY:
        st.warning(f"{what} {status}: {latest.message or ''}".rstrip(": "))
    return latest


def _live(job_id: str, task: str, what: str, key: str) -> None:
    now = newest(job_id, task)
    if now is None or now.status not in jobs.ACTIVE:
        st.rerun()  # the whole page, so the results (or the failure) show
        return
    message = (now.progress or {}).get("message")
    text = (f"{what} running: {message or 'starting'}" if now.status == "running"
            else f"{what} queued — it starts when a worker is free")
    st.progress(min(1.0, max(0.0, float(now.fraction or 0.0))), text=text)
    if st.button("Cancel", key=key):
        try:
            jobs.cancel(now.id, user=session.current_user())
        except (PermissionError, jobs.JobError) as e:  # someone else's, or it just ended
            st.error(str(e))
            return
        st.rerun()
