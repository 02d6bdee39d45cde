"""Who may see and change what: the one place the roles are enforced, for the dashboard and
the CLI alike (engine/jobs/api, engine/datasets/catalog and engine/evaluation/probes ask here).

- `user=None` is the local caller (the host's shell, the scheduler, a dashboard nobody signed
  in to on a laptop): it sees everything and may act on any job, as before accounts existed.
- An **instructor** sees every job, dataset and board, may cancel or delete any job and lock
  datasets read-only; their actions are recorded under their own name (nobody acts as
  another user: there is no "act as" anywhere).
- A **student** changes only their own jobs, datasets and boards. In laptop mode (no accounts)
  they see everyone's, as a shared lab machine always did; in accounts mode they see only
  their own work, jobs and datasets nobody owns (the host's), datasets an instructor made or
  shared, and shared boards.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from engine.hosting import roles
from engine.state import store

Home = str | os.PathLike | None


def instructors(conn: sqlite3.Connection) -> set[str]:
    return roles.from_env() | store.users_with_role(conn, roles.INSTRUCTOR)


def is_instructor_in(conn: sqlite3.Connection, user: str | None) -> bool:
    return bool(user) and (user in roles.from_env()
                           or store.user_role(conn, user) == roles.INSTRUCTOR)


def acts_as_instructor(conn: sqlite3.Connection, user: str | None) -> bool:
    """The one rule for instructor-only actions: an instructor (a role in the store, or named
    in $STUDIO_INSTRUCTORS); or, on a workspace with no accounts and no instructor yet, the
    host's own shell (user None): a single-user laptop, or a class's first set-up."""
    if user is None:
        return not store.accounts_exist(conn) and not instructors(conn)
    return is_instructor_in(conn, user)


def require_instructor(user: str | None, refusal: str, home: Home = None) -> None:
    """PermissionError (`refusal`, then why) unless `user` acts as an instructor."""
    with store.opened(home) as conn:
        if acts_as_instructor(conn, user):
            return
    why = (": sign in as one (`studio login NAME`)" if user is None
           else f" ({user} is a student)")
    raise PermissionError(refusal + why)


def restricted(conn: sqlite3.Connection, user: str | None) -> bool:
    """Whether `user` sees only their own work: a student in accounts mode."""

    return user is not None and store.accounts_exist(conn) and not is_instructor_in(conn, user)


# --- jobs ---------------------------------------------------------------------------------------


def may_see_job(conn: sqlite3.Connection, job: store.Job, user: str | None) -> bool:
    return not restricted(conn, user) or job.owner in (None, user)


def check_job_visible(conn: sqlite3.Connection, job: store.Job, user: str | None) -> None:
    if not may_see_job(conn, job, user):
        raise PermissionError(f"job {job.id} belongs to another user")


def check_job_action(conn: sqlite3.Connection, job: store.Job, user: str | None,
                     action: str) -> None:
    """PermissionError (one line) unless `user` may `action` (cancel, resume, delete) the job.
    Instructors may cancel or delete any job; resuming (which writes into the job) stays
    with its owner. In accounts mode a job nobody owns is the host's."""
    owner = job.owner
    if user is None or owner == user:
        return
    if action in ("cancel", "delete") and is_instructor_in(conn, user):
        return
    if owner is None and not restricted(conn, user):
        return
    whose = f"belongs to {owner}" if owner else "belongs to the host"
    raise PermissionError(f"job {job.id} {whose}; only its owner may {action} it "
                          f"(you act as {user})")


# --- datasets -----------------------------------------------------------------------------------


def may_see_dataset(conn: sqlite3.Connection, row: dict[str, Any], user: str | None,
                    teachers: set[str] | None = None) -> bool:
    if not restricted(conn, user):
        return True
    owner = row.get("owner")
    teachers = instructors(conn) if teachers is None else teachers
    return owner in (None, user) or bool(row.get("shared")) or owner in teachers


def filter_datasets(conn: sqlite3.Connection, rows: list[dict[str, Any]], user: str | None
                    ) -> list[dict[str, Any]]:
    if not restricted(conn, user):
        return rows
    teachers = instructors(conn)
    return [r for r in rows if may_see_dataset(conn, r, user, teachers)]


def check_dataset_visible(conn: sqlite3.Connection, row: dict[str, Any], user: str | None
                          ) -> None:
    if not may_see_dataset(conn, row, user):
        raise PermissionError(f"dataset {row['name']!r} belongs to another user")


def check_dataset_delete(conn: sqlite3.Connection, row: dict[str, Any], user: str | None
                         ) -> None:
    """Locked datasets are read-only for everyone (an instructor unlocks first); otherwise the
    owner, an instructor or the local caller may delete."""
    if row.get("locked"):
        raise PermissionError(f"dataset {row['name']!r} is locked read-only by an instructor; "
                              "an instructor must unlock it first")
    owner = row.get("owner")
    if user is None or owner == user or acts_as_instructor(conn, user):
        return
    if owner is None and not restricted(conn, user):
        return
    raise PermissionError(f"dataset {row['name']!r} belongs to {owner or 'the host'}; only "
                          f"its owner may delete it (you act as {user})")


def set_dataset_flags(id_or_name: str, *, user: str | None, shared: bool | None = None,
                      locked: bool | None = None, home: Home = None) -> dict[str, Any]:
    """Share a dataset with the class (its owner or an instructor) or lock it read-only
    (instructors only). Returns the dataset's row."""
    with store.opened(home) as conn, store.transaction(conn):
        row = store.get_dataset(conn, id_or_name)
        if row is None:
            raise ValueError(f"no dataset {id_or_name!r}")
        teacher = acts_as_instructor(conn, user)
        if locked is not None and not teacher:
            raise PermissionError("only an instructor may lock or unlock a dataset")
        if shared is not None and not (teacher or row["owner"] == user):
            raise PermissionError(f"only the owner of {row['name']!r} or an instructor may "
                                  "share it")
        store.set_dataset_flags(conn, row["id"], shared=shared, locked=locked)
        return store.get_dataset(conn, row["id"])


# --- probe boards -------------------------------------------------------------------------------


def may_see_board(conn: sqlite3.Connection, board: dict[str, Any], user: str | None) -> bool:
    return bool(board["shared"]) or board["owner"] == user or is_instructor_in(conn, user)
