"""The instructor's view of a hosted class: every user's jobs and usage, the class's progress
through the lab's four steps, the hidden probe board and the leaderboard.

The hidden board is a probe board (engine/evaluation/probes.py) owned by an instructor and
marked hidden: it is never listed, viewed or scored for anyone else, and cannot be shared, so
its images never reach a student's page. Each student's entry is the finished job they chose
(`choose_entry`, from their Job page or `python -m engine class enter JOB`); without a choice,
their finished jobs compete and the best board score counts. The leaderboard ranks students by
that board score, ties broken by held-out accuracy, and exports as CSV for grading.

Everything here but `choose_entry`, `entry_of` and `hidden_board_exists` is for instructors
alone (PermissionError otherwise). The dashboard's Instructor page only draws what this module
returns; the CLI prints it.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.evaluation import probes
from engine.hosting import access, quotas, roles
from engine.jobs.fair_share import queue_now
from engine.jobs.settings import load_settings
from engine.lab import guide as lab
from engine.state import store
from engine.state.limits import MiB

Home = str | os.PathLike | None
HIDDEN_BOARD_NAME = "Class board (hidden)"
SEE_CLASS = "only the class's instructors see this"
MAX_JOBS_SCORED = 10  # per student without a chosen entry: their newest finished jobs
_SCORES: dict[tuple, tuple[int, int]] = {}  # (board, probes, job, checkpoint file) -> score


def class_users(home: Home = None) -> list[str]:
    """Everyone known to the workspace: users and job owners, by name."""
    with store.opened(home) as conn:
        names = set(store.list_users(conn))
        names |= store.job_owners(conn)
    return sorted(names)


def usage_table(by: str | None, home: Home = None) -> list[dict[str, Any]]:
    """One row per user: role, training jobs by status, GPU and CPU minutes in the last 24
    hours, workspace disk (MiB), lab steps done and their leaderboard entry."""
    access.require_instructor(by, SEE_CLASS, home)
    rows = []
    users = class_users(home)
    with store.opened(home) as conn:
        for user in users:
            counts = store.training_status_counts(conn, user)
            gpu_s, cpu_s = quotas.device_time(conn, user)
            disk = quotas.disk_bytes(conn, user, home)
            entry = store.entry_job(conn, user)
            rows.append({"user": user, "role": roles.role_of(user, home),
                         "running": counts["running"], "queued": counts["queued"],
                         "done": counts["done"],
                         "failed or stopped": counts["failed"] + counts["cancelled"]
                         + counts["interrupted"],
                         "GPU min (24 h)": round(gpu_s / 60, 1),
                         "CPU min (24 h)": round(cpu_s / 60, 1),
                         "disk MiB": round(disk / MiB, 1),
                         "entry": entry})
    progress = {p["user"]: p["steps done"] for p in lab_progress(by, home)}
    for row in rows:
        row["lab steps done"] = progress.get(row["user"], 0)
    return rows


def active_jobs(by: str | None, home: Home = None) -> list[dict[str, Any]]:
    """Every running and queued job of every user (tasks too), running first, then queued in
    the order they would start, with why a held one waits."""

    access.require_instructor(by, SEE_CLASS, home)
    with store.opened(home) as conn:
        running = store.list_jobs(conn, statuses=("running",), order="queue")
        queue = queue_now(conn, load_settings(home).queue_order)
    now = time.time()
    rows = [{"owner": j.owner, "job": j.name or j.id, "id": j.id,
             "kind": j.kind, "status": "running", "device": j.assigned_device,
             "minutes": round((now - (j.started or now)) / 60, 1), "waits": ""}
            for j in running]
    rows += [{"owner": p.job.owner, "job": p.job.name or p.job.id, "id": p.job.id,
              "kind": p.job.kind, "status": f"queued #{n}", "device": p.job.device,
              "minutes": round((now - p.job.queued) / 60, 1), "waits": p.waits or ""}
             for n, p in enumerate(queue, 1)]
    return rows


def lab_progress(by: str | None, home: Home = None) -> list[dict[str, Any]]:
    """One row per user who has started the lab: each step's status ("to do", or its job's
    status) and how many steps are done."""
    access.require_instructor(by, SEE_CLASS, home)
    with store.opened(home) as conn:
        users = store.lab_users(conn)
    rows = []
    for user in users:
        states = lab.lab_state(user, home)
        row: dict[str, Any] = {"user": user}
        row.update({lab.step_column(s.step): s.status for s in states})
        row["steps done"] = sum(s.done for s in states)
        rows.append(row)
    return rows


def lab_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per step: how many users have it done, running or queued, or not yet."""
    out = []
    for step in lab.STEPS:
        column = lab.step_column(step)
        statuses = Counter(r.get(column, "to do") for r in rows)
        out.append({"step": column, "done": statuses["done"],
                    "running or queued": statuses["running"] + statuses["queued"],
                    "other": sum(statuses.values()) - statuses["done"] - statuses["running"]
                    - statuses["queued"]})
    return out


