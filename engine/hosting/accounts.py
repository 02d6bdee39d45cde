"""Accounts for a hosted class: passwords, sign-up, sessions that can be revoked, single sign-on.

A workspace is in one of two modes:
- **laptop** (no account exists, the default): sign-in is a username, nothing is checked;
  it separates one person's experiments, or a few people's on one machine.
- **accounts** (at least one user has a password or a single sign-on email): every sign-in
  is checked, tokens of users without an account stop working, students see only their own
  work (engine/access).

Passwords are hashed with scrypt (hashlib, memory-hard), a random 16-byte salt per password;
the store keeps `scrypt$N$r$p$salt$hash`, never the password, and verification compares in
constant time. A user's sessions are the signed, expiring tokens of engine/sessions; those
issued before the user's `sessions_after` are revoked (sign out everywhere, password change,
reset). Sign-up is set by the host: STUDIO_SIGNUP=open | invite (with STUDIO_INVITE_CODE) |
closed (the default: an instructor creates accounts, one by one or from a CSV of names).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import os
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from engine.hosting import access, roles, sessions
from engine.state import store

Home = str | os.PathLike | None

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024  # the upper bound keeps a hash from being a DoS
SIGNUP_ENV, INVITE_ENV, SCRYPT_N_ENV = "STUDIO_SIGNUP", "STUDIO_INVITE_CODE", "STUDIO_SCRYPT_N"
SIGNUP_MODES = ("open", "invite", "closed")
# scrypt's cost: N=2**15, r=8 is 32 MiB and ~0.1 s per hash on one core: many students
# signing in at once stay within a server's memory. The parameters are stored with each
# hash, so raising STUDIO_SCRYPT_N later upgrades each password at its next sign-in.
DEFAULT_N, R, P = 2 ** 15, 8, 1
CSV_MAX_ROWS = 2000


class AccountError(ValueError):
    """A problem the user can fix (a bad name, a wrong password, sign-up closed): one line."""


class TooManyAttempts(AccountError):
    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        super().__init__(f"too many wrong passwords: try again in {wait_s:.0f} s")


# --- hashing ------------------------------------------------------------------------------------


def _std_b64(data: bytes) -> str:
    """Standard base64 with padding: the stored hash's format (sessions' tokens use URL-safe)."""
    return base64.b64encode(data).decode()


def _scrypt_n() -> int:
    raw = os.environ.get(SCRYPT_N_ENV, "")
    try:
        n = int(raw) if raw else DEFAULT_N
    except ValueError:
        raise AccountError(f"{SCRYPT_N_ENV} must be a power of two, not {raw!r}") from None
    if n < 2 ** 10 or n & (n - 1):
        raise AccountError(f"{SCRYPT_N_ENV} must be a power of two of at least 1024, not {n}")
    return n


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=2 * 128 * n * r * p + 2 ** 20)


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash` (base64) for a password that meets the rules."""
    check_password_rules(password)
    n, salt = _scrypt_n(), secrets.token_bytes(16)
    return f"scrypt${n}${R}${P}${_std_b64(salt)}${_std_b64(_scrypt(password, salt, n, R, P))}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches the stored hash (constant-time compare; never raises)."""
    if not stored or not isinstance(password, str) or len(password) > MAX_PASSWORD:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def _needs_rehash(stored: str) -> bool:
    parts = stored.split("$")
    return len(parts) != 6 or int(parts[1]) != _scrypt_n()


# A hash to check wrong user names against, so a missing account takes as long as a wrong
# password (made once, at first need).
_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        salt = secrets.token_bytes(16)
        n = _scrypt_n()
        _DUMMY.append(f"scrypt${n}${R}${P}${_std_b64(salt)}$"
                      f"{_std_b64(_scrypt(secrets.token_hex(8), salt, n, R, P))}")
    return _DUMMY[0]


# --- rules --------------------------------------------------------------------------------------


def validate_username(name: str) -> str | None:
    """An error message, or None when the name is fine."""
    if not isinstance(name, str) or not USERNAME_RE.match(name):
        return ("A username is 1-32 letters, digits, '.', '_' or '-', starting with a letter "
                "or digit.")
    return None


def check_password_rules(password: str, username: str | None = None) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password has at most {MAX_PASSWORD} characters")
    if username and password.casefold() == username.casefold():
        raise AccountError("a password must not be the username")


def _check_name(name: str) -> str:
    name = (name or "").strip()
    error = validate_username(name)
    if error:
        raise AccountError(f"{name!r}: {error}")
    return name


