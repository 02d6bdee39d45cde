"""Hyperparameter studies: Optuna (TPE sampling, median or successive-halving pruning) over
training jobs that run through the ordinary queue, so fair share, quotas, devices and the Ray
backend apply to every trial as to any job.

A study is a row in the store (its spec: base config, search space, objective, budget) plus an
Optuna study in `<home>/studies/<id>/optuna.db` (RDB storage, so `optuna-dashboard
sqlite:///...` can open it too). The scheduler advances running studies at its tick
(engine/jobs/study_driver.py): it asks the sampler for trials, submits each as a training job,
reports each trial's per-epoch validation metric and cancels the jobs the pruner stops.

The search space is a list of parameters over TrainConfig fields (and `augment.*`):
{"name": "lr", "type": "float", "low": 1e-4, "high": 0.3, "log": true},
{"name": "batch_size", "type": "categorical", "choices": [16, 32, 64]}; on the command line
`lr=1e-4:0.3:log`, `momentum=0.5:0.99`, `batch_size=16,32,64`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.hosting import access
from engine.jobs import api
from engine.state import store
from engine.state.workspace import studio_home
from engine.training.config import AugmentConfig, ConfigError, TrainConfig

if TYPE_CHECKING:
    import optuna

Home = str | os.PathLike | None

OBJECTIVES = {"val_accuracy": "maximize", "val_loss": "minimize"}
PRUNERS = ("median", "halving", "none")
STATUSES = ("running", "stopping", "done", "stopped", "failed")
ACTIVE = ("running", "stopping")
TRIAL_STATES = ("running", "complete", "pruned", "failed", "stopped")
# Options a study may not vary: what the job runs on, what it is called, where it starts,
# and the epochs, which are the steps the pruner compares trials at.
NOT_SEARCHABLE = {"dataset", "device", "devices", "name", "init_from", "freeze", "epochs",
                  "precision", "compile", "val_interval", "checkpoint_interval",
                  "early_stopping", "milestones", "seed", "augment"}
MAX_TRIALS = 1000
MAX_PARALLEL = 64


class StudyError(ValueError):
    """A study request that cannot be done (bad space, unknown study, wrong state)."""


# --- the search space -----------------------------------------------------------------------


def _fields() -> dict[str, dataclasses.Field]:
    out = {f.name: f for f in dataclasses.fields(TrainConfig) if f.name not in NOT_SEARCHABLE}
    out.update({f"augment.{f.name}": f for f in dataclasses.fields(AugmentConfig)})
    return out


def searchable() -> list[str]:
    """The TrainConfig options a study may vary (what the form and `--param` offer)."""
    return sorted(_fields())


def _kind_of(name: str) -> type:
    f = _fields()[name]
    default = f.default if f.default is not dataclasses.MISSING else None
    if f.name == "network":
        return str
    return type(default) if default is not None else float


def parse_param(text: str) -> dict[str, Any]:
    """One parameter from `name=low:high[:log]` (a range) or `name=a,b,c` (choices)."""
    name, sep, rest = text.partition("=")
    name, rest = name.strip(), rest.strip()
    if not sep or not name or not rest:
        raise StudyError(f"parameter {text!r}: write name=low:high[:log] or name=a,b,c")
    if name not in _fields():
        raise StudyError(f"{name!r} cannot be searched; choose from {', '.join(searchable())}")
    kind = _kind_of(name)
    if ":" in rest:
        parts = rest.split(":")
        log = len(parts) == 3 and parts[2].strip().lower() == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
            raise StudyError(f"parameter {text!r}: a range is low:high or low:high:log")
        try:
            low, high = (kind(p) if kind is int else float(p) for p in parts[:2])
        except ValueError:
            raise StudyError(f"parameter {text!r}: {parts[0]!r}..{parts[1]!r} are not "
                             "numbers") from None
        return {"name": name, "type": "int" if kind is int else "float", "low": low,
                "high": high, "log": log}
    choices = [c.strip() for c in rest.split(",") if c.strip()]
    return {"name": name, "type": "categorical", "choices": [_coerce(name, c) for c in choices]}


def _coerce(name: str, value: Any) -> Any:
    kind = _kind_of(name)
    try:
        if kind is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return kind(value)
    except (TypeError, ValueError):
        raise StudyError(f"{name}: {value!r} is not a {kind.__name__}") from None


def with_params(config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The config with a trial's parameters set (`augment.x` into the augment section)."""
    out = {**config, "augment": dict(config.get("augment") or {})}
    for key, value in params.items():
        if key.startswith("augment."):
            out["augment"][key.split(".", 1)[1]] = value
        else:
            out[key] = value
    return out


