"""Who is using the dashboard, and the access gate for hosted dashboards."""

from __future__ import annotations

import hmac
import os
import re

import streamlit as st

USER_KEY = "user"
UNLOCKED_KEY = "unlocked"
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def access_password() -> str | None:
    """The hosting password: $STUDIO_PASSWORD, else Streamlit secrets' `password`."""
    env = os.environ.get("STUDIO_PASSWORD")
    if env:
        return env
    try:
        return st.secrets.get("password") or None
    except Exception:  # no secrets file: not an error, just no password
        return None


def password_ok(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def unlocked() -> bool:
    return access_password() is None or bool(st.session_state.get(UNLOCKED_KEY))


def current_user() -> str | None:
    return st.session_state.get(USER_KEY)


def validate_username(name: str) -> str | None:
    """An error message, or None when the name is fine."""
    if not USERNAME_RE.match(name):
        return ("A username is 1-32 letters, digits, '.', '_' or '-', starting with a letter "
                "or digit.")
    return None


def require_user(action: str) -> str | None:
    """The signed-in user, or a warning that `action` needs one."""
    user = current_user()
    if not user:
        st.warning(f"Sign in (sidebar) to {action}.")
    return user
