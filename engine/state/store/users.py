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
