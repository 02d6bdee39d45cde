"""Accounts (instructors): create accounts from a CSV of names or one by one, reset a
password, set a role, sign a user out everywhere, lock datasets read-only; the sign-up mode
the host set. Views only draw: every rule is in engine/accounts and engine/access.

New passwords are shown once, in the run that made them (and offered as a CSV download that
does not rerun the page); they are never kept in the session."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import session
from engine.datasets import list_datasets
from engine.hosting import access, accounts, roles

SIGNUP_WORDS = {"open": "open: anyone who reaches this page can create a student account",
                "invite": "by invitation code: students need the code (STUDIO_INVITE_CODE)",
                "closed": "closed: only instructors create accounts"}


def render() -> None:
    st.title("Accounts")
    user = session.current_user()
    if not roles.is_instructor(user):
        st.error("Only instructors manage accounts.")
        return
    state = accounts.describe()
    st.caption(f"Sign-up is **{SIGNUP_WORDS[state['signup']]}** (set by the host: "
               "STUDIO_SIGNUP=open|invite|closed)."
               + (f" {state['signup_problem']}" if state.get("signup_problem") else "")
               + (" Single sign-on is configured." if session.sso_configured() else ""))
    me = accounts.get_account(user)
    if not state["accounts"] or me is None or not (me.has_password or me.email):
        _own_password_first(user, state["accounts"])
        return
    _users_table()
    c1, c2 = st.columns(2)
    with c1:
        _from_csv(user)
    with c2:
        _one_account(user)
    _manage(user)
    _datasets(user)


def _own_password_first(user: str, exist: bool) -> None:
    st.info("This workspace has no accounts yet (username-only sign-in). Set your own "
            "password first: once accounts exist, everyone signs in with one."
            if not exist else "Set your own password to manage accounts.")
    with st.form("own-password", clear_on_submit=True):
        password = st.text_input("Your password (8+ characters)", type="password")
        if st.form_submit_button("Set my password"):
            try:
                accounts.create_account(user, roles.INSTRUCTOR, password, by=user)
                token = accounts.authenticate(user, password)
            except (accounts.AccountError, PermissionError) as e:
                st.error(str(e))
            else:
                session.sign_in(user, token)
                st.rerun()


def _users_table() -> None:
    rows = [{"name": a.name, "role": a.role, "password": "yes" if a.has_password else "—",
             "single sign-on": a.email or "—",
             "must change password": "yes" if a.must_change else ""}
            for a in accounts.list_accounts()]
    st.subheader(f"Users ({len(rows)})")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="accounts_table")


def _show_passwords(result: accounts.ImportResult) -> None:
    st.success(f"Created {len(result.created)} account(s). Hand out these passwords now: "
               "they are shown only this once; each user chooses their own at first sign-in.")
    st.dataframe(pd.DataFrame(result.created, columns=["name", "role", "initial password"]),
                 hide_index=True)
    st.download_button("Download the passwords (CSV)", accounts.passwords_csv(result),
                       file_name="initial-passwords.csv", mime="text/csv",
                       on_click="ignore", key="accounts_download")


def _from_csv(user: str) -> None:
    st.subheader("From a CSV of names")
    st.caption("One account per row: `name[,role[,email]]` (role student or instructor; the "
               "email is what single sign-on maps onto). An optional header row.")
    with st.form("accounts-csv"):
        upload = st.file_uploader("CSV file", type=["csv", "txt"], key="accounts_csv_file")
        text = st.text_area("…or paste the names", key="accounts_csv_text",
                            placeholder="alice\nbob\ncarol,student,carol@example.edu")
        go = st.form_submit_button("Create accounts")
    if not go:
        return
    try:
        content = upload.getvalue().decode("utf-8-sig") if upload else text
    except UnicodeDecodeError:
        st.error("The file is not UTF-8 text; save it as CSV (UTF-8).")
        return
    try:
        result = accounts.import_csv(content or "", by=user)
    except (accounts.AccountError, PermissionError) as e:
        st.error(str(e))
        return
    if result.errors:
        st.error("No account was created; fix these rows and try again:\n\n"
                 + "\n".join(f"- {e}" for e in result.errors))
        return
    _show_passwords(result)


def _one_account(user: str) -> None:
    st.subheader("One account")
    with st.form("accounts-one", clear_on_submit=True):
        name = st.text_input("Username")
        role = st.selectbox("Role", roles.ROLES[::-1])
        email = st.text_input("Email for single sign-on (optional)")
        go = st.form_submit_button("Create account")
    if go:
        try:
            password = accounts.create_account(name, role, email=email or None, by=user)
        except (accounts.AccountError, PermissionError) as e:
            st.error(str(e))
            return
        _show_passwords(accounts.ImportResult([(name.strip(), role, password)], []))


def _manage(user: str) -> None:
    st.subheader("A user")
    names = [a.name for a in accounts.list_accounts()]
    chosen = st.selectbox("User", names, key="accounts_user")
    if not chosen:
        return
    c1, c2, c3 = st.columns(3)
    if c1.button("Reset password", key="accounts_reset",
                 help="A new password to hand over; all their sessions end"):
        try:
            password = accounts.reset_password(chosen, by=user)
        except (accounts.AccountError, PermissionError) as e:
            st.error(str(e))
        else:
            st.success(f"{chosen}'s new password (shown once): `{password}`")
    if c2.button("Sign out everywhere", key="accounts_revoke"):
        accounts.revoke_sessions(chosen, by=user)
        st.success(f"{chosen} is signed out everywhere.")
    current = roles.role_of(chosen)
    other = roles.STUDENT if current == roles.INSTRUCTOR else roles.INSTRUCTOR
    if c3.button(f"Make {other}", key="accounts_role"):
        try:
            accounts.set_role(chosen, other, by=user)
        except (accounts.AccountError, PermissionError) as e:
            st.error(str(e))
        else:
            st.rerun()


def _datasets(user: str) -> None:
    st.subheader("Datasets")
    rows = list_datasets(viewer=user)
    if not rows:
        st.caption("No datasets yet.")
        return
    st.caption("Locked datasets are read-only: nobody deletes them until an instructor "
               "unlocks them. Shared ones are seen by every student (an instructor's are "
               "always).")
    by_name = {d["name"]: d for d in rows}
    name = st.selectbox("Dataset", list(by_name), key="accounts_dataset",
                        format_func=lambda n: f"{n} ({by_name[n]['owner'] or 'host'})"
                        + (" · locked" if by_name[n]["locked"] else "")
                        + (" · shared" if by_name[n]["shared"] else ""))
    d = by_name[name]
    c1, c2 = st.columns(2)
    if c1.button("Unlock" if d["locked"] else "Lock read-only", key="accounts_lock"):
        access.set_dataset_flags(d["id"], user=user, locked=not d["locked"])
        st.rerun()
    if c2.button("Stop sharing" if d["shared"] else "Share with the class",
                 key="accounts_share"):
        access.set_dataset_flags(d["id"], user=user, shared=not d["shared"])
        st.rerun()
