"""Hyperparameter studies: the search space, the store's record and an 8-trial Optuna study
(TPE, median pruning) run through a real scheduler and real training workers on digits."""

from __future__ import annotations

import pytest

from engine.jobs import studies
from engine.jobs.studies import StudyError
from engine.state import store
from testkit import waiting

BASE = {"dataset": "digits", "network": "lenet", "device": "cpu", "epochs": 3,
        "batch_size": 8, "seed": 0}  # small batches: epochs long enough to be pruned mid-run


def test_parse_param_reads_ranges_and_choices():
    assert studies.parse_param("lr=1e-4:0.3:log") == {
        "name": "lr", "type": "float", "low": 1e-4, "high": 0.3, "log": True}
    assert studies.parse_param("batch_size=16,32") == {
        "name": "batch_size", "type": "categorical", "choices": [16, 32]}
    assert studies.parse_param("augment.hflip=true,false")["choices"] == [True, False]
    with pytest.raises(StudyError, match="cannot be searched"):
        studies.parse_param("dataset=a,b")
    with pytest.raises(StudyError, match="low:high"):
        studies.parse_param("lr=0.1:0.2:lin")
    with pytest.raises(StudyError, match="name=low:high"):
        studies.parse_param("lr")


def test_validate_space_refuses_bad_bounds_and_values():
    ok = studies.validate_space([studies.parse_param("momentum=0.5:0.9")], BASE)
    assert ok[0]["low"] == 0.5 and not ok[0]["log"]
    with pytest.raises(StudyError, match="below high"):
        studies.validate_space([{"name": "lr", "type": "float", "low": 0.3, "high": 0.1}], BASE)
    with pytest.raises(StudyError, match="low > 0"):
        studies.validate_space([studies.parse_param("lr=0:0.1:log")], BASE)
    with pytest.raises(StudyError, match="not a valid setting"):
        studies.validate_space([studies.parse_param("momentum=0.5:1.5")], BASE)
    with pytest.raises(StudyError, match="twice"):
        studies.validate_space([studies.parse_param("lr=0.1:0.2")] * 2, BASE)
    with pytest.raises(StudyError, match="at least one"):
        studies.validate_space([], BASE)


def test_parallel_coordinates_places_log_ranges_and_objective():
    study = {"spec": {"objective": "val_accuracy", "direction": "maximize", "space": [
        {"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        {"name": "batch_size", "type": "categorical", "choices": [16, 32, 64]}]},
        "trials": [{"number": 0, "state": "complete", "value": 0.9,
                    "params": {"lr": 1e-2, "batch_size": 64}},
                   {"number": 1, "state": "pruned", "value": 0.5,
                    "params": {"lr": 1e-3, "batch_size": 16}},
                   {"number": 2, "state": "running", "value": None, "params": {"lr": 0.1}}]}
    rows = {(r["trial"], r["axis"]): r["position"] for r in studies.parallel_coordinates(study)}
    assert rows[(0, "lr")] == pytest.approx(0.5)  # the middle of 1e-3..1e-1 on a log axis
    assert rows[(0, "batch_size")] == 1.0 and rows[(1, "batch_size")] == 0.0
    assert rows[(0, "val_accuracy")] == 1.0 and rows[(1, "val_accuracy")] == 0.0
    assert not any(t == 2 for t, _ in rows)  # a running trial has no line yet
    assert studies.best_trial(study)["number"] == 0


def test_study_of_eight_trials_prunes_through_the_scheduler(jobs_home):
    space = [studies.parse_param("lr=1e-4:0.1:log"), studies.parse_param("momentum=0.0:0.95")]
    sid = studies.create_study(BASE, space, n_trials=8, parallel=1, seed=0, name="lenet lr",
                               poll_s=0.1)
    with pytest.raises(StudyError, match="stop it first"):
        studies.delete_study(sid)
    waiting.wait_until(lambda: studies.get_study(sid)["status"] != "running", 600,
                       "the study to finish")
    rec = studies.get_study(sid)
    assert rec["status"] == "done", rec["message"]
    trials = rec["trials"]
    assert len(trials) == 8 and {t["number"] for t in trials} == set(range(8))
    assert rec["counts"]["pruned"] >= 1, [(t["state"], t["params"], t["message"]) for t in trials]
    assert rec["counts"]["complete"] >= 2, trials
    # A trial whose job fails (a diverging lr) is told to Optuna as failed, with the job's why.
    assert all(t["message"].startswith("job failed") for t in trials if t["state"] == "failed")
    print([(t["state"], t["params"], t["message"]) for t in trials])
    for t in trials:
        assert 1e-4 <= t["params"]["lr"] <= 0.5 and 0 <= t["params"]["momentum"] <= 0.95
        job = store.get_job(store.connect(jobs_home), t["job"])
        assert job.config["lr"] == t["params"]["lr"]  # the trial's job ran its sample
        if t["state"] == "pruned":  # cancelled at once; or it ended before the cancel landed
            assert job.status in ("cancelled", "done") and 1 <= t["steps"] <= 3
            assert any(e["kind"] == "pruned" for e in store.get_events(
                store.connect(jobs_home), job.id)), t
        if t["state"] == "complete":
            assert job.status == "done" and t["steps"] == 3
    best = rec["best"]
    assert best["value"] == max(t["value"] for t in trials if t["state"] == "complete")
    assert rec["message"].startswith(f"best: trial {best['number']}")
    # The Optuna study agrees with the store, and importances are computed from it.
    optuna_study = studies.load_optuna(sid, rec["spec"], jobs_home)
    assert optuna_study.best_trial.number == best["number"]
    assert sum(t.state.name == "PRUNED" for t in optuna_study.trials) == rec["counts"]["pruned"]
    imp, why = studies.importances(sid)
    assert set(imp) == {"lr", "momentum"} and sum(imp.values()) == pytest.approx(1.0), why
    assert [s["id"] for s in studies.list_studies()] == [sid]
    studies.delete_study(sid)
    with pytest.raises(StudyError, match="no study"):
        studies.get_study(sid)