def validate_space(space: Sequence[dict[str, Any]], base: dict[str, Any]) -> list[dict[str, Any]]:
    """A checked copy of the space: known options, sane bounds, and every end of every range
    (each choice) a valid config, so no trial fails on a value the user could not have run."""
    if not space:
        raise StudyError("a study needs at least one parameter to search")
    out, seen = [], set()
    for raw in space:
        p = dict(raw)
        name = p.get("name")
        if name not in _fields():
            raise StudyError(f"{name!r} cannot be searched; choose from {', '.join(searchable())}")
        if name in seen:
            raise StudyError(f"{name} appears twice in the search space")
        seen.add(name)
        if p.get("type") == "categorical":
            choices = [_coerce(name, c) for c in p.get("choices") or []]
            if len(choices) < 2 or len(set(map(repr, choices))) != len(choices):
                raise StudyError(f"{name}: give two or more different choices")
            p = {"name": name, "type": "categorical", "choices": choices}
            ends = choices
        elif p.get("type") in ("float", "int"):
            cast = int if p["type"] == "int" else float
            try:
                low, high = cast(p["low"]), cast(p["high"])
            except (KeyError, TypeError, ValueError):
                raise StudyError(f"{name}: a range needs numeric low and high") from None
            if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
                raise StudyError(f"{name}: low ({low:g}) must be below high ({high:g})")
            log = bool(p.get("log"))
            if log and low <= 0:
                raise StudyError(f"{name}: a log range needs low > 0 (got {low:g})")
            if _kind_of(name) is int and p["type"] == "float":
                p["type"], cast = "int", int
                low, high = int(low), int(high)
            p = {"name": name, "type": p["type"], "low": low, "high": high, "log": log}
            ends = [low, high]
        else:
            raise StudyError(f"{name}: type must be float, int or categorical")
        for value in ends:
            try:
                TrainConfig.from_dict(with_params(base, {name: value})).validate()
            except ConfigError as e:
                raise StudyError(f"{name}={value!r} is not a valid setting: {e}") from None
        out.append(p)
    return out


