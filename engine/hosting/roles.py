"""Roles for a hosted class: an instructor (administers the class: sees every job, dataset and
board, cancels or deletes any job, sets quotas) or a student (sees and changes only their own
work and what is shared with them). A user is a student unless made an instructor, by
`studio accounts role NAME instructor` or, for a host's first instructor, STUDIO_INSTRUCTORS
(comma-separated names)."""

from __future__ import annotations

import os

from engine.state import store

INSTRUCTOR, STUDENT = "instructor", "student"
ROLES = (INSTRUCTOR, STUDENT)


def from_env() -> set[str]:
    """The instructors a host names in STUDIO_INSTRUCTORS (comma-separated)."""
    return {n.strip() for n in os.environ.get("STUDIO_INSTRUCTORS", "").split(",") if n.strip()}


def role_of(user: str | None, home: str | os.PathLike | None = None) -> str:
    """The user's role; nobody signed in (None) is a student."""
    if not user:
        return STUDENT
    if user in from_env():
        return INSTRUCTOR
    with store.opened(home) as conn:
        return store.user_role(conn, user) or STUDENT


def is_instructor(user: str | None, home: str | os.PathLike | None = None) -> bool:
    return role_of(user, home) == INSTRUCTOR


def set_role(user: str, role: str, home: str | os.PathLike | None = None) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    with store.opened(home) as conn, store.transaction(conn):
        store.set_user_role(conn, user, role)
