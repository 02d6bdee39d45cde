"""Compare jobs: overlaid validation curves, their settings with differences highlighted, and
final metrics side by side."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts
from engine import jobs

HIGHLIGHT = "background-color: #fff3b0; font-weight: 600"


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"augment": {"invert": 0.5}} -> {"augment.invert": 0.5}; specs shown as compact JSON."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if key == "network" and isinstance(value, dict):
            out[name] = "custom: " + json.dumps(value.get("layers", value), separators=(",", ":"))
        elif isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = ",".join(map(str, value))
        else:
            out[name] = value
    return out


def settings_table(selected: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per setting, one column per job."""
    columns = {_label(j): flatten(j["config"]) for j in selected}
    return pd.DataFrame(columns).astype(str)


def differing_rows(table: pd.DataFrame) -> list[str]:
    return [idx for idx, row in table.iterrows() if row.nunique() > 1]


def final_metrics(selected: list[dict[str, Any]]) -> pd.DataFrame:
    rows = {}
    for j in selected:
        metrics = j.get("metrics") or []
        last = metrics[-1] if metrics else {}
        vals = [m["val_accuracy"] for m in metrics if m.get("val_accuracy") is not None]
        held = (j.get("result") or {}).get("held_out") or {}
        rows[_label(j)] = {"status": j["status"], "epochs": len(metrics),
                           "last val accuracy": last.get("val_accuracy"),
                           "best val accuracy": max(vals) if vals else None,
                           "last val loss": last.get("val_loss"),
                           "last train loss": last.get("train_loss"),
                           "held-out accuracy": held.get("accuracy"),
                           "images/s": last.get("images_per_s")}
    return pd.DataFrame.from_dict(rows, orient="index")  # one row per job: typed columns


def _label(job: dict[str, Any]) -> str:
    return f"{job['name'] or 'job'} [{job['id']}]"


def _lineages(selected: list[dict[str, Any]]) -> None:
    """One line per job that started from earlier weights (issue 17)."""
    from engine.jobs.lineage import lineage_line

    for job in selected:
        if job["config"].get("init_from"):
            st.caption(f"{_label(job)} started from: {lineage_line(job['id'])}")


def render() -> None:
    st.title("Compare experiments")
    all_jobs = jobs.list_jobs()
    if not all_jobs:
        st.info("No jobs to compare yet.")
        return
    labels = {j["id"]: _label(j) for j in all_jobs}
    wanted = st.query_params.get_all("ids") or st.session_state.get("compare_ids") or []
    default = [i for i in wanted if i in labels] or list(labels)[:2]
    chosen = st.multiselect("Jobs", list(labels), default=default, format_func=labels.get,
                            key="cmp_jobs")
    if not chosen:
        st.caption("Pick two or more jobs.")
        return
    selected = [jobs.get_job(i, events=False) for i in chosen]
    curves = {_label(j): j["metrics"] for j in selected}
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.overlaid(curves, "val_accuracy", "Validation accuracy"),
                    width="stretch")
    c2.altair_chart(charts.overlaid(curves, "val_loss", "Validation loss"), width="stretch")

    st.subheader("Final metrics")
    st.dataframe(final_metrics(selected), width="stretch")
    _lineages(selected)

    st.subheader("Settings")
    table = settings_table(selected)
    diff = differing_rows(table)
    only_diff = st.toggle("Only the settings that differ", value=False, key="cmp_only_diff")
    shown = table.loc[diff] if only_diff else table
    st.caption(f"{len(diff)} setting(s) differ (highlighted).")
    st.dataframe(shown.style.apply(
        lambda row: [HIGHLIGHT if row.name in diff else ""] * len(row), axis=1),
        width="stretch")
