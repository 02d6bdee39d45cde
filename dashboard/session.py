"""Who is using the dashboard, and the access gate for hosted dashboards.

Both survive a reload, a second tab and a shared link: signing in (or giving the access
password) stores a signed, expiring token (engine/sessions.py) in a cookie, which every new
Streamlit session reads back through st.context.cookies."""

from __future__ import annotations

import hmac
import json
import os
import re

import streamlit as st

from engine import sessions

USER_KEY = "user"
UNLOCKED_KEY = "unlocked"
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
COOKIES = {"user": "studio_session", "gate": "studio_gate"}
_WANTED = "_session_cookies"  # the cookies this session set (name -> token, None = deleted)


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


@st.cache_resource
def attempt_limiter() -> sessions.AttemptLimiter:
    """One limiter for the whole server: wrong passwords count per client address."""
    return sessions.AttemptLimiter()


def client_key() -> str:
    """Who is guessing: the client's address (behind a proxy, the proxy's: all share one
    limit, which errs on the safe side)."""
    try:
        ip = st.context.ip_address
    except Exception:  # no browser behind this session
        ip = None
    return ip if isinstance(ip, str) and ip else "local"


def _cookie(kind: str) -> str | None:
    try:
        return st.context.cookies.get(COOKIES[kind])
    except Exception:  # no browser behind this session (AppTest, bare mode)
        return None


def restore() -> None:
    """At the top of every run: take the user and the gate back from the cookies, once per
    Streamlit session (a sign-out in this session wins over the cookie it started with)."""
    if USER_KEY not in st.session_state:
        claims = sessions.verify(_cookie("user"), "user")
        if claims and validate_username(claims.subject) is None:
            st.session_state[USER_KEY] = claims.subject
    if UNLOCKED_KEY not in st.session_state and sessions.verify(_cookie("gate"), "gate"):
        st.session_state[UNLOCKED_KEY] = True


def write_cookies() -> None:
    """Keep the browser's cookies as sign-in, sign-out and unlocking set them. The script is
    drawn on every run, not once: a run cut short by a rerun (or a browser slow to load the
    element) would otherwise lose it, and a reload would sign the user out. Unchanged, it is
    not run again; any change runs it (setting a cookie twice is harmless)."""
    wanted = st.session_state.get(_WANTED)
    if not wanted:
        return
    try:
        secure = "; Secure" if str(st.context.url or "").startswith("https:") else ""
    except Exception:  # no browser behind this session
        secure = ""
    lines = []
    for name, token in sorted(wanted.items()):
        age = int(sessions.DEFAULT_TTL_S) if token else 0
        value = json.dumps(f"{name}={token or ''}; path=/; max-age={age}; SameSite=Strict"
                           f"{secure}")
        lines.append(f"document.cookie = {value};")
    st.html(f"<script>{''.join(lines)}</script>", unsafe_allow_javascript=True)


def _set_cookie(kind: str, token: str | None) -> None:
    st.session_state[_WANTED] = {**st.session_state.get(_WANTED, {}), COOKIES[kind]: token}


def unlocked() -> bool:
    return access_password() is None or bool(st.session_state.get(UNLOCKED_KEY))


def unlock() -> None:
    st.session_state[UNLOCKED_KEY] = True
    _set_cookie("gate", sessions.issue("browser", "gate"))


def current_user() -> str | None:
    return st.session_state.get(USER_KEY)


def sign_in(name: str) -> None:
    st.session_state[USER_KEY] = name
    _set_cookie("user", sessions.issue(name, "user"))


def sign_out() -> None:
    st.session_state[USER_KEY] = None  # present but empty: the old cookie is not read again
    _set_cookie("user", None)


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
