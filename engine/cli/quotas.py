"""`python -m engine quotas ...`: per-user limits for a hosted class (engine/hosting/quotas.py).

    python -m engine quotas set alice running_jobs 2 --user teacher
    python -m engine quotas set '*' queued_jobs 3          # the class default
    python -m engine quotas set alice running_jobs unlimited
    python -m engine quotas show alice                     # limits and usage
    python -m engine quotas list
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import user_errors
from engine.hosting import quotas
from engine.hosting.ownership import acting_user
from engine.state import store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quotas", help="per-user limits: queued and running jobs, GPU/CPU "
                                      "time per day, epochs per job, workspace disk")
    qsub = p.add_subparsers(dest="action", required=True)

    s = qsub.add_parser("set", help="set a user's limit (an instructor, or the local user)")
    s.add_argument("target", metavar="USER", help="a username, or * for the class default")
    s.add_argument("name", choices=list(quotas.LIMITS))
    s.add_argument("value", help="a number, or 'unlimited' to remove the limit")
    s.add_argument("--user", help="who sets it (default: $STUDIO_USER; must be an instructor)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_set)

    sh = qsub.add_parser("show", help="a user's limits and what they use now")
    sh.add_argument("target", metavar="USER")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_show)

    ls = qsub.add_parser("list", help="every limit set, per user (* = the class default)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)


@user_errors
def cmd_set(a: argparse.Namespace) -> dict[str, Any]:
    quotas.set_limit(a.target, a.name, a.value, by=acting_user(a.user))
    with store.opened() as conn:
        return {"user": a.target, a.name: quotas.limits_of(conn, a.target)[a.name]}


def cmd_show(a: argparse.Namespace) -> dict[str, Any]:
    with store.opened() as conn:
        limits = quotas.limits_of(conn, a.target)
        usage = quotas.usage_of(conn, a.target)
    return {name: {"limit": limits[name], "used": usage.value(name),
                   "unit": quotas.LIMITS[name].unit} for name in quotas.LIMITS}


def cmd_list(a: argparse.Namespace) -> Any:
    return quotas.all_limits()
