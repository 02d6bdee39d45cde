"""The Studies page: the start form refuses a bad search space in one line, and a study's
page shows its trials, parallel coordinates, importances and clones its best trial."""

from __future__ import annotations

import optuna

from engine import jobs
from engine.jobs import studies
from engine.state import store
from testkit.apptest import app, errors, open_page

BASE = {"dataset": "digits", "network": "lenet", "device": "cpu", "epochs": 2}


def finished_study(home) -> str:
    """A study whose 5 trials are told to its Optuna storage (values from a known function of
    lr, so lr matters most), each with a queued training job as its trial's job."""
    space = [studies.parse_param("lr=0.001:0.3:log"), studies.parse_param("momentum=0.5:0.9")]
    sid = studies.create_study(BASE, space, n_trials=5, owner="alice", name="lr search",
                               start_scheduler=False)
    rec = studies.get_study(sid)
    study = studies.load_optuna(sid, rec["spec"], home)
    dists = studies.distributions(rec["spec"]["space"])
    with store.opened(home) as conn:
        for n, (lr, m) in enumerate([(0.001, 0.5), (0.01, 0.9), (0.05, 0.7), (0.1, 0.6),
                                     (0.3, 0.8)]):
            trial = study.ask(dists)
            job = jobs.submit({**BASE, "lr": lr, "momentum": m}, owner="alice",
                              start_scheduler=False)
            value = 0.5 + 0.1 * n
            state = "pruned" if n == 0 else "complete"
            if n == 0:
                trial.report(value, 1)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, value)
            store.put_trial(conn, sid, trial.number, state=state, job=job, value=value,
                            params=dict(trial.params), steps=1 if n == 0 else 2)
        store.set_study_status(conn, sid, "done", "best: trial 4")
    return sid


def test_study_page_shows_trials_charts_and_clones_the_best(jobs_home):
    sid = finished_study(jobs_home)
    at = open_page(app(), "study", id=sid)
    assert not at.exception and not errors(at), errors(at)
    table = at.dataframe[0].value
    assert list(table["trial"]) == [0, 1, 2, 3, 4]
    assert table["state"].str.contains("pruned").sum() == 1
    assert {"lr", "momentum", "val_accuracy"} <= set(table.columns)
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any("Parallel coordinates" in s for s in specs)
    assert any("Hyperparameter importance" in s for s in specs)
    assert at.metric[0].value == "0.9000"
    at.button(key="st_clone").click().run()
    best = studies.get_study(sid)["best"]
    assert best["number"] == 4
    assert at.query_params.get("clone") in (best["job"], [best["job"]])


def test_study_form_refuses_a_bad_space_then_starts_a_study(jobs_home):
    at = open_page(app(), "study")
    assert not at.exception
    at.text_area(key="st_space").set_value("lr=0.5:0.1")
    next(b for b in at.get("button") if b.label == "Start study").click().run()
    assert any("below high" in e for e in errors(at)), errors(at)
    assert studies.list_studies() == []
    at.text_area(key="st_space").set_value("lr=0.001:0.1:log\nbatch_size=16,32")
    next(b for b in at.get("button") if b.label == "Start study").click().run()
    (rec,) = studies.list_studies()
    assert [p["name"] for p in rec["spec"]["space"]] == ["lr", "batch_size"]
    assert rec["owner"] == "alice"
