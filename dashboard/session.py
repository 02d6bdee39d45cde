"""Who is using the dashboard, and the access gate for hosted dashboards.

Both survive a reload, a second tab and a shared link: signing in (or giving the access
password) stores a signed, expiring token (engine/hosting/sessions.py) in a cookie, which every new
Streamlit session reads back through st.context.cookies. With accounts (engine/accounts), the
token is checked against the user's account on every run, so a revocation (sign out
everywhere, a password change or reset) ends open sessions too; single sign-on users come
from Streamlit's st.login / st.user, mapped onto the same accounts. No password is ever kept
in the session state."""

from __future__ import annotations

import hmac
import json
import os
import time

import streamlit as st

from engine.hosting import accounts, sessions

USER_KEY = "user"
ISSUED_KEY = "user_issued"  # when this session's sign-in was issued (revocation compares it)
UNLOCKED_KEY = "unlocked"
NOTICE_KEY = "session_notice"
USERNAME_RE = accounts.USERNAME_RE
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
        claims = accounts.restore(_cookie("user"))
        if claims:
            st.session_state[USER_KEY] = claims.subject
            st.session_state[ISSUED_KEY] = claims.issued
        else:
            _from_single_sign_on()
    else:
        user = st.session_state.get(USER_KEY)
        if user and not accounts.session_valid(user, st.session_state.get(ISSUED_KEY, 0.0)):
            sign_out()  # revoked, or an account mode began: sign in again
            st.session_state[NOTICE_KEY] = "Your session ended (signed out everywhere, or " \
                                           "the password changed): sign in again."
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


def sign_in(name: str, token: str | None = None) -> None:
    """Sign in as `name`: with `token` (a checked password's, from engine/accounts), else a
    username-only token (laptop mode)."""
    token = token or sessions.issue(name, "user")
    claims = sessions.verify(token, "user")
    st.session_state[USER_KEY] = name
    st.session_state[ISSUED_KEY] = claims.issued if claims else time.time()
    _set_cookie("user", token)


def sign_out() -> None:
    st.session_state[USER_KEY] = None  # present but empty: the old cookie is not read again
    st.session_state.pop(ISSUED_KEY, None)
    _set_cookie("user", None)


def validate_username(name: str) -> str | None:
    """An error message, or None when the name is fine."""
    return accounts.validate_username(name)


# --- single sign-on (Streamlit's OIDC: an [auth] section in secrets) ----------------------------


def sso_configured() -> bool:
    """Whether the host configured an identity provider ([auth] in Streamlit's secrets)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file: not configured
        return False


def _sso_identity() -> tuple[str | None, str | None] | None:
    """(email, name) of the user Streamlit's st.login signed in, or None."""
    if not sso_configured():
        return None
    try:
        if not st.user.is_logged_in:
            return None
        return st.user.get("email"), st.user.get("name")
    except Exception:  # no browser behind this session, or auth not set up completely
        return None


def _from_single_sign_on() -> None:
    identity = _sso_identity()
    if identity is None:
        return
    try:
        name = accounts.user_for_identity(*identity)
    except accounts.AccountError as e:
        st.session_state[NOTICE_KEY] = str(e)
        return
    st.session_state[USER_KEY] = name
    st.session_state[ISSUED_KEY] = time.time()


def require_user(action: str) -> str | None:
    """The signed-in user, or a warning that `action` needs one."""
    user = current_user()
    if not user:
        st.warning(f"Sign in (sidebar) to {action}.")
    return user