def distributions(space: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Optuna distributions of a validated space."""
    import optuna

    d = optuna.distributions
    out = {}
    for p in space:
        if p["type"] == "categorical":
            out[p["name"]] = d.CategoricalDistribution(p["choices"])
        elif p["type"] == "int":
            out[p["name"]] = d.IntDistribution(p["low"], p["high"], log=p["log"])
        else:
            out[p["name"]] = d.FloatDistribution(p["low"], p["high"], log=p["log"])
    return out


# --- the Optuna side ------------------------------------------------------------------------


def study_dir(study_id: str, home: Home = None) -> Path:
    return studio_home(home) / "studies" / study_id


def storage_url(study_id: str, home: Home = None) -> str:
    return f"sqlite:///{study_dir(study_id, home).resolve() / 'optuna.db'}"


def _quiet() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def sampler_for(spec: dict[str, Any], seen: int = 0) -> optuna.samplers.BaseSampler:
    """TPE, its random start a quarter of the budget (2 to 10 trials): Optuna's default of 10
    would leave a small study random throughout. constant_liar keeps parallel trials apart.
    `seen` shifts the seed so a restarted scheduler does not repeat the trials it has run."""
    import optuna

    startup = max(2, min(10, spec["n_trials"] // 4))
    return optuna.samplers.TPESampler(n_startup_trials=startup, seed=spec["seed"] + seen,
                                      constant_liar=True)


def pruner_for(spec: dict[str, Any]) -> optuna.pruners.BasePruner:
    """Median (stop a trial whose best so far is below the median of earlier trials at the
    same epoch) or successive halving (ASHA); both after `startup` trials have finished."""
    import optuna

    if spec["pruner"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.get("startup_trials", 2),
                                           n_warmup_steps=spec.get("warmup_epochs", 0))
    if spec["pruner"] == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    return optuna.pruners.NopPruner()


def load_optuna(study_id: str, spec: dict[str, Any], home: Home = None, seen: int = 0
                ) -> optuna.Study:
    import optuna

    _quiet()
    return optuna.load_study(study_name=study_id, storage=storage_url(study_id, home),
                             sampler=sampler_for(spec, seen), pruner=pruner_for(spec))


# --- operations -----------------------------------------------------------------------------


def create_study(base_config: TrainConfig | dict[str, Any], space: Sequence[dict[str, Any]],
                 n_trials: int = 8, *, objective: str = "val_accuracy", pruner: str = "median",
                 parallel: int = 2, seed: int = 0, owner: str | None = None, name: str = "",
                 poll_s: float = 0.5, home: Home = None, start_scheduler: bool = True) -> str:
    """Record a study and its Optuna storage; the scheduler then runs its trials. Returns the
    study id. Errors (bad space, objective, budget, config) are StudyError/ConfigError, raised
    before anything is written. poll_s: how often the driver reads the trials' metrics (an
    epoch shorter than that is seen only with the next one)."""
    import optuna

    if objective not in OBJECTIVES:
        raise StudyError(f"objective must be one of {', '.join(OBJECTIVES)}")
    if pruner not in PRUNERS:
        raise StudyError(f"pruner must be one of {', '.join(PRUNERS)}")
    if not 1 <= int(n_trials) <= MAX_TRIALS:
        raise StudyError(f"trials must be 1 to {MAX_TRIALS}")
    if not 1 <= int(parallel) <= MAX_PARALLEL:
        raise StudyError(f"parallel trials must be 1 to {MAX_PARALLEL}")
    base = api.validate_config(base_config, home).to_dict()
    checked = validate_space(space, base)
    study_id = "study-" + secrets.token_hex(4)
    name = name or f"search {', '.join(p['name'] for p in checked)}"
    spec = {"config": base, "space": checked, "n_trials": int(n_trials),
            "objective": objective, "direction": OBJECTIVES[objective], "pruner": pruner,
            "parallel": int(parallel), "seed": int(seed)}
    folder = study_dir(study_id, home)
    folder.mkdir(parents=True)
    _quiet()
    try:
        optuna.create_study(study_name=study_id, storage=storage_url(study_id, home),
                            direction=spec["direction"])
        with store.opened(home) as conn, store.transaction(conn):
            if owner:
                store.ensure_user(conn, owner)
            store.add_study(conn, study_id, name, owner, spec)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    driver = api.submit_task("engine.study", {"study": study_id, "poll_s": float(poll_s)},
                             owner=owner,
                             name=f"study {study_id}: {name}", device="host", home=home,
                             start_scheduler=start_scheduler)
    with store.opened(home) as conn:
        store.set_study_driver(conn, study_id, driver)
    return study_id


def _find(conn: Any, study_id: str, viewer: str | None) -> dict[str, Any]:
    rec = store.get_study(conn, study_id)
    if rec is None:
        ids = store.study_ids_starting(conn, study_id)
        if len(ids) != 1:
            raise StudyError(f"no study {study_id!r}" if not ids
                             else f"{study_id!r} matches several studies")
        rec = store.get_study(conn, ids[0])
    if access.restricted(conn, viewer) and rec["owner"] not in (None, viewer):
        raise PermissionError(f"study {rec['id']} belongs to another user")
    return rec


def get_study(study_id: str, home: Home = None, viewer: str | None = None) -> dict[str, Any]:
    """A study's record with its trials, each with its job's status, the best trial (or None)
    and counts by trial state."""
    with store.opened(home) as conn:
        rec = _find(conn, study_id, viewer)
        trials = store.study_trials(conn, rec["id"])
        for t in trials:
            job = store.get_job(conn, t["job"]) if t["job"] else None
            t["job_status"] = job.status if job is not None else None
    rec["trials"] = trials
    rec["best"] = best_trial(rec)
    rec["counts"] = {s: sum(t["state"] == s for t in trials) for s in TRIAL_STATES}
    return rec


def best_trial(study: dict[str, Any]) -> dict[str, Any] | None:
    """The complete trial with the best value (ties: the earliest)."""
    done = [t for t in study["trials"] if t["state"] == "complete" and t["value"] is not None]
    if not done:
        return None
    sign = -1 if study["spec"]["direction"] == "maximize" else 1
    return min(done, key=lambda t: (sign * t["value"], t["number"]))


def list_studies(owner: str | None = None, home: Home = None, viewer: str | None = None
                 ) -> list[dict[str, Any]]:
    """Studies, newest first (a student in accounts mode sees only their own)."""
    with store.opened(home) as conn:
        rows = store.list_studies(conn, owner=owner)
        if access.restricted(conn, viewer):
            rows = [r for r in rows if r["owner"] in (None, viewer)]
        for r in rows:
            trials = store.study_trials(conn, r["id"])
            r["trials_total"] = len(trials)
            r["trials_done"] = sum(t["state"] in ("complete", "pruned") for t in trials)
    return rows


def stop_study(study_id: str, user: str | None = None, home: Home = None) -> None:
    """Ask the driver to stop: it cancels the running trials' jobs and asks for no more."""
    with store.opened(home) as conn, store.transaction(conn):
        rec = _find(conn, study_id, user)
        if user is not None and rec["owner"] not in (None, user) \
                and not access.is_instructor_in(conn, user):
            raise PermissionError(f"study {rec['id']} belongs to another user")
        if not store.set_study_status(conn, rec["id"], "stopping", "stop requested",
                                      only_if_status="running"):
            raise StudyError(f"study {rec['id']} is {rec['status']}; only a running study "
                             "can be stopped")
        driver = store.get_job(conn, rec["driver"]) if rec["driver"] else None
    if driver is None or driver.status != "running":
        # Nobody drives it (not started yet, or its driver ended): end it here.
        if driver is not None and driver.status == "queued":
            api.cancel(driver.id, home=home)
        with store.opened(home) as conn:
            store.set_study_status(conn, rec["id"], "stopped", "stopped by request")


