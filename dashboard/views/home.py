"""Home: the workspace at a glance, as DIGITS' home page was: jobs (with filters, a loss
sparkline each, and a way into each job) and datasets. An empty workspace says where to start."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import nav, session, tables, widgets
from dashboard.views import gpu_panel
from engine import jobs
from engine.datasets import list_datasets
from engine.jobs.progress import epoch_position

MAX_JOBS = 200  # enough for a glance, bounded for big workspaces
# What a user scans for comes first and fits a 1400-px window; the rest (scroll) after it.
JOB_COLUMNS = ["name", "status", "epochs", "progress", "train loss", "best val acc",
               "last val acc", "network", "dataset", "owner", "created"]  # id: on the job page


def jobs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


def readable(timestamp: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return time.strftime(fmt, time.localtime(timestamp)) if timestamp else "—"


def job_row(job: jobs.LiveJob, metrics: list[dict[str, Any]],
            dataset_names: dict[str, str] | None = None) -> dict[str, Any]:
    """One table row: what a user scans for (state, accuracy, how the loss went)."""
    accs = [m["val_accuracy"] for m in metrics if m.get("val_accuracy") is not None]
    config = job.config or {}
    return {
        "name": job.name or job.id,
        "status": job.status,
        "owner": job.owner or "—",
        "created": readable(job.created, "%d %b %H:%M"),
        "network": widgets.network_label(config.get("network")),
        "dataset": widgets.dataset_label(config.get("dataset", "—"), dataset_names or {}),
        "epochs": epoch_position(job, len(metrics)).short(),
        "progress": job.fraction or 0.0,
        "last val acc": accs[-1] if accs else None,
        "best val acc": max(accs) if accs else None,
        "train loss": [float(m["train_loss"]) for m in metrics
                       if m.get("train_loss") is not None],
        "id": job.id,
    }


def _load() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    try:
        viewer = session.current_user()
        return list_datasets(viewer=viewer), jobs.list_jobs(limit=MAX_JOBS, viewer=viewer)
    except Exception as e:  # noqa: BLE001 - a broken workspace must still show a page
        st.error(f"Could not read the workspace: {e}")
        return None


def start_here() -> None:
    st.info("**Start here: create a dataset.** The offline sample of handwritten digits takes "
            "one click; then train a model on it from New model.")
    if st.button("Create a dataset", type="primary", key="home_start"):
        nav.go("datasets")


def _filters(all_jobs: list[dict[str, Any]]) -> tuple[list[str], str | None]:
    c1, c2 = st.columns([2, 1])
    statuses = c1.multiselect("Status", jobs.STATUSES, key="home_status",
                              placeholder="All statuses")
    owners = sorted({j.owner for j in all_jobs if j.owner})
    owner = c2.selectbox("Owner", [None, *owners], key="home_owner",
                         format_func=lambda o: "Everyone" if o is None else o)
    return statuses, owner


def jobs_table(all_jobs: list[dict[str, Any]]) -> None:
    st.subheader("Jobs")
    if not all_jobs:
        st.info("No training jobs yet.")
        st.page_link(nav.page("new_model"), label="Train a new model", icon="🚀")
        return
    statuses, owner = _filters(all_jobs)
    shown = [j for j in all_jobs if (not statuses or j.status in statuses)
             and (owner is None or j.owner == owner)]
    if not shown:
        st.info("No jobs match these filters.")
        return
    try:
        metrics = jobs.metrics_of([j.id for j in shown])  # one query for all the rows
    except Exception as e:  # noqa: BLE001
        st.error(f"Could not read job metrics: {e}")
        return
    names = widgets.dataset_names()
    rows = [job_row(j, metrics[j.id], names) for j in shown]
    tables.draw(st, jobs_frame, rows, hide_index=True, key="home_jobs_table", column_config={
        "name": st.column_config.TextColumn("name", pinned=True, width=180),
        "status": st.column_config.TextColumn("status", width="small"),
        "epochs": st.column_config.TextColumn("epochs", width="small",
                                              help="Completed epochs of all"),
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                    format="percent", width="small"),
        "train loss": st.column_config.LineChartColumn("train loss", y_min=0.0,
                                                       width="small"),
        "last val acc": st.column_config.NumberColumn("last val", format="percent",
                                                     width="small"),
        "best val acc": st.column_config.NumberColumn("best val", format="percent",
                                                     width="small"),
        "network": st.column_config.TextColumn("network", width="small"),
        "dataset": st.column_config.TextColumn("dataset", width="small"),
        "owner": st.column_config.TextColumn("owner", width="small"),
        "created": st.column_config.TextColumn("created", width="small"),
    })
    labels = {j.id: widgets.job_label(j) for j in shown}
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    chosen = c1.selectbox("Job", list(labels), format_func=labels.get, key="home_job")
    if c2.button("Open job", key="home_open_job"):
        nav.go("job", id=chosen)


def datasets_table(datasets: list[dict[str, Any]]) -> None:
    st.subheader("Datasets")
    if not datasets:
        st.info("No datasets yet.")
        return
    rows = [{"name": d["name"], "owner": d["owner"] or "—", "source": d["source"],
             "classes": d["num_classes"], "images": d["total"],
             "train / val / test": f"{d['train']:,} / {d['val']:,} / {d['test']:,}",
             "image size": f"{d['width']}×{d['height']}×{d['channels']}",
             "on disk (MB)": round((d.get("size_bytes") or 0) / 1e6, 1),
             "created": readable(d["created"]), "id": d["id"]} for d in datasets]
    tables.draw(st, pd.DataFrame, rows, hide_index=True, key="home_datasets_table")
    labels = {d["id"]: d["name"] for d in datasets}
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    chosen = c1.selectbox("Dataset", list(labels), format_func=labels.get, key="home_dataset")
    if c2.button("Open dataset", key="home_open_dataset"):
        nav.go("datasets", id=chosen)


def render() -> None:
    st.title("DIGITS Studio")
    widgets.scheduler_banner()
    loaded = _load()
    if loaded is None:
        return
    datasets, all_jobs = loaded
    if not datasets and not all_jobs:
        start_here()
        return
    c = st.columns(4)
    c[0].metric("Datasets", len(datasets))
    c[1].metric("Jobs", len(all_jobs))
    c[2].metric("Running", sum(j.status == "running" for j in all_jobs))
    c[3].metric("Queued", sum(j.status == "queued" for j in all_jobs))
    st.subheader("GPUs")
    gpu_panel.render_live()
    jobs_table(all_jobs)
    datasets_table(datasets)
