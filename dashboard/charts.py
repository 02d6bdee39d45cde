"""Altair charts used across pages, and `draw`, which draws one from a cache of its spec."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from streamlit import dataframe_util

from dashboard import cache_keys

EPOCH_AXIS = alt.Axis(tickMinStep=1, format="d")  # whole epochs, not 1.1, 1.2...


@st.cache_resource(max_entries=1000, show_spinner=False)
def _spec(name: str, key: Any, _args: tuple, _build: Callable[..., alt.Chart]
          ) -> dict[str, Any]:
    """The chart's Vega-Lite spec, its inline datasets already as the Arrow bytes Streamlit
    sends (it skips converting bytes; rows as dicts it would turn into a DataFrame and then
    Arrow on every draw). A resource, not data: one spec shared by every rerun instead of an
    unpickled copy per draw (a third of a finished job's charts); Streamlit copies a spec
    before changing it (it only fills a null legend title in place, the same every time)."""
    spec = _build(*_args).to_dict()
    if spec.get("datasets"):
        spec["datasets"] = {ds: dataframe_util.convert_anything_to_arrow_bytes(rows)
                            for ds, rows in spec["datasets"].items()}
    return spec


def draw(where: Any, build: Callable[..., alt.Chart], *args: Any, **options: Any) -> Any:
    """Draw `build(*args)` with `where.vega_lite_chart(spec, **options)` (width "stretch" unless
    given). The spec is cached on the builder and its arguments (what the chart shows), so a
    rerun that draws the same chart again skips Altair's construction, validation and
    conversion: most of a finished job's page's server CPU (bench/server_cost.py)."""
    spec = _spec(*cache_keys.key(build, args), args, build)
    return where.vega_lite_chart(spec, **{"width": "stretch", **options})


def selected_point(event: Any, param: str) -> dict[str, Any] | None:
    """The first point of selection parameter `param` in a chart's on_select event (the
    fields the selection names, as drawn), or None when nothing is selected."""
    try:
        points = event.selection[param]
    except (AttributeError, KeyError, TypeError):
        return None
    if not points:
        return None
    point = points[0] if isinstance(points, list) else points
    return point if isinstance(point, dict) else None


def metric_curves(metrics: list[dict[str, Any]], fields: dict[str, str], title: str,
                  y_title: str, job_label: str | None = None) -> alt.Chart:
    """Lines of chosen per-epoch metrics (fields: metric key -> legend label)."""
    rows = [{"epoch": m["epoch"], "series": label, "value": m[key],
             "job": job_label or ""}
            for m in metrics for key, label in fields.items() if m.get(key) is not None]
    df = pd.DataFrame(rows, columns=["epoch", "series", "value", "job"])
    return (alt.Chart(df, title=title)
            .mark_line(point=True)
            .encode(x=alt.X("epoch:Q", title="epoch", axis=EPOCH_AXIS),
                    y=alt.Y("value:Q", title=y_title),
                    color=alt.Color("series:N", title=None),
                    tooltip=["series", "epoch", alt.Tooltip("value:Q", format=".4f")])
            .properties(height=260))


def loss_curves(metrics: list[dict[str, Any]], steps: list[list[float]]) -> alt.Chart:
    """Training loss every few steps (a thin line, from the first seconds of the first epoch)
    under the per-epoch train and validation losses (lines with points)."""
    rows = [{"epoch": float(x), "series": "train (every few steps)", "value": float(v)}
            for x, v in steps]
    rows += [{"epoch": float(m["epoch"]), "series": label, "value": m[key]}
             for m in metrics for key, label in (("train_loss", "train (epoch mean)"),
                                                 ("val_loss", "val"))
             if m.get(key) is not None]
    df = pd.DataFrame(rows, columns=["epoch", "series", "value"])
    base = alt.Chart(df, title="Loss").encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("value:Q", title="loss"),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["series", alt.Tooltip("epoch:Q", format=".2f"),
                 alt.Tooltip("value:Q", format=".4f")])
    fine = base.transform_filter(alt.datum.series == "train (every few steps)").mark_line(
        strokeWidth=1, opacity=0.7)
    coarse = base.transform_filter(alt.datum.series != "train (every few steps)").mark_line(
        point=True)
    return alt.layer(fine, coarse).properties(height=260)


def overlaid(jobs: dict[str, list[dict[str, Any]]], key: str, title: str) -> alt.Chart:
    """One metric, one line per job (the Compare page)."""
    rows = [{"job": label, "epoch": m["epoch"], key: m[key]}
            for label, metrics in jobs.items() for m in metrics if m.get(key) is not None]
    df = pd.DataFrame(rows, columns=["job", "epoch", key])
    return (alt.Chart(df, title=title).mark_line(point=True)
            .encode(x=alt.X("epoch:Q", axis=EPOCH_AXIS),
                    y=alt.Y(f"{key}:Q", title=key.replace("_", " ")),
                    color=alt.Color("job:N", legend=alt.Legend(orient="bottom", columns=1,
                                                               labelLimit=600)),
                    tooltip=["job", "epoch", alt.Tooltip(f"{key}:Q", format=".4f")])
            .properties(height=280))


def schedule(points: list[tuple[float, float]]) -> alt.Chart:
    df = pd.DataFrame(points, columns=["epoch", "learning rate"])
    return (alt.Chart(df, title="Learning-rate schedule").mark_line()
            .encode(x="epoch:Q", y=alt.Y("learning rate:Q"),
                    tooltip=["epoch", alt.Tooltip("learning rate:Q", format=".3g")])
            .properties(height=200))


def class_counts(counts: dict[str, dict[str, int]]) -> alt.Chart:
    rows = [{"split": split, "class": cls, "images": n}
            for split, per_class in counts.items() for cls, n in per_class.items()]
    df = pd.DataFrame(rows, columns=["split", "class", "images"])
    return (alt.Chart(df, title="Images per class and split").mark_bar()
            .encode(x=alt.X("class:N", sort=None), y="images:Q", color="split:N",
                    xOffset="split:N", tooltip=["split", "class", "images"])
            .properties(height=260))


def top_k(top: list[tuple[str, float]], title: str = "Top classes") -> alt.Chart:
    """Horizontal bars of class probabilities, most likely on top (the Classify page)."""
    df = pd.DataFrame([{"class": c, "probability": p, "rank": i} for i, (c, p) in
                       enumerate(top)], columns=["class", "probability", "rank"])
    return (alt.Chart(df, title=title).mark_bar()
            .encode(x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]),
                            axis=alt.Axis(format="%")),
                    y=alt.Y("class:N", sort=alt.SortField("rank"), title=None),
                    tooltip=["class", alt.Tooltip("probability:Q", format=".2%")])
            .properties(height=alt.Step(26)))  # one 26 px band per class


def per_class_accuracy(metrics: list[dict[str, Any]], classes: list[str],
                       key: str = "val_per_class_accuracy") -> alt.Chart:
    """One line per class of its validation accuracy over epochs (clicking the legend
    highlights a class)."""
    rows = [{"epoch": m["epoch"], "class": classes[i] if i < len(classes) else str(i),
             "accuracy": acc}
            for m in metrics for i, acc in enumerate(m.get(key) or [])]
    df = pd.DataFrame(rows, columns=["epoch", "class", "accuracy"])
    pick = alt.selection_point(fields=["class"], bind="legend")
    return (alt.Chart(df, title="Validation accuracy per class")
            .mark_line(point=True)
            .encode(x=alt.X("epoch:Q", title="epoch", axis=EPOCH_AXIS),
                    y=alt.Y("accuracy:Q", axis=alt.Axis(format="%")),
                    # Columns of 8 so every class fits beside the 300 px chart.
                    color=alt.Color("class:N", sort=classes or None,
                                    legend=alt.Legend(columns=max(1, -(-len(classes) // 8)))),
                    opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
                    tooltip=["class", "epoch", alt.Tooltip("accuracy:Q", format=".2%")])
            .add_params(pick)
            .properties(height=300))


def confusion_frame(confusion: list[list[int]], classes: list[str]) -> pd.DataFrame:
    """Long form of a confusion matrix (rows true): count and row-normalized share per cell."""
    rows = []
    for t, row in enumerate(confusion):
        total = sum(row)
        for p, n in enumerate(row):
            rows.append({"true": classes[t], "predicted": classes[p], "count": int(n),
                         "share": n / total if total else 0.0})
    return pd.DataFrame(rows, columns=["true", "predicted", "count", "share"])


def confusion_heatmap(confusion: list[list[int]], classes: list[str],
                      title: str = "Confusion matrix", selectable: bool = False) -> alt.Chart:
    """Heatmap of a confusion matrix: colour is the row-normalized share (so rare classes
    read as clearly as common ones), the text the count; with selectable, clicking a cell
    selects that (true, predicted) pair (selection parameter "cell")."""
    df = confusion_frame(confusion, classes)
    cell = 34 if len(classes) <= 20 else 18
    base = alt.Chart(df, title=title).encode(
        x=alt.X("predicted:N", sort=classes, title="predicted",
                axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("true:N", sort=classes, title="true"))
    tooltip = ["true", "predicted", "count", alt.Tooltip("share:Q", format=".1%",
                                                         title="share of true class")]
    rect = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                        legend=alt.Legend(format="%", title="row %")),
        tooltip=tooltip)
    if selectable:
        pick = alt.selection_point(name="cell", fields=["true", "predicted"], on="click")
        rect = rect.add_params(pick).encode(
            stroke=alt.condition(pick, alt.value("#e4572e"), alt.value(None), empty=False),
            strokeWidth=alt.condition(pick, alt.value(3), alt.value(0), empty=False))
    text = base.mark_text(fontSize=10 if cell < 30 else 12).encode(
        text=alt.Text("count:Q"),
        color=alt.condition(alt.datum.share > 0.5, alt.value("white"), alt.value("black")),
        tooltip=tooltip)
    return (rect + text).properties(width=alt.Step(cell), height=alt.Step(cell))


def bench_latency(rows: list[dict[str, Any]]) -> alt.Chart:
    """Median latency per backend and batch size, log scale (the Deploy page's benchmark)."""
    df = pd.DataFrame(rows, columns=["backend", "batch", "p50_ms", "p99_ms", "images_per_s"])
    return (alt.Chart(df, title="Latency p50 (ms, log scale)").mark_line(point=True)
            .encode(x=alt.X("batch:O", title="batch"),
                    y=alt.Y("p50_ms:Q", title="p50 ms", scale=alt.Scale(type="log")),
                    color=alt.Color("backend:N", title=None),
                    tooltip=["backend", "batch", alt.Tooltip("p50_ms:Q", format=".3f"),
                             alt.Tooltip("p99_ms:Q", format=".3f")])
            .properties(height=260))


def bench_throughput(rows: list[dict[str, Any]]) -> alt.Chart:
    """Images per second per backend, grouped by batch size."""
    df = pd.DataFrame(rows, columns=["backend", "batch", "images_per_s"])
    return (alt.Chart(df, title="Throughput (images/s)").mark_bar()
            .encode(x=alt.X("batch:O", title="batch"), y=alt.Y("images_per_s:Q", title="images/s"),
                    color=alt.Color("backend:N", title=None), xOffset="backend:N",
                    tooltip=["backend", "batch", alt.Tooltip("images_per_s:Q", format=",.0f")])
            .properties(height=260))


def lr_finder(lrs: list[float], losses: list[float], raw: list[float],
              marks: dict[str, float]) -> alt.Chart:
    """The range test's loss against the learning rate (log x axis), smoothed over raw, with
    a rule at each suggested rate (marks: label -> rate). The y axis stops at 1.5 x the first
    smoothed loss, so the diverged last steps do not flatten the part that matters."""
    rows = [{"lr": lr, "series": series, "loss": v}
            for series, values in (("smoothed", losses), ("raw", raw))
            for lr, v in zip(lrs, values, strict=True)]
    df = pd.DataFrame(rows, columns=["lr", "series", "loss"])
    top = 1.5 * max(losses[0], 1e-12) if losses else 1.0
    low = min(losses) if losses else 0.0
    y = alt.Y("loss:Q", title="loss",
              scale=alt.Scale(domain=[max(0.0, low - 0.1 * (top - low)), top], clamp=True))
    curve = (alt.Chart(df).mark_line()
             .encode(x=alt.X("lr:Q", title="learning rate (log scale)",
                             scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e")),
                     y=y, color=alt.Color("series:N", title=None,
                                          scale=alt.Scale(domain=["smoothed", "raw"],
                                                          range=["#1f77b4", "#b7c9d8"]),
                                          legend=alt.Legend(orient="bottom")),
                     tooltip=["series", alt.Tooltip("lr:Q", format=".3g"),
                              alt.Tooltip("loss:Q", format=".4f")]))
    rules = pd.DataFrame([{"mark": f"{label}: {rate:.3g}", "lr": rate}
                          for label, rate in marks.items()], columns=["mark", "lr"])
    rule = (alt.Chart(rules).mark_rule(strokeDash=[4, 3], strokeWidth=2)
            .encode(x="lr:Q", color=alt.Color("mark:N", title="suggested",
                                              scale=alt.Scale(scheme="set1")),
                    tooltip=["mark"]))
    return (alt.layer(curve, rule).resolve_scale(color="independent")
            .properties(title="Learning-rate range test", height=280))


def parallel_coordinates(rows: tuple[tuple[Any, ...], ...], objective: str) -> alt.Chart:
    """A study's trials as lines through an axis per parameter (positions 0..1 along each
    range, log ranges on a log scale) and the objective last, coloured by the objective, as
    Optuna's plot_parallel_coordinate draws them. rows: (trial, axis, order, position, label,
    value, state) from engine.jobs.studies.parallel_coordinates."""
    df = pd.DataFrame(list(rows), columns=["trial", "axis", "order", "position", "label",
                                           "value", "state"])
    return (alt.Chart(df, title="Parallel coordinates")
            .mark_line(point=True, opacity=0.8)
            .encode(x=alt.X("axis:N", title=None, sort=alt.SortField("order")),
                    y=alt.Y("position:Q", title=None, axis=None),
                    color=alt.Color("value:Q", title=objective,
                                    scale=alt.Scale(scheme="viridis")),
                    strokeDash=alt.StrokeDash("state:N", title="trial"),
                    detail="trial:N",
                    tooltip=["trial:N", "axis:N", "label:N", "state:N"])
            .properties(height=300))


def importances(items: tuple[tuple[str, float], ...]) -> alt.Chart:
    """Hyperparameter importances (fANOVA, summing to 1) as horizontal bars, largest first."""
    df = pd.DataFrame(list(items), columns=["parameter", "importance"])
    return (alt.Chart(df, title="Hyperparameter importance")
            .mark_bar()
            .encode(x=alt.X("importance:Q", title="importance", scale=alt.Scale(domain=[0, 1])),
                    y=alt.Y("parameter:N", title=None, sort="-x"),
                    tooltip=["parameter", alt.Tooltip("importance:Q", format=".3f")])
            .properties(height=max(80, 40 * len(df))))