def generate_password() -> str:
    """An initial password to hand a student: 12 characters from an alphabet without
    look-alikes (0/O, 1/l/I), about 70 bits."""
    alphabet = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def signup_mode() -> str:
    """The host's setting STUDIO_SIGNUP: open, invite or closed (default)."""
    mode = os.environ.get(SIGNUP_ENV, "closed").strip().lower() or "closed"
    if mode not in SIGNUP_MODES:
        raise AccountError(f"{SIGNUP_ENV}={mode!r} is not one of {', '.join(SIGNUP_MODES)}")
    if mode == "invite" and not os.environ.get(INVITE_ENV):
        raise AccountError(f"{SIGNUP_ENV}=invite needs the code in {INVITE_ENV}")
    return mode


# --- the store ----------------------------------------------------------------------------------


def accounts_exist(home: Home = None) -> bool:
    """Whether the workspace is in accounts mode (else laptop mode: usernames only)."""
    with store.opened(home) as conn:
        return store.accounts_exist(conn)


def _row(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    return store.get_user(conn, name)


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    has_password: bool
    email: str | None
    must_change: bool
    sessions_after: float
    created: float


def _account(row: sqlite3.Row) -> Account:
    return Account(row["name"], roles.INSTRUCTOR if row["name"] in roles.from_env()
                   else row["role"], row["password_hash"] is not None, row["email"],
                   bool(row["must_change"]), row["sessions_after"], row["created"])


def list_accounts(home: Home = None) -> list[Account]:
    """Every user the store knows, with or without a password, by name."""
    with store.opened(home) as conn:
        return [_account(r) for r in store.all_users(conn)]


def get_account(name: str, home: Home = None) -> Account | None:
    with store.opened(home) as conn:
        row = _row(conn, name)
    return _account(row) if row else None


def _set_password(conn: sqlite3.Connection, name: str, password: str, *, must_change: bool,
                  revoke: bool) -> None:
    check_password_rules(password, name)
    digest = hash_password(password)
    store.ensure_user(conn, name)
    store.set_password_hash(conn, name, digest, must_change=must_change)
    if revoke:
        store.revoke_user_sessions(conn, name)


def create_account(name: str, role: str = roles.STUDENT, password: str | None = None, *,
                   email: str | None = None, by: str | None = None, home: Home = None) -> str:
    """A new account (instructors only, or the host's first); returns its password (the one
    given, or a generated one the user must change at first sign-in). Never stored as such."""
    name = _check_name(name)
    if role not in roles.ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(roles.ROLES)}")
    access.require_instructor(by, "only an instructor may create accounts", home)
    generated = password is None
    password = generate_password() if generated else password
    with store.opened(home) as conn, store.transaction(conn):
        row = _row(conn, name)
        if row is not None and row["password_hash"] is not None:
            raise AccountError(f"an account named {name!r} already exists")
        _check_own_password_first(conn, by, name)
        _set_password(conn, name, password, must_change=generated, revoke=True)
        store.set_user_email(conn, name, _clean_email(email), role=role)
    return password


def _check_own_password_first(conn: sqlite3.Connection, by: str | None,
                              name: str | None = None) -> None:
    """The first accounts made by a laptop-mode instructor would lock them out: once accounts
    exist, everyone signs in with a password."""
    if by is not None and by != name and not store.accounts_exist(conn):
        raise AccountError(f"set your own password first ({by}): once accounts exist, "
                           "everyone signs in with one")


def _clean_email(email: str | None) -> str | None:
    email = (email or "").strip().lower()
    if not email:
        return None
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise AccountError(f"{email!r} is not an email address")
    return email


@dataclass(frozen=True)
class ImportResult:
    created: list[tuple[str, str, str]]  # (name, role, initial password): shown once
    errors: list[str]