# --- the hidden board -----------------------------------------------------------------------


def hidden_board_id(home: Home = None) -> str | None:
    with store.opened(home) as conn:
        return store.hidden_board_id(conn)


def hidden_board_exists(home: Home = None) -> bool:
    """Whether the class has a hidden board (students then choose their entry)."""
    return hidden_board_id(home) is not None


def hidden_board(by: str | None, home: Home = None, create: bool = True) -> dict[str, Any] | None:
    """The class's hidden board (made by this instructor when there is none and `create`),
    with its owner and image count."""
    access.require_instructor(by, SEE_CLASS, home)
    board_id = hidden_board_id(home)
    if board_id is None:
        if not create:
            return None
        board_id = probes.create_board(HIDDEN_BOARD_NAME, by, shared=False, home=home)
        with store.opened(home) as conn:
            store.hide_board(conn, board_id)
    with store.opened(home) as conn:
        row = store.board_with_count(conn, board_id)
    return {**row, "shared": False, "hidden": True}


# --- entries --------------------------------------------------------------------------------


def _finished_training(conn, job_id: str) -> dict[str, Any] | None:
    job = store.get_job(conn, job_id)
    return job if job and job.kind == "train" and job.status == "done" else None


def choose_entry(user: str | None, job_id: str, home: Home = None) -> None:
    """Make one of `user`'s own finished training jobs their leaderboard entry."""
    if not user:
        raise PermissionError("sign in to choose your leaderboard entry")
    with store.opened(home) as conn, store.transaction(conn):
        job = store.get_job(conn, job_id)
        if job is None:
            raise ValueError(f"no job {job_id!r}")
        if job.owner != user:
            raise PermissionError(f"job {job_id} belongs to {job.owner or 'nobody'}; only "
                                  "your own jobs can be your entry")
        if _finished_training(conn, job_id) is None:
            raise ValueError(f"job {job_id} is a {job.kind} job that is {job.status}; "
                             "only a finished training job can be your entry")
        store.set_entry(conn, user, job_id)


def entry_of(user: str, home: Home = None) -> str | None:
    """The job `user` chose as their entry, while it is still a finished job of theirs."""
    with store.opened(home) as conn:
        chosen = store.entry_job(conn, user)
        if chosen is None:
            return None
        job = _finished_training(conn, chosen)
    return chosen if job and job.owner == user else None


def held_out_accuracy(job: store.Job, conn=None) -> float | None:
    """The job's held-out accuracy: from training's own held-out pass, else its newest stored
    evaluation, else its best validation accuracy."""
    result = job.result or {}
    held = result.get("held_out") or {}
    if held.get("accuracy") is not None:
        return float(held["accuracy"])
    if conn is not None:
        evaluations = store.get_evaluations(conn, job.id)
        if evaluations and evaluations[0].get("accuracy") is not None:
            return float(evaluations[0]["accuracy"])
    best = result.get("best") or {}
    return float(best["val_accuracy"]) if best.get("val_accuracy") is not None else None


# --- the leaderboard ------------------------------------------------------------------------


@dataclass
class LeaderRow:
    rank: int
    student: str
    job: str
    job_name: str
    entry: str  # "chosen", or "best of N" finished jobs
    correct: int | None
    images: int
    board_score: float | None
    held_out_accuracy: float | None
    problem: str = ""  # why the entry could not be scored


