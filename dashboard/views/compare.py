"""Compare jobs: overlaid validation curves, final metrics side by side, how their networks
differ layer by layer, and their settings with differences highlighted. Jobs, datasets and
networks appear by name."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, cpu_budget, session, tables, widgets
from engine import jobs
from engine.datasets import DatasetError, open_dataset
from engine.networks import SpecError
from engine.networks.diff import network_diff

HIGHLIGHT = "background-color: #fff3b0; font-weight: 600"
LIVE_POLL_S = 2.0  # how often the curves of running jobs are re-read
# A diff validates both networks layer by layer: once per pair of specs, not every view.
_network_diff = st.cache_data(network_diff, max_entries=256, show_spinner=False)


def flatten(config: dict[str, Any], prefix: str = "",
            dataset_names: dict[str, str] | None = None) -> dict[str, Any]:
    """{"augment": {"invert": 0.5}} -> {"augment.invert": 0.5}; a spec by its name and a
    fingerprint of its layers (the layer-by-layer difference is shown above the table), a
    dataset by its name."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if key == "network" and isinstance(value, dict):
            layers = json.dumps(value.get("layers", value), separators=(",", ":"))
            out[name] = f"{widgets.network_label(value)}, {len(value.get('layers', []))} " \
                        f"layers #{hashlib.sha1(layers.encode()).hexdigest()[:6]}"
        elif key == "dataset" and not prefix and dataset_names is not None:
            out[name] = widgets.dataset_label(str(value), dataset_names)
        elif isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = ",".join(map(str, value))
        else:
            out[name] = value
    return out


