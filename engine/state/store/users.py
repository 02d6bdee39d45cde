"""The users table: names, roles, and (engine/hosting/accounts) password hashes, emails and
session cut-offs."""

from __future__ import annotations

import sqlite3
import time


def ensure_user(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("INSERT OR IGNORE INTO users (name, created) VALUES (?, ?)", (name, time.time()))


def list_users(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM users ORDER BY name")]


def user_role(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def set_user_role(conn: sqlite3.Connection, name: str, role: str) -> None:
    ensure_user(conn, name)
    conn.execute("UPDATE users SET role = ? WHERE name = ?", (role, name))


def accounts_exist(conn: sqlite3.Connection) -> bool:
    """Whether the workspace is in accounts mode: some user has a password or an email."""
    return conn.execute("SELECT 1 FROM users WHERE password_hash IS NOT NULL OR email IS NOT "
                        "NULL LIMIT 1").fetchone() is not None


def users_with_role(conn: sqlite3.Connection, role: str) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM users WHERE role = ?", (role,))}


def get_user(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    """A user's whole row (name, role, password_hash, email, must_change, sessions_after)."""
    return conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()


def all_users(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every user's whole row, by name."""
    return conn.execute("SELECT * FROM users ORDER BY name").fetchall()


def user_with_email(conn: sqlite3.Connection, email: str) -> str | None:
    row = conn.execute("SELECT name FROM users WHERE email = ?", (email,)).fetchone()
    return row[0] if row else None


def account_names(conn: sqlite3.Connection) -> list[str]:
    """Users with a password (accounts, not just names seen in laptop mode)."""
    return [r[0] for r in conn.execute("SELECT name FROM users WHERE password_hash IS NOT NULL")]


def user_emails(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT email FROM users WHERE email IS NOT NULL")}


def set_password_hash(conn: sqlite3.Connection, name: str, digest: str,
                      must_change: bool | None = None) -> None:
    """Store a password hash (never a password); must_change None leaves that flag as it is."""
    if must_change is None:
        conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (digest, name))
    else:
        conn.execute("UPDATE users SET password_hash = ?, must_change = ? WHERE name = ?",
                     (digest, int(must_change), name))


def revoke_user_sessions(conn: sqlite3.Connection, name: str, now: float | None = None) -> None:
    """Sessions issued before now stop holding (engine/hosting/accounts.session_valid)."""
    conn.execute("UPDATE users SET sessions_after = ? WHERE name = ?",
                 (time.time() if now is None else now, name))


def set_user_email(conn: sqlite3.Connection, name: str, email: str | None,
                   role: str | None = None) -> None:
    """Set a user's email, and their role too when given."""
    if role is None:
        conn.execute("UPDATE users SET email = ? WHERE name = ?", (email, name))
    else:
        conn.execute("UPDATE users SET role = ?, email = ? WHERE name = ?", (role, email, name))