def _score(board: dict[str, Any], job_id: str, checkpoint: str, home: Home
           ) -> tuple[int, int]:
    """(right, images) of one job on the board; cached per board content and checkpoint."""
    path = probes.job_checkpoint(job_id, checkpoint, home)
    with store.opened(home) as conn:
        last = store.board_version(conn, board["id"])
    key = (str(Path(path).resolve()), Path(path).stat().st_mtime_ns, board["id"], *last)
    if key not in _SCORES:
        score = probes.score_board(board["id"], [job_id], checkpoint, user=board["owner"],
                                   home=home)
        _SCORES[key] = score.score(0)
    return _SCORES[key]


def leaderboard(by: str | None, home: Home = None, checkpoint: str = "best"
                ) -> list[LeaderRow]:
    """Every student with a finished job, ranked by their entry's score on the hidden board
    (the best over their newest finished jobs when they chose none), ties by held-out
    accuracy; equal on both, equal rank. Instructors are not ranked."""
    access.require_instructor(by, SEE_CLASS, home)
    board = hidden_board(by, home, create=False)
    with store.opened(home) as conn:
        done = store.list_jobs(conn, statuses=("done",), kind="train")
        chosen = store.entries(conn)
        held = {j.id: held_out_accuracy(j, conn) for j in done}
    owners = {j.owner for j in done if j.owner}
    instructors = {u for u in owners if roles.is_instructor(u, home)}
    by_student: dict[str, list[dict[str, Any]]] = {}
    for job in done:  # newest first
        if job.owner in owners - instructors:
            by_student.setdefault(job.owner, []).append(job)
    rows = []
    for student, jobs in by_student.items():
        entry = next((j for j in jobs if j.id == chosen.get(student)), None)
        candidates = [entry] if entry else jobs[:MAX_JOBS_SCORED]
        scored = []
        for job in candidates:
            right, images, problem = None, board["probes"] if board else 0, ""
            if board and board["probes"]:
                try:
                    right, images = _score(board, job.id, checkpoint, home)
                except (FileNotFoundError, KeyError, ValueError, RuntimeError) as e:
                    problem = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            scored.append((job, right, images, problem))
        job, right, images, problem = max(scored, key=lambda s: (
            -1.0 if s[1] is None else s[1] / max(s[2], 1),
            -1.0 if held[s[0].id] is None else held[s[0].id]))
        rows.append(LeaderRow(0, student, job.id, job.name or job.id,
                              "chosen" if entry else f"best of {len(candidates)}", right, images,
                              None if right is None else right / max(images, 1),
                              held[job.id], problem))
    rows.sort(key=lambda r: (*_rank_key(r), r.student))
    for n, row in enumerate(rows):
        same = n and _rank_key(rows[n - 1]) == _rank_key(row)
        row.rank = rows[n - 1].rank if same else n + 1
    return rows


def _rank_key(row: LeaderRow) -> tuple[float, float]:
    """Higher board score first, then higher held-out accuracy; unscored last."""
    return (-(row.board_score if row.board_score is not None else -1.0),
            -(row.held_out_accuracy if row.held_out_accuracy is not None else -1.0))


CSV_COLUMNS = ("rank", "student", "board_correct", "board_images", "board_score",
               "held_out_accuracy", "job", "job_name", "entry", "problem")


def leaderboard_csv(rows: list[LeaderRow]) -> str:
    """The leaderboard for grading: one row per student, scores as fractions."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        d = asdict(row)
        writer.writerow({"rank": d["rank"], "student": d["student"],
                         "board_correct": "" if d["correct"] is None else d["correct"],
                         "board_images": d["images"],
                         "board_score": "" if d["board_score"] is None
                         else f"{d['board_score']:.4f}",
                         "held_out_accuracy": "" if d["held_out_accuracy"] is None
                         else f"{d['held_out_accuracy']:.4f}",
                         "job": d["job"], "job_name": d["job_name"], "entry": d["entry"],
                         "problem": d["problem"]})
    return out.getvalue()