def delete_study(study_id: str, user: str | None = None, home: Home = None) -> None:
    """Delete an ended study's record and Optuna storage (its trial jobs stay)."""
    with store.opened(home) as conn, store.transaction(conn):
        rec = _find(conn, study_id, user)
        if user is not None and rec["owner"] not in (None, user) \
                and not access.is_instructor_in(conn, user):
            raise PermissionError(f"study {rec['id']} belongs to another user")
        if rec["status"] in ACTIVE:
            raise StudyError(f"study {rec['id']} is {rec['status']}; stop it first")
        store.delete_study(conn, rec["id"])
    shutil.rmtree(study_dir(rec["id"], home), ignore_errors=True)


# --- analysis for the study page ------------------------------------------------------------


def _position(p: dict[str, Any], value: Any) -> float:
    """Where a value sits on its axis, 0..1 (log ranges on a log scale, choices evenly)."""
    if p["type"] == "categorical":
        n = len(p["choices"])
        i = next((k for k, c in enumerate(p["choices"]) if c == value), 0)
        return i / (n - 1) if n > 1 else 0.5
    low, high, v = float(p["low"]), float(p["high"]), float(value)
    if p["log"]:
        low, high, v = math.log(low), math.log(high), math.log(max(v, p["low"]))
    return min(1.0, max(0.0, (v - low) / (high - low)))


def parallel_coordinates(study: dict[str, Any]) -> list[dict[str, Any]]:
    """Long-form rows for a parallel-coordinates chart, as Optuna draws it: one line per
    finished trial through an axis per parameter and the objective last, coloured by value."""
    trials = [t for t in study["trials"] if t["value"] is not None
              and t["state"] in ("complete", "pruned")]
    if not trials:
        return []
    values = [t["value"] for t in trials]
    lo, hi = min(values), max(values)
    objective = study["spec"]["objective"]
    rows = []
    for t in trials:
        for order, p in enumerate(study["spec"]["space"]):
            if p["name"] not in t["params"]:
                continue
            v = t["params"][p["name"]]
            rows.append({"trial": t["number"], "axis": p["name"], "order": order,
                         "position": _position(p, v), "label": f"{v:.4g}"
                         if isinstance(v, float) else str(v), "value": t["value"],
                         "state": t["state"]})
        rows.append({"trial": t["number"], "axis": objective,
                     "order": len(study["spec"]["space"]),
                     "position": (t["value"] - lo) / (hi - lo) if hi > lo else 0.5,
                     "label": f"{t['value']:.4g}", "value": t["value"], "state": t["state"]})
    return rows


def importances(study_id: str, home: Home = None, viewer: str | None = None
                ) -> tuple[dict[str, float], str]:
    """Optuna's fANOVA hyperparameter importances (normalized, summing to 1) over the complete
    trials, and "" — or {} and why they cannot be computed yet."""
    import optuna

    rec = get_study(study_id, home, viewer)
    done = [t for t in rec["trials"] if t["state"] == "complete"]
    if len(done) < 2:
        return {}, f"importances need 2 complete trials; this study has {len(done)}"
    study = load_optuna(rec["id"], rec["spec"], home)
    try:
        imp = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError) as e:
        return {}, f"importances unavailable: {e}"
    return {k: float(v) for k, v in imp.items()}, ""
