"""`python -m engine class ...`: the instructor's view of a hosted class
(engine/hosting/classroom.py) and a student's leaderboard entry.

    python -m engine class usage --user teacher          # every user's jobs and usage
    python -m engine class jobs --user teacher           # running and queued, in order
    python -m engine class lab --user teacher            # progress through the lab's steps
    python -m engine class leaderboard --user teacher --csv grades.csv
    python -m engine class enter JOB --user alice         # a student's entry
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.cli.common import user_errors
from engine.hosting import classroom
from engine.hosting.ownership import acting_user

_USER_HELP = "who asks (default: $STUDIO_USER; must be an instructor)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("class", help="a hosted class: usage, lab progress, leaderboard "
                                     "(instructors), a student's leaderboard entry")
    csub = p.add_subparsers(dest="action", required=True)
    for name, helptext, func in [
            ("usage", "every user's jobs, GPU/CPU minutes, disk and lab steps", cmd_usage),
            ("jobs", "every running and queued job, in the order they start", cmd_jobs),
            ("lab", "each user's progress through the lab's four steps", cmd_lab)]:
        c = csub.add_parser(name, help=helptext)
        c.add_argument("--user", help=_USER_HELP)
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=func)
    lb = csub.add_parser("leaderboard", help="students ranked by their entry's score on the "
                                             "hidden board, ties by held-out accuracy")
    lb.add_argument("--user", help=_USER_HELP)
    lb.add_argument("--checkpoint", default="best", choices=("best", "last"))
    lb.add_argument("--csv", metavar="FILE", help="also write it as CSV for grading")
    lb.add_argument("--json", action="store_true")
    lb.set_defaults(func=cmd_leaderboard)
    en = csub.add_parser("enter", help="make one of your finished jobs your leaderboard entry")
    en.add_argument("job")
    en.add_argument("--user", help="who you are (default: $STUDIO_USER)")
    en.add_argument("--json", action="store_true")
    en.set_defaults(func=cmd_enter)


@user_errors
def cmd_usage(a: argparse.Namespace) -> Any:
    return classroom.usage_table(acting_user(a.user))


@user_errors
def cmd_jobs(a: argparse.Namespace) -> Any:
    return classroom.active_jobs(acting_user(a.user))


@user_errors
def cmd_lab(a: argparse.Namespace) -> Any:
    return classroom.lab_progress(acting_user(a.user))


@user_errors
def cmd_leaderboard(a: argparse.Namespace) -> Any:
    rows = classroom.leaderboard(acting_user(a.user), checkpoint=a.checkpoint)
    if a.csv:
        Path(a.csv).write_text(classroom.leaderboard_csv(rows))
    return [asdict(r) for r in rows]


@user_errors
def cmd_enter(a: argparse.Namespace) -> Any:
    user = acting_user(a.user)
    classroom.choose_entry(user, a.job)
    return {"user": user, "entry": a.job}
