"""Roles (issue 19): a user is a student unless made an instructor, by the store or by
STUDIO_INSTRUCTORS for a host's first instructor; an unknown role is refused."""

from __future__ import annotations

import pytest

from engine.hosting import roles
from engine.state import store


def test_roles_default_set_and_from_env(home, monkeypatch):
    monkeypatch.delenv("STUDIO_INSTRUCTORS", raising=False)
    assert roles.role_of("alice") == roles.STUDENT and roles.role_of(None) == roles.STUDENT
    roles.set_role("alice", roles.INSTRUCTOR)
    assert roles.is_instructor("alice") and not roles.is_instructor("bob")
    with store.opened() as conn:
        assert "alice" in store.list_users(conn)
    monkeypatch.setenv("STUDIO_INSTRUCTORS", " bob , carol")
    assert roles.is_instructor("bob") and roles.is_instructor("carol")
    roles.set_role("alice", roles.STUDENT)
    assert roles.role_of("alice") == roles.STUDENT
    with pytest.raises(ValueError, match="unknown role 'admin'"):
        roles.set_role("alice", "admin")
