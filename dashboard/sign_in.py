"""The sidebar's sign-in box: a username on a laptop (no accounts), a password where accounts
exist, sign-up where the host allows it, single sign-on where the host configured it.

Forms that take a password clear on submit, so no password stays in the session's widget
state after the run that checks it. The checks themselves live in engine/accounts."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from dashboard import session
from engine.hosting import accounts, roles

LAPTOP_NOTE = ("Username-only sign-in: this workspace has no accounts (a single-user "
               "laptop), so nothing is checked. For a class, create accounts (Accounts page "
               "or `studio accounts`).")


def box(state: dict[str, Any]) -> None:
    user = session.current_user()
    with st.sidebar:
        notice = st.session_state.pop(session.NOTICE_KEY, None)
        if notice:
            st.warning(notice)
        if user:
            _signed_in(user, state)
        elif state["accounts"]:
            _password_form()
            _sign_up(state)
            _single_sign_on()
        else:
            _username_form()
            st.caption(LAPTOP_NOTE)
            _single_sign_on()
        if os.environ.get("STUDIO_REPLICA"):  # several dashboards behind a proxy (make replicas)
            st.caption(f"Served by replica {os.environ['STUDIO_REPLICA']}")


def landing(state: dict[str, Any]) -> None:
    """The main area in accounts mode before anyone signs in."""
    st.title("DIGITS Studio")
    st.info("Sign in (sidebar) to continue: this dashboard has accounts.")
    if state["signup"] == "closed":
        st.caption("No account yet? Your instructor creates them.")


def _username_form() -> None:
    with st.form("sign-in"):
        name = st.text_input("Username", placeholder="e.g. alice")
        if st.form_submit_button("Sign in"):
            error = session.validate_username(name.strip())
            if error:
                st.error(error)
            else:
                session.sign_in(name.strip())
                st.rerun()


def _password_form() -> None:
    with st.form("sign-in", clear_on_submit=True):
        name = st.text_input("Username", placeholder="e.g. alice")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in"):
            try:
                token = accounts.authenticate(name, password, client=session.client_key(),
                                              limiter=session.attempt_limiter())
            except accounts.AccountError as e:
                st.error(str(e).capitalize() + ".")
            else:
                session.sign_in(name.strip(), token)
                st.rerun()


def _sign_up(state: dict[str, Any]) -> None:
    if state["signup"] == "closed":
        if state.get("signup_problem"):
            st.caption(f"Sign-up is off: {state['signup_problem']}")
        return
    with st.expander("New here? Create an account"):
        with st.form("sign-up", clear_on_submit=True):
            name = st.text_input("Choose a username")
            password = st.text_input("Choose a password (8+ characters)", type="password")
            code = st.text_input("Invitation code", type="password") \
                if state["signup"] == "invite" else None
            if st.form_submit_button("Create account"):
                try:
                    token = accounts.sign_up(name, password, code)
                except accounts.AccountError as e:
                    st.error(str(e).capitalize() + ".")
                else:
                    session.sign_in(name.strip(), token)
                    st.rerun()


def _single_sign_on() -> None:
    if not session.sso_configured():
        return
    if st.button("Sign in with single sign-on", key="sso_login"):
        st.login()


def _signed_in(user: str, state: dict[str, Any]) -> None:
    role = roles.role_of(user)
    st.markdown(f"Signed in as **{user}**" + (" · instructor" if role == roles.INSTRUCTOR
                                               else ""))
    sso = session.sso_configured() and session._sso_identity() is not None
    if st.button("Sign out", key="sign_out"):
        session.sign_out()
        if sso:
            st.logout()
        st.rerun()
    if not state["accounts"]:
        return
    account = accounts.get_account(user)
    if account is None:
        return
    if st.button("Sign out everywhere", key="sign_out_all",
                 help="Ends every session of yours: other browsers, other tabs, the CLI"):
        accounts.revoke_sessions(user, by=user)
        session.sign_out()
        st.rerun()
    if account.has_password:
        if account.must_change:
            st.warning("You signed in with a password someone gave you: choose your own.")
        with st.expander("Change password", expanded=account.must_change):
            with st.form("change-password", clear_on_submit=True):
                old = st.text_input("Current password", type="password")
                new = st.text_input("New password (8+ characters)", type="password")
                if st.form_submit_button("Change password"):
                    try:
                        token = accounts.change_password(user, old, new)
                    except accounts.AccountError as e:
                        st.error(str(e).capitalize() + ".")
                    else:
                        session.sign_in(user, token)
                        st.success("Password changed; your other sessions are signed out.")
