"""`python -m engine search ...`: hyperparameter studies (engine/jobs/studies.py) whose trials
run as ordinary jobs through the queue.

    python -m engine search start --dataset digits --epochs 3 --trials 8 \\
        --param lr=1e-4:0.3:log --param momentum=0.5:0.99 --param batch_size=16,32,64
    python -m engine search list
    python -m engine search show STUDY      # trials, best trial, importances
    python -m engine search stop STUDY
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import CliError, user_errors
from engine.cli.train import add_train_options, config_from_args
from engine.hosting.ownership import acting_user
from engine.jobs import studies


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="hyperparameter search: Optuna TPE with pruning, trials "
                                      "as queued jobs")
    ssub = p.add_subparsers(dest="action", required=True)
    s = ssub.add_parser("start", help="start a study (the base config takes the train options)")
    add_train_options(s)
    s.add_argument("--param", action="append", default=[], metavar="SPEC",
                   help="name=low:high[:log] or name=a,b,c (repeat; searchable: "
                        + ", ".join(studies.searchable()) + ")")
    s.add_argument("--trials", type=int, default=8)
    s.add_argument("--parallel", type=int, default=2, help="trials queued at once")
    s.add_argument("--objective", choices=list(studies.OBJECTIVES), default="val_accuracy")
    s.add_argument("--pruner", choices=studies.PRUNERS, default="median")
    s.add_argument("--study-seed", type=int, default=0, help="the sampler's seed")
    s.add_argument("--owner")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_start)
    ls = ssub.add_parser("list", help="studies, newest first")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    for name, func, helptext in (("show", cmd_show, "a study's trials and best trial"),
                                 ("stop", cmd_stop, "stop a study and cancel its trials")):
        c = ssub.add_parser(name, help=helptext)
        c.add_argument("study")
        c.add_argument("--user")
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=func)


def cmd_start(a: argparse.Namespace) -> dict[str, Any]:
    if not a.param:
        raise CliError("give at least one --param to search, e.g. --param lr=1e-4:0.3:log")
    space = [studies.parse_param(p) for p in a.param]
    cfg = config_from_args(a)
    sid = studies.create_study(cfg, space, a.trials, objective=a.objective, pruner=a.pruner,
                               parallel=a.parallel, seed=a.study_seed,
                               owner=acting_user(a.owner), name=cfg.name)
    return {"study": sid, "trials": a.trials, "space": space}


def cmd_list(a: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"id": r["id"], "name": r["name"], "status": r["status"],
             "trials": f"{r['trials_done']}/{r['spec']['n_trials']}",
             "message": r["message"] or ""} for r in studies.list_studies()]


@user_errors
def cmd_show(a: argparse.Namespace) -> dict[str, Any]:
    rec = studies.get_study(a.study, viewer=acting_user(a.user))
    imp, why = studies.importances(rec["id"]) if rec["counts"]["complete"] >= 2 else ({}, "")
    best = rec["best"]
    return {"id": rec["id"], "status": rec["status"], "message": rec["message"],
            "objective": rec["spec"]["objective"], "counts": rec["counts"],
            "best": {"trial": best["number"], "value": best["value"], "job": best["job"],
                     "params": best["params"]} if best else None,
            "importances": imp or why,
            "trials": [{k: t[k] for k in ("number", "state", "value", "params", "job")}
                       for t in rec["trials"]]}


@user_errors
def cmd_stop(a: argparse.Namespace) -> dict[str, Any]:
    studies.stop_study(a.study, user=acting_user(a.user))
    return {"study": a.study, "status": "stopping"}