def import_csv(text: str, *, by: str | None = None, home: Home = None) -> ImportResult:
    """Accounts from a CSV of names: one per row, `name[,role[,email]]`, an optional header
    row (name,role,email). All or nothing: any bad row creates none and lists every problem
    with its line number. Returns each new account's generated password, to hand out once."""
    access.require_instructor(by, "only an instructor may create accounts", home)
    if len(text) > 1_000_000:
        raise AccountError("the CSV is over 1 MB; a class list is a few KB")
    rows = list(csv.reader(io.StringIO(text)))
    if rows and rows[0] and rows[0][0].strip().lower() in ("name", "username", "user"):
        rows, first = rows[1:], 2
    else:
        first = 1
    errors, wanted, seen = [], [], set()
    with store.opened(home) as conn:
        existing = {n.casefold(): n for n in store.account_names(conn)}
        emails = store.user_emails(conn)
    for line, row in enumerate(rows, first):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if len(cells) > 3:
            errors.append(f"line {line}: {len(cells)} columns; use name[,role[,email]]")
            continue
        name, role, email = (cells + ["", ""])[:3]
        role = role.lower() or roles.STUDENT
        problem = validate_username(name)
        if problem:
            errors.append(f"line {line}: {name!r}: {problem}")
        elif name.casefold() in seen:
            errors.append(f"line {line}: {name!r} appears twice in the file")
        elif name.casefold() in existing:
            errors.append(f"line {line}: an account named {existing[name.casefold()]!r} "
                          "already exists")
        if role not in roles.ROLES:
            errors.append(f"line {line}: unknown role {role!r}; use {' or '.join(roles.ROLES)}")
        try:
            email = _clean_email(email)
        except AccountError as e:
            errors.append(f"line {line}: {e}")
        if email and email in emails:
            errors.append(f"line {line}: the email {email!r} belongs to another account")
        seen.add(name.casefold())
        if email:
            emails.add(email)
        wanted.append((name, role, email))
    if not wanted and not errors:
        errors.append("the CSV has no names")
    if len(wanted) > CSV_MAX_ROWS:
        errors.append(f"{len(wanted)} rows: at most {CSV_MAX_ROWS} at once")
    if errors:
        return ImportResult([], errors)
    created = []
    with store.opened(home) as conn, store.transaction(conn):
        _check_own_password_first(conn, by)
        for name, role, email in wanted:
            password = generate_password()
            _set_password(conn, name, password, must_change=True, revoke=True)
            store.set_user_email(conn, name, email, role=role)
            created.append((name, role, password))
    return ImportResult(created, [])


