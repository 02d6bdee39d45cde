"""Entry point: `streamlit run dashboard/app.py`. Gate, sign-in, then the pages."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

from dashboard import nav, session  # noqa: E402
from engine.jobs.threads import set_interactive_threads  # noqa: E402

set_interactive_threads(1)  # the dashboard's own inference: one thread; the cores are the jobs'


def gate() -> None:
    st.title("DIGITS Studio")
    st.write("This dashboard is protected. Enter the access password to continue.")
    with st.form("gate"):
        given = st.text_input("Access password", type="password")
        if st.form_submit_button("Enter"):
            if session.password_ok(given, session.access_password() or ""):
                st.session_state[session.UNLOCKED_KEY] = True
                st.rerun()
            st.error("Wrong password.")


def sign_in_box() -> None:
    user = session.current_user()
    with st.sidebar:
        if user:
            st.markdown(f"Signed in as **{user}**")
            if st.button("Sign out"):
                del st.session_state[session.USER_KEY]
                st.rerun()
            return
        with st.form("sign-in"):
            name = st.text_input("Username", placeholder="e.g. alice")
            if st.form_submit_button("Sign in"):
                error = session.validate_username(name.strip())
                if error:
                    st.error(error)
                else:
                    st.session_state[session.USER_KEY] = name.strip()
                    st.rerun()


def main() -> None:
    st.set_page_config(page_title="DIGITS Studio", layout="wide")
    if not session.unlocked():
        gate()
        return
    sign_in_box()
    st.navigation([nav.page(name) for name in nav.PAGES]).run()


main()
