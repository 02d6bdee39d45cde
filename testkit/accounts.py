"""Helpers for the accounts tests: a class (instructor and students), jobs as rows."""

from __future__ import annotations

import time

from engine.hosting import accounts
from engine.state import store
from engine.state.runs import new_job_id

PASSWORDS = {"teacher": "Teach-Secret-4711", "alice": "Alice-Secret-0815",
             "bob": "Bob-Secret-31337"}


def make_class(home, names=("alice", "bob")) -> dict[str, str]:
    """An instructor `teacher` and students, each with the password in PASSWORDS."""
    accounts.create_account("teacher", "instructor", PASSWORDS["teacher"], home=home)
    for name in names:
        accounts.create_account(name, "student", PASSWORDS[name], by="teacher", home=home)
    return {n: PASSWORDS[n] for n in ("teacher", *names)}


def _config() -> dict:
    from engine.training.config import TrainConfig

    return TrainConfig(dataset="x", epochs=1).to_dict()


def job_row(home, owner: str | None, name: str = "", status: str = "queued") -> str:
    """A queued training job as a row only (no worker, no scheduler): enough for the rules."""
    job_id = new_job_id()
    now = time.time()
    with store.opened(home) as conn:
        store.insert_job(conn, {"id": job_id, "name": name or f"{owner}'s job", "owner": owner,
                                "status": status, "config": _config(),
                                "created": now, "queued": now})
    time.sleep(0.002)  # ids of the same second stay distinct by their random part anyway
    return job_id