def settings_columns(selected: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each job's settings, flattened, by the job's label."""
    names = widgets.dataset_names()
    return {_label(j, selected): flatten(j.config, dataset_names=names) for j in selected}


@st.cache_data(max_entries=256, show_spinner=False)
def settings_table(columns: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per setting, one column per job (cached: building it was a sixth of the page)."""
    # Plain Python strings (object columns): pandas' Arrow-backed str dtype made each per-cell
    # step below several times slower, for a table of a few dozen cells.
    return pd.DataFrame(columns).map(str).astype(object)


def differing_rows(table: pd.DataFrame) -> list[str]:
    """The settings whose value is not the same for every job."""
    values = table.to_numpy()
    if not values.size:
        return []
    return list(table.index[(values != values[:, :1]).any(axis=1)])


def highlighted(table: pd.DataFrame, rows: list[str]) -> pd.io.formats.style.Styler:
    """The table with `rows` highlighted, styled in one call (a per-row function cost the
    page a third of its server CPU)."""
    marked = table.index.isin(rows)
    css = pd.DataFrame("", index=table.index, columns=table.columns, dtype=object)
    css.loc[marked, :] = HIGHLIGHT
    return table.style.apply(lambda _: css, axis=None)


def metric_rows(selected: list[dict[str, Any]],
                metrics: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each job's final metrics (metrics: job id -> its per-epoch rows), by the job's label."""
    rows = {}
    for j in selected:
        per_epoch = metrics.get(j.id) or []
        last = per_epoch[-1] if per_epoch else {}
        vals = [m["val_accuracy"] for m in per_epoch if m.get("val_accuracy") is not None]
        held = (j.result or {}).get("held_out") or {}
        rows[_label(j, selected)] = {"status": j.status, "epochs": len(per_epoch),
                                     "last val accuracy": last.get("val_accuracy"),
                                     "best val accuracy": max(vals) if vals else None,
                                     "last val loss": last.get("val_loss"),
                                     "last train loss": last.get("train_loss"),
                                     "held-out accuracy": held.get("accuracy"),
                                     "images/s": last.get("images_per_s")}
    return rows


def final_metrics(rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index")  # one row per job: typed columns


def differing_settings(columns: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The settings table's rows that differ."""
    table = settings_table(columns)
    return table.loc[differing_rows(table)]


METRIC_COLUMNS = {
    "status": st.column_config.TextColumn("status", width="small"),
    "epochs": st.column_config.NumberColumn("epochs", width="small"),
    "last val accuracy": st.column_config.NumberColumn("last val acc", format="percent",
                                                       width="small"),
    "best val accuracy": st.column_config.NumberColumn("best val acc", format="percent",
                                                       width="small"),
    "last val loss": st.column_config.NumberColumn("val loss", format="%.4f", width="small"),
    "last train loss": st.column_config.NumberColumn("train loss", format="%.4f",
                                                     width="small"),
    "held-out accuracy": st.column_config.NumberColumn("held-out acc", format="percent",
                                                       width="small"),
    "images/s": st.column_config.NumberColumn("images/s", format="%.0f", width="small"),
}


def _label(job: jobs.LiveJob, among: list[dict[str, Any]] | None = None) -> str:
    """A job's name; with the id's tail only where two compared jobs share a name."""
    name = job.name or job.id
    if among and sum((j.name or j.id) == name for j in among) > 1:
        return f"{name} ·{job.id[-6:]}"
    return name


def _md(line: str) -> str:
    """A diff line as list-item text: a leading + or - is the change, not a nested list."""
    return "\\" + line if line[:2] in ("+ ", "- ") else line


def network_changes(selected: list[dict[str, Any]]) -> dict[str, list[str]]:
    """For each job after the first: how its network differs from the first job's."""
    first = selected[0]
    try:
        ds = open_dataset(first.config["dataset"])
        shape, classes = tuple(ds.shape), ds.num_classes
    except DatasetError:
        return {}
    out = {}
    for j in selected[1:]:
        try:
            out[_label(j, selected)] = _network_diff(first.config["network"],
                                                     j.config["network"], shape, classes)
        except (SpecError, ValueError, KeyError) as e:
            out[_label(j, selected)] = [f"(cannot compare: {e})"]
    return out


def _lineages(selected: list[dict[str, Any]]) -> None:
    """One line per job that started from earlier weights (issue 17)."""
    from engine.jobs.lineage import lineage_line

    for job in selected:
        if job.config.get("init_from"):
            st.caption(f"{_label(job)} started from: {lineage_line(job.id)}")


def _any_active(selected: list[jobs.LiveJob]) -> bool:
    return any(j.status in jobs.ACTIVE for j in selected)


def _progress(selected: list[jobs.LiveJob], metrics: dict[str, list[dict[str, Any]]]) -> None:
    """The validation curves, one line per job, and the final metrics side by side."""
    curves = {_label(j, selected): metrics.get(j.id) or [] for j in selected}
    waiting = [label for label, rows in curves.items()
               if not any(m.get("val_accuracy") is not None for m in rows)]
    if len(waiting) == len(curves):  # empty axes would read as accuracy 0
        st.info("No validation point yet: each job's curve starts when it finishes its "
                "first epoch" + (" (this page follows them)." if _any_active(selected) else "."))
    else:
        c1, c2 = st.columns(2)
        charts.draw(c1, charts.overlaid, curves, "val_accuracy", "Validation accuracy")
        charts.draw(c2, charts.overlaid, curves, "val_loss", "Validation loss")
        if waiting:
            st.caption(f"No validation point yet for {', '.join(waiting)}: a job's line starts "
                       "when it finishes its first epoch.")
    st.subheader("Final metrics")
    tables.draw(st, final_metrics, metric_rows(selected, metrics), width="stretch",
                column_config=METRIC_COLUMNS)


def _live(ids: list[str]) -> None:
    """_progress re-read every LIVE_POLL_S while a compared job is queued or running (a sweep
    lands here as soon as it is submitted); once none is, the whole page is drawn again, at
    rest."""
    by_id = {j.id: j for j in jobs.list_jobs(viewer=session.current_user())}
    selected = [by_id[i] for i in ids if i in by_id]
    if not _any_active(selected):
        st.rerun()
    _progress(selected, jobs.metrics_of([j.id for j in selected]))


def render() -> None:
    st.title("Compare experiments")
    all_jobs = jobs.list_jobs(viewer=session.current_user())
    if not all_jobs:
        st.info("No jobs to compare yet.")
        return
    labels = {j.id: _label(j, all_jobs) for j in all_jobs}
    wanted = st.query_params.get_all("ids") or st.session_state.get("compare_ids") or []
    default = [i for i in wanted if i in labels] or list(labels)[:2]
    chosen = st.multiselect("Jobs", list(labels), default=default, format_func=labels.get,
                            key="cmp_jobs")
    if not chosen:
        st.caption("Pick two or more jobs.")
        return
    by_id = {j.id: j for j in all_jobs}
    selected = [by_id[i] for i in chosen]
    if _any_active(selected):  # follow them until the last one ends
        cpu_budget.fragment(_live, run_every=LIVE_POLL_S)(chosen)
    else:
        _progress(selected, jobs.metrics_of(chosen))
    _lineages(selected)

    changes = network_changes(selected)
    if len(selected) > 1 and changes:
        st.subheader("Network")
        base = _label(selected[0], selected)
        for label, lines in changes.items():
            if not lines:
                st.markdown(f"**{label}**: the same network as {base}.")
            else:
                st.markdown(f"**{label}** against **{base}**:\n"
                            + "\n".join(f"- {_md(line)}" for line in lines))

    st.subheader("Settings")
    columns = settings_columns(selected)
    table = settings_table(columns)
    diff = differing_rows(table)
    st.caption(f"{len(diff)} setting(s) differ" + (":" if diff else "."))
    if diff:
        tables.draw(st, differing_settings, columns, width="stretch")
    # Lazy: styling the whole table was half of the page's server CPU (bench/server_cost.py).
    everything = st.expander(f"All {len(table)} settings (the differing ones highlighted)",
                             key="cmp_all_settings", on_change="rerun")
    if everything.open:
        everything.dataframe(highlighted(table, diff), width="stretch")
