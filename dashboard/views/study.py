"""Hyperparameter studies (Optuna: TPE sampling, pruning on per-epoch validation): start one,
follow its trials (state, parameters, value), see its parallel coordinates and parameter
importances, and clone the best trial into New model with one click. `?id=STUDY` opens one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, cpu_budget, nav, session
from engine import jobs
from engine.datasets import list_datasets
from engine.jobs import studies
from engine.networks import zoo_names
from engine.training import ConfigError

STATE_ICONS = {"running": "⏳", "complete": "✅", "pruned": "✂️", "failed": "❌",
               "stopped": "⏹️"}


def render() -> None:
    st.title("Studies")
    user = session.current_user()
    study_id = st.query_params.get("id")
    if study_id:
        _study(study_id, user)
    else:
        _start_form(user)
        _list(user)


def _list(user: str | None) -> None:
    rows = studies.list_studies(viewer=user)
    st.subheader("All studies")
    if not rows:
        st.info("No studies yet: start one above.")
        return
    for r in rows:
        c1, c2 = st.columns([4, 1])
        c1.markdown(f"**{r['name']}** · `{r['id']}` · {r['status']} · "
                    f"{r['trials_done']} of {r['spec']['n_trials']} trials finished")
        if c2.button("Open", key=f"st_open_{r['id']}"):
            nav.go("study", id=r["id"])


def _start_form(user: str | None) -> None:
    """Base config (dataset, network, epochs) and the search space."""
    datasets = list_datasets(viewer=user) if _takes_viewer() else list_datasets()
    with st.expander("Start a study", expanded=not studies.list_studies(viewer=user)):
        if not datasets:
            st.info("Create a dataset first (Datasets page).")
            return
        with st.form("study_form"):
            names = [d["name"] for d in datasets]
            dataset = st.selectbox("Dataset", names, key="st_dataset")
            nets = zoo_names()
            network = st.selectbox("Network", nets, index=nets.index("lenet")
                                   if "lenet" in nets else 0, key="st_network")
            epochs = st.number_input("Epochs per trial", 1, 1000, 5, key="st_epochs")
            trials = st.number_input("Trials", 1, studies.MAX_TRIALS, 8, key="st_trials")
            parallel = st.number_input("Trials at once", 1, studies.MAX_PARALLEL, 2,
                                       key="st_parallel")
            objective = st.selectbox("Objective", list(studies.OBJECTIVES), key="st_objective")
            pruner = st.selectbox("Pruner", studies.PRUNERS, key="st_pruner",
                                  help="median: stop a trial below the median of earlier "
                                  "trials at the same epoch; halving: successive halving (ASHA)")
            space = st.text_area(
                "Search space (one per line: name=low:high[:log] or name=a,b,c)",
                "lr=0.0001:0.3:log\nmomentum=0.5:0.99\nbatch_size=16,32,64", key="st_space",
                help="Searchable: " + ", ".join(studies.searchable()))
            name = st.text_input("Name (optional)", key="st_name")
            go = st.form_submit_button("Start study", type="primary")
        if go:
            try:
                params = [studies.parse_param(line) for line in space.splitlines()
                          if line.strip()]
                sid = studies.create_study(
                    {"dataset": dataset, "network": network, "epochs": int(epochs)}, params,
                    int(trials), objective=objective, pruner=pruner, parallel=int(parallel),
                    owner=user, name=name)
            except (studies.StudyError, ConfigError, jobs.JobError) as e:
                st.error(str(e))
                return
            nav.go("study", id=sid)


def _takes_viewer() -> bool:
    import inspect

    return "viewer" in inspect.signature(list_datasets).parameters


def _study(study_id: str, user: str | None) -> None:
    try:
        rec = studies.get_study(study_id, viewer=user)
    except (studies.StudyError, PermissionError) as e:
        st.error(str(e))
        return
    if st.button("← All studies", key="st_back"):
        st.query_params.pop("id", None)
        nav.go("study")
    _live(rec["id"], user)


@cpu_budget.fragment(run_every=2.0)
def _live(study_id: str, user: str | None) -> None:
    rec = studies.get_study(study_id, viewer=user)
    spec = rec["spec"]
    st.header(rec["name"])
    c = rec["counts"]
    st.caption(f"`{rec['id']}` · {rec['status']} · objective {spec['objective']} "
               f"({spec['direction']}) · TPE sampler, {spec['pruner']} pruner · "
               f"{c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed, "
               f"{c['running']} running of {spec['n_trials']}"
               + (f" · {rec['message']}" if rec["message"] else ""))
    cols = st.columns(3)
    best = rec["best"]
    if best is not None:
        cols[0].metric(f"Best {spec['objective']}", f"{best['value']:.4f}",
                       help=f"trial {best['number']}")
        if cols[1].button("Clone best trial", key="st_clone", type="primary",
                          help="New model, pre-filled with the best trial's settings"):
            nav.go("new_model", clone=best["job"])
    if rec["status"] == "running" and cols[2].button("Stop study", key="st_stop"):
        try:
            studies.stop_study(rec["id"], user=user)
        except (studies.StudyError, PermissionError) as e:
            st.error(str(e))
        st.rerun()
    names = [p["name"] for p in spec["space"]]
    table = pd.DataFrame([{
        "trial": t["number"], "state": f"{STATE_ICONS.get(t['state'], '')} {t['state']}",
        **{n: t["params"].get(n) for n in names}, spec["objective"]: t["value"],
        "epochs": t["steps"], "job": t["job"], "job status": t["job_status"],
        "note": t["message"] or ""} for t in rec["trials"]])
    st.subheader("Trials")
    if table.empty:
        st.info("No trials yet: the first starts when the scheduler picks up the study.")
        return
    st.dataframe(table, hide_index=True, width="stretch")
    rows = studies.parallel_coordinates(rec)
    if rows:
        keys = ("trial", "axis", "order", "position", "label", "value", "state")
        charts.draw(st, charts.parallel_coordinates,
                    tuple(tuple(r[k] for k in keys) for r in rows), spec["objective"])
    imp, why = studies.importances(rec["id"], viewer=user)
    if imp:
        charts.draw(st, charts.importances, tuple(imp.items()))
    else:
        st.caption(why)