def passwords_csv(result: ImportResult) -> str:
    """The new accounts and their initial passwords as CSV, to download once."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "role", "initial password"])
    writer.writerows(result.created)
    return out.getvalue()


def sign_up(name: str, password: str, invite_code: str | None = None, *,
            home: Home = None) -> str:
    """A student account made by the student, where the host allows it; returns a token."""
    mode = signup_mode()
    if mode == "closed":
        raise AccountError("sign-up is closed here: ask your instructor for an account")
    if mode == "invite" and not hmac.compare_digest(
            (invite_code or "").encode(), os.environ.get(INVITE_ENV, "").encode()):
        raise AccountError("that invitation code is not right")
    name = _check_name(name)
    with store.opened(home) as conn, store.transaction(conn):
        row = _row(conn, name)
        if row is not None and (row["password_hash"] is not None or row["email"]):
            raise AccountError(f"the name {name!r} is taken; pick another")
        # revoke: a username-only token of the laptop days must not become this account's
        _set_password(conn, name, password, must_change=False, revoke=True)
    time.sleep(0.002)  # the new token is issued strictly after the revocation
    return sessions.issue(name, "user", home=home)


def authenticate(name: str, password: str, *, client: str = "local",
                 limiter: sessions.AttemptLimiter | None = None, home: Home = None) -> str:
    """A session token for the right password; AccountError otherwise (the same words for a
    wrong name and a wrong password). With a limiter, failures per (name, client) back off."""
    name = (name or "").strip()
    key = f"{name.casefold()}@{client}"
    if limiter is not None:
        wait = limiter.wait_s(key)
        if wait > 0:
            raise TooManyAttempts(wait)
    with store.opened(home) as conn:
        row = _row(conn, name) if validate_username(name) is None else None
    stored = row["password_hash"] if row is not None else None
    ok = verify_password(password, stored or _dummy_hash()) and stored is not None
    if not ok:
        if limiter is not None:
            limiter.failed(key)
        raise AccountError("wrong username or password")
    if limiter is not None:
        limiter.succeeded(key)
    if _needs_rehash(stored):
        with store.opened(home) as conn:
            store.set_password_hash(conn, name, hash_password(password))
    return sessions.issue(name, "user", home=home)


def restore(token: str | None, *, home: Home = None) -> sessions.Claims | None:
    """The claims of a user token that is still good: signed, unexpired, and (in accounts
    mode) of a user with an account whose sessions were not revoked since it was issued."""
    claims = sessions.verify(token, "user", home=home)
    if claims is None or validate_username(claims.subject) is not None:
        return None
    return claims if session_valid(claims.subject, claims.issued, home=home) else None


def session_valid(name: str, issued: float, *, home: Home = None) -> bool:
    """Whether a session of `name` issued at `issued` still holds (always, in laptop mode)."""
    with store.opened(home) as conn:
        if not store.accounts_exist(conn):
            return True
        row = _row(conn, name)
    if row is None or (row["password_hash"] is None and row["email"] is None):
        return False
    return issued > row["sessions_after"]


def revoke_sessions(name: str, *, by: str | None = None, home: Home = None) -> None:
    """Sign `name` out everywhere: every token issued until now stops working. A user may do
    it to themselves; an instructor to anyone."""
    if by != name:
        access.require_instructor(by, "only an instructor may sign other users out", home)
    with store.opened(home) as conn:
        if _row(conn, name) is None:
            raise AccountError(f"no user named {name!r}")
        store.revoke_user_sessions(conn, name)


def change_password(name: str, old: str, new: str, *, home: Home = None) -> str:
    """The user's own change (needs the old one); signs out their other sessions and returns
    a fresh token for this one."""
    with store.opened(home) as conn:
        row = _row(conn, name)
    if row is None or not verify_password(old, row["password_hash"]):
        raise AccountError("the current password is not right")
    if hmac.compare_digest(old.encode(), new.encode()):
        raise AccountError("the new password is the same as the current one")
    with store.opened(home) as conn, store.transaction(conn):
        _set_password(conn, name, new, must_change=False, revoke=True)
    time.sleep(0.002)  # the new token is issued strictly after the revocation
    return sessions.issue(name, "user", home=home)


def reset_password(name: str, *, by: str | None, home: Home = None) -> str:
    """An instructor's reset: a generated password (returned, to hand over once), which the
    user must change; every session of the user is revoked."""
    access.require_instructor(by, "only an instructor may reset passwords", home)
    with store.opened(home) as conn:
        if _row(conn, name) is None:
            raise AccountError(f"no user named {name!r}")
    password = generate_password()
    with store.opened(home) as conn, store.transaction(conn):
        _set_password(conn, name, password, must_change=True, revoke=True)
    return password


def set_role(name: str, role: str, *, by: str | None, home: Home = None) -> None:
    """An instructor makes a user an instructor or a student (not themselves a student, so
    a class never loses its last instructor by a slip)."""
    access.require_instructor(by, "only an instructor may set roles", home)
    if role not in roles.ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(roles.ROLES)}")
    if by == name and role != roles.INSTRUCTOR:
        raise AccountError("you cannot make yourself a student; ask another instructor")
    with store.opened(home) as conn:
        if _row(conn, name) is None:
            raise AccountError(f"no user named {name!r}")
    roles.set_role(name, role, home)


# --- single sign-on -----------------------------------------------------------------------------


def user_for_identity(email: str | None, display_name: str | None = None, *,
                      home: Home = None) -> str:
    """The user an identity provider's account maps onto (Streamlit's st.user after
    st.login): the account with that email; else, where sign-up is open, a new student named
    after the email (alice@uni.edu -> alice, alice2, ...). Otherwise AccountError: the
    instructor gives the email to an account first (the CSV's third column)."""
    email = _clean_email(email)
    if not email:
        raise AccountError("the identity provider gave no email address; ask the host to "
                           "request the 'email' scope")
    with store.opened(home) as conn:
        known = store.user_with_email(conn, email)
    if known is not None:
        return known
    if signup_mode() != "open":
        raise AccountError(f"no account here has the email {email}; ask your instructor to "
                           "add it")
    stem = re.sub(r"[^A-Za-z0-9_.-]", "", email.split("@")[0])[:28].lstrip("._-") or "user"
    with store.opened(home) as conn, store.transaction(conn):
        taken = set(store.list_users(conn))
        name = stem if stem not in taken else next(
            f"{stem}{i}" for i in range(2, 10 ** 4) if f"{stem}{i}" not in taken)
        store.ensure_user(conn, name)
        store.set_user_email(conn, name, email)
    return name


def describe(home: Home = None) -> dict[str, Any]:
    """What the sign-in box and the Accounts page say about the workspace."""
    try:
        mode, problem = signup_mode(), None
    except AccountError as e:
        mode, problem = "closed", str(e)
    return {"accounts": accounts_exist(home), "signup": mode, "signup_problem": problem}
