"""Entry point: `streamlit run dashboard/app.py`. Gate, sign-in, then the pages."""

from __future__ import annotations

import streamlit as st

from dashboard import nav, session, warmup  # the project is installed: no path edits
from engine import roles
from engine.jobs.threads import set_interactive_threads

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


def sign_in_box() -> None:
    user = session.current_user()
    with st.sidebar:
        if user:
            st.markdown(f"Signed in as **{user}**")
            if st.button("Sign out"):
                session.sign_out()
                st.rerun()
            return
        with st.form("sign-in"):
            name = st.text_input("Username", placeholder="e.g. alice")
            if st.form_submit_button("Sign in"):
                error = session.validate_username(name.strip())
                if error:
                    st.error(error)
                else:
                    session.sign_in(name.strip())
                    st.rerun()


def main() -> None:
    st.set_page_config(page_title="DIGITS Studio", layout="wide")
    warmup.start()  # PyTorch & co. load in the background while the first page shows
    session.restore()
    names = list(nav.PAGES)
    if not session.unlocked():
        # Navigation is still declared (hidden), so the page and query asked for in the URL
        # (a shared /job?id=...) stay there and open once the password is given.
        st.navigation([nav.page(n) for n in names], position="hidden")
        gate()
        return
    sign_in_box()
    if not roles.is_instructor(session.current_user()):
        names = [n for n in names if n not in nav.INSTRUCTOR_PAGES]
    with st.sidebar:  # below the sign-in box: no gap in the page
        session.write_cookies()
    st.navigation([nav.page(n) for n in names]).run()


main()
