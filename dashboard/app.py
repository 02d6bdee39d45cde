"""Entry point: `streamlit run dashboard/app.py`. Gate, sign-in, then the pages."""

from __future__ import annotations

import streamlit as st

from dashboard import cpu_budget, nav, session, sign_in, warmup  # the project is installed
from engine.hosting import accounts, roles
from engine.threads import set_interactive_threads

set_interactive_threads(1)  # the dashboard's own inference: one thread; the cores are the jobs'


def gate() -> None:
    st.title("DIGITS Studio")
    st.write("This dashboard is protected. Enter the access password to continue.")
    limiter, client = session.attempt_limiter(), session.client_key()
    with st.form("gate"):
        given = st.text_input("Access password", type="password")
        if st.form_submit_button("Enter"):
            wait = limiter.wait_s(client)
            if wait > 0:
                st.error(f"Too many wrong passwords: try again in {wait:.0f} s.")
            elif session.password_ok(given, session.access_password() or ""):
                limiter.succeeded(client)
                session.unlock()
                st.rerun()  # the same page, with the same ?id=..., now unlocked
            else:
                limiter.failed(client)
                st.error("Wrong password.")


def main() -> None:
    st.set_page_config(page_title="DIGITS Studio", layout="wide")
    warmup.start()  # PyTorch & co. load in the background while the first page shows
    session.restore()
    pages = [nav.page(name) for name in nav.PAGES]
    if not session.unlocked():
        # Navigation is still declared (hidden), so the page and query asked for in the URL
        # (a shared /job?id=...) stay there and open once the password is given.
        st.navigation(pages, position="hidden")
        gate()
        return
    state = accounts.describe()
    sign_in.box(state)
    with st.sidebar:  # below the sign-in box: no gap in the page
        session.write_cookies()
    user = session.current_user()
    if state["accounts"] and not user:
        # Accounts mode: nothing but the sign-in until someone signs in; the page asked for
        # in the URL stays there and opens after.
        st.navigation(pages, position="hidden")
        sign_in.landing(state)
        return
    if not roles.is_instructor(user):
        pages = [p for p, name in zip(pages, nav.PAGES, strict=True)
                 if name not in nav.INSTRUCTOR_PAGES]
    st.navigation(pages).run()


try:
    budget = cpu_budget.current()
except ValueError as e:  # the host's setting: say which and why, in the page
    st.error(str(e))
    st.stop()
with budget.run():
    main()
