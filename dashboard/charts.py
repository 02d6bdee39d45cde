"""Altair charts used across pages."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

EPOCH_AXIS = alt.Axis(tickMinStep=1, format="d")  # whole epochs, not 1.1, 1.2...


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


def overlaid(jobs: dict[str, list[dict[str, Any]]], key: str, title: str) -> alt.Chart:
    """One metric, one line per job (the Compare page)."""
    rows = [{"job": label, "epoch": m["epoch"], key: m[key]}
            for label, metrics in jobs.items() for m in metrics if m.get(key) is not None]
    df = pd.DataFrame(rows, columns=["job", "epoch", key])
    return (alt.Chart(df, title=title).mark_line(point=True)
            .encode(x=alt.X("epoch:Q", axis=EPOCH_AXIS),
                    y=alt.Y(f"{key}:Q", title=key.replace("_", " ")),
                    color="job:N", tooltip=["job", "epoch", alt.Tooltip(f"{key}:Q", format=".4f")])
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
