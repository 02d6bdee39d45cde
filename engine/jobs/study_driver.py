"""The driver of a hyperparameter study: the `engine.study` task job (on the "host" device, so
it takes no training slot) that asks Optuna for trials, submits each as an ordinary training
job, reports each running trial's per-epoch validation metric (trial.report) and cancels the
jobs the pruner stops (trial.should_prune). Its state lives in the store and the Optuna
database, so a driver started again (after a restart) carries on where the last one was."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine.hosting import quotas
from engine.jobs import api
from engine.jobs.settings import load_settings
from engine.jobs.status import ENDED
from engine.jobs.studies import distributions, load_optuna, with_params
from engine.state import store

Progress = Callable[[float, str], None]


def _values(metrics: list[dict[str, Any]], metric: str) -> list[tuple[int, float]]:
    return [(int(m["epoch"]), float(m[metric])) for m in metrics if m.get(metric) is not None]


class Driver:
    """One study's driver; `advance()` is one pass, `run()` loops until the study ends."""

    def __init__(self, study_id: str, home: Any = None, poll_s: float = 0.5) -> None:
        self.id = study_id
        self.home = home
        self.poll_s = poll_s
        with store.opened(home) as conn:
            rec = store.get_study(conn, study_id)
        if rec is None:
            raise ValueError(f"no study {study_id!r}")
        self.owner, self.name, self.spec = rec["owner"], rec["name"], rec["spec"]
        self.metric = self.spec["objective"]
        self.maximize = self.spec["direction"] == "maximize"
        self.dists = distributions(self.spec["space"])
        with store.opened(home) as conn:
            seen = len(store.study_trials(conn, study_id))
        self.study = load_optuna(study_id, self.spec, home, seen)

    # -- one pass ---------------------------------------------------------------------------

    def advance(self) -> str:
        """Follow the running trials, start new ones; returns the study's status."""
        import optuna

        by_number = {t.number: t for t in self.study.get_trials(deepcopy=False)}
        with store.opened(self.home) as conn:
            rec = store.get_study(conn, self.id)
            rows = store.study_trials(conn, self.id)
            for row in rows:
                if row["state"] == "running":
                    self._follow(conn, row, by_number[row["number"]], optuna)
            rows = store.study_trials(conn, self.id)
            if rec["status"] != "running":
                return rec["status"]
            active = sum(r["state"] == "running" for r in rows)
            total = len(rows)
            while active < self.spec["parallel"] and total < self.spec["n_trials"]:
                if not self._start(conn, optuna):
                    break
                active += 1
                total += 1
            if active == 0 and total >= self.spec["n_trials"]:
                best = self._best(store.study_trials(conn, self.id))
                store.set_study_status(conn, self.id, "done", best, only_if_status="running")
                return "done"
        return "running"

    def _best(self, rows: list[dict[str, Any]]) -> str:
        done = [r for r in rows if r["state"] == "complete" and r["value"] is not None]
        if not done:
            return "no trial completed"
        best = (max if self.maximize else min)(done, key=lambda r: r["value"])
        return f"best: trial {best['number']} ({self.metric} {best['value']:.4f})"

    def _follow(self, conn, row: dict[str, Any], frozen, optuna) -> None:
        """Report a trial's new epochs; complete, fail or prune it."""
        job = store.get_job(conn, row["job"]) if row["job"] else None
        trial = optuna.trial.Trial(self.study, frozen._trial_id)
        if job is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            store.update_trial(conn, self.id, row["number"], state="failed",
                               message="its job was deleted")
            return
        values = _values(store.get_metrics(conn, job.id), self.metric)
        new = [(e, v) for e, v in values if e not in frozen.intermediate_values]
        for epoch, value in new:
            trial.report(value, epoch)
        best = (max if self.maximize else min)(v for _, v in values) if values else None
        if job.status == "done":
            if best is None:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                store.update_trial(conn, self.id, row["number"], state="failed",
                                   message=f"the job recorded no {self.metric}")
            else:
                self.study.tell(trial, best)
                store.update_trial(conn, self.id, row["number"], state="complete", value=best,
                                   steps=len(values))
        elif job.status in ENDED and job.status != "interrupted":
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            store.update_trial(conn, self.id, row["number"], state="failed", value=best,
                               steps=len(values), message=f"job {job.status}: {job.message}")
        elif new and job.status == "running" and trial.should_prune():
            epoch, value = new[-1]
            try:
                api.cancel(job.id, home=self.home)
            except api.JobError:
                pass  # it ended meanwhile: pruned all the same
            store.add_event(conn, job.id, "pruned",
                            f"study {self.id}: {self.metric} {value:.4f} at epoch {epoch} is "
                            "below what earlier trials had there")
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            store.update_trial(conn, self.id, row["number"], state="pruned", value=best,
                               steps=len(values), message=f"pruned at epoch {epoch}")
        elif new:
            store.update_trial(conn, self.id, row["number"], steps=len(values), value=best)

    def _start(self, conn, optuna) -> bool:
        """Ask for a trial and queue its job; False (nothing asked) while a quota holds it."""
        why = quotas.refusal(conn, self.owner, self.spec["config"], store.home_of(conn),
                             gpus=load_settings(self.home).gpus)
        if why:
            store.set_study_message(conn, self.id, f"waiting: {why}")
            return False
        trial = self.study.ask(self.dists)
        params = dict(trial.params)
        shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in params.items())
        try:
            job_id = api.submit(with_params(self.spec["config"], params), owner=self.owner,
                                name=f"{self.name} #{trial.number} {shown}", home=self.home,
                                start_scheduler=False)
        except ValueError as e:  # ConfigError, QuotaExceeded, JobError
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            store.put_trial(conn, self.id, trial.number, state="failed", params=params,
                            message=str(e))
            return True
        trial.set_user_attr("job", job_id)
        store.put_trial(conn, self.id, trial.number, state="running", params=params, job=job_id)
        store.set_study_message(conn, self.id, None)
        return True

    # -- the loop ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Cancel the running trials' jobs and end the study as stopped."""
        import optuna

        by_number = {t.number: t for t in self.study.get_trials(deepcopy=False)}
        with store.opened(self.home) as conn:
            for row in store.study_trials(conn, self.id):
                if row["state"] != "running":
                    continue
                try:
                    api.cancel(row["job"], home=self.home)
                except (api.JobError, PermissionError):
                    pass
                trial = optuna.trial.Trial(self.study, by_number[row["number"]]._trial_id)
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                store.update_trial(conn, self.id, row["number"], state="stopped",
                                   message="the study was stopped")
            store.set_study_status(conn, self.id, "stopped", "stopped by request")

    def run(self, progress: Progress) -> dict[str, Any]:
        """Advance until the study ends; a cancel of this task job (progress raises) stops
        the study and its running trials."""
        try:
            while True:
                status = self.advance()
                with store.opened(self.home) as conn:
                    rows = store.study_trials(conn, self.id)
                finished = sum(r["state"] != "running" for r in rows)
                if status != "running":
                    break
                progress(finished / self.spec["n_trials"],
                         f"{finished} of {self.spec['n_trials']} trials finished")
                time.sleep(self.poll_s)
        except BaseException:
            self.stop()
            raise
        if status == "stopping":
            self.stop()
            status = "stopped"
        counts = {s: sum(r["state"] == s for r in rows)
                  for s in ("complete", "pruned", "failed", "stopped")}
        best = self._best(rows)
        return {"study": self.id, "status": status, **counts, "best": best}


def drive(params: dict[str, Any], progress: Progress, home: Any = None) -> dict[str, Any]:
    """The `engine.study` task: run the study `params["study"]` to its end."""
    return Driver(params["study"], home, float(params.get("poll_s", 0.5))).run(progress)
