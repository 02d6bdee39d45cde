"""The instructor's page (issue 19): every user's jobs and usage, the class's progress through
the lab, quotas, and the hidden probe board's leaderboard with its CSV for grading. Only
instructors see it; anyone else gets a clear message. Everything comes from engine/classroom
and engine/quotas; this page only draws."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import streamlit as st

from dashboard import nav, session
from engine.hosting import classroom, quotas, roles

LEADERBOARD = "instructor_leaderboard"  # the last scored leaderboard rows
_DEFAULT_LABEL = "Class default (everyone)"


def _table(rows: list[dict], empty: str, **kwargs) -> None:
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", **kwargs)
    else:
        st.caption(empty)


def _class(user: str) -> None:
    st.subheader("Users")
    _table(classroom.usage_table(user), "Nobody has used the studio yet.",
           column_config={"entry": st.column_config.TextColumn("entry (job)")})
    st.subheader("Running and queued jobs")
    st.caption("Queued jobs in the order they will start (fair share across users unless "
               "the scheduler's queue_order is fifo); a quota that holds one back says why.")
    _table(classroom.active_jobs(user), "No job is running or queued.")


def _lab() -> None:
    user = session.current_user()
    rows = classroom.lab_progress(user)
    if not rows:
        st.caption("Nobody has started the lab yet.")
        return
    _table(classroom.lab_summary(rows), "")
    _table(rows, "")


def _quotas(user: str) -> None:
    st.caption("Limits per user; the class default applies to everyone without their own. "
               "Leave a field empty for no limit. A job over a limit is refused when it is "
               "submitted; the running-jobs limit makes further jobs wait in the queue.")
    users = [u for u in classroom.class_users() if not roles.is_instructor(u)]
    targets = [quotas.CLASS_DEFAULT, *users]
    target = st.selectbox("Whose limits", targets, key="instructor_quota_user",
                          format_func=lambda u: _DEFAULT_LABEL if u == quotas.CLASS_DEFAULT
                          else u)
    current = quotas.all_limits().get(target, {})
    with st.form(f"instructor_quotas_{target}"):
        values = {}
        cols = st.columns(3)
        for k, (name, limit) in enumerate(quotas.LIMITS.items()):
            value = current.get(name)
            values[name] = cols[k % 3].text_input(
                f"{limit.what} ({limit.unit})", value="" if value is None else
                f"{value:g}", placeholder="unlimited", key=f"instructor_q_{target}_{name}")
        if st.form_submit_button("Save limits"):
            try:
                for name, value in values.items():
                    quotas.parse_value(name, value)  # all checked before any is saved
                for name, value in values.items():
                    quotas.set_limit(target, name, value, by=user)
            except (ValueError, PermissionError) as e:
                st.error(str(e))
            else:
                st.success("Limits saved.")
    limits = quotas.all_limits()
    _table([{"user": _DEFAULT_LABEL if u == quotas.CLASS_DEFAULT else u, **v}
            for u, v in limits.items()], "No limits set: everyone is unlimited.")


def _leaderboard(user: str) -> None:
    board = classroom.hidden_board(user, create=False)
    if board is None:
        st.info("The class has no hidden board yet. Its images are never shown to students; "
                "it scores each student's chosen model (their entry).")
        if st.button("Create the hidden board", key="instructor_make_board"):
            classroom.hidden_board(user)
            st.rerun()
        return
    st.markdown(f"**{board['name']}** (owner {board['owner']}): {board['probes']} images. "
                "Students never see it; each chooses a finished job as their entry on its "
                "Job page (without one, their best finished job counts).")
    if board["owner"] == user:
        st.page_link(nav.page("probes"), label="Add or remove its images on Probe boards",
                     query_params={"board": board["id"]})
    if st.button("Score the entries", type="primary", key="instructor_score"):
        with st.spinner("Scoring every student's entry on the hidden board…"):
            st.session_state[LEADERBOARD] = classroom.leaderboard(user)
    rows = st.session_state.get(LEADERBOARD)
    if rows is None:
        st.caption("Score the entries to see the leaderboard.")
        return
    if not rows:
        st.caption("No student has a finished job yet.")
        return
    table = pd.DataFrame([asdict(r) for r in rows])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "board_score": st.column_config.ProgressColumn("board score", format="percent",
                                                       min_value=0.0, max_value=1.0),
        "held_out_accuracy": st.column_config.NumberColumn("held-out accuracy",
                                                           format="percent")})
    st.download_button("Download CSV for grading", classroom.leaderboard_csv(rows),
                       file_name="leaderboard.csv", mime="text/csv", on_click="ignore",
                       key="instructor_csv")


def render() -> None:
    st.title("Instructor")
    user = session.current_user()
    if not roles.is_instructor(user):
        who = f"You are signed in as **{user}**, a student." if user else "Nobody is signed in."
        st.warning(f"This page is for the class's instructors. {who} Ask your instructor if "
                   "you should have access.")
        return
    tabs = st.tabs(["Class", "Lab progress", "Quotas", "Leaderboard"])
    with tabs[0]:
        _class(user)
    with tabs[1]:
        _lab()
    with tabs[2]:
        _quotas(user)
    with tabs[3]:
        _leaderboard(user)
