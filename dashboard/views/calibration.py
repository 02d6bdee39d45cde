"""The Evaluation tab's calibration section: when does "99%" mean nothing?

Draws the stored reliability table of an evaluation (engine.evaluation.calibration: accuracy
per confidence bin against the diagonal of perfect calibration, with the count of each bin),
the ECE before and after temperature scaling, and a Calibrate button that fits the temperature
as a task job (engine.calibrate). Computation lives in the engine; this only draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts, task_progress

if TYPE_CHECKING:
    from engine.jobs import LiveJob

TASK = "engine.calibrate"


def reliability_frame(table: list[dict[str, Any]], model: str) -> pd.DataFrame:
    """The non-empty bins of a reliability table, one row each, for the chart."""
    rows = [{"model": model, "lower": r["lower"], "upper": r["upper"],
             "middle": (r["lower"] + r["upper"]) / 2, "confidence": r["confidence"],
             "accuracy": r["accuracy"], "gap": r["confidence"] - r["accuracy"],
             "count": r["count"]} for r in table if r["count"]]
    return pd.DataFrame(rows, columns=["model", "lower", "upper", "middle", "confidence",
                                       "accuracy", "gap", "count"])


def _panel(df: pd.DataFrame, title: str) -> alt.LayerChart:
    x = alt.X("lower:Q", title="confidence", scale=alt.Scale(domain=[0, 1]))
    y = alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1.08]))
    bars = alt.Chart(df).mark_bar(opacity=0.85, stroke="white").encode(
        x=x, x2="upper:Q", y=y, y2=alt.datum(0),  # a bar from 0 up to the bin's accuracy
        color=alt.Color("gap:Q", title="confidence − accuracy",
                        scale=alt.Scale(scheme="redblue", domainMid=0, reverse=True)),
        tooltip=[alt.Tooltip("lower:Q", format=".2f", title="from"),
                 alt.Tooltip("upper:Q", format=".2f", title="to"),
                 alt.Tooltip("confidence:Q", format=".3f", title="mean confidence"),
                 alt.Tooltip("accuracy:Q", format=".3f"), "count:Q"])
    counts = alt.Chart(df).mark_text(dy=-6, fontSize=10).encode(
        x="middle:Q", y="accuracy:Q", text="count:Q")
    diagonal = alt.Chart(pd.DataFrame({"lower": [0.0, 1.0], "accuracy": [0.0, 1.0]})
                         ).mark_line(strokeDash=[4, 4], color="gray").encode(x=x, y=y)
    return alt.layer(bars, counts, diagonal).properties(width=300, height=260, title=title)


def reliability_chart(tables: tuple[tuple[str, tuple], ...]) -> alt.HConcatChart:
    """Reliability diagram(s): a bar per confidence bin up to its accuracy, the diagonal a
    perfectly calibrated model would follow, and each bin's image count above its bar; one
    panel per model (raw, temperature-scaled), side by side."""
    panels = [_panel(reliability_frame([dict(r) for r in t], m), m) for m, t in tables]
    return alt.hconcat(*panels).resolve_scale(color="shared")


def _as_args(table: list[dict[str, Any]]) -> tuple:
    # charts.draw caches on its arguments: hashable, order-preserving tuples.
    return tuple(tuple(sorted(r.items())) for r in table)


def render(job: LiveJob, summary: dict[str, Any]) -> None:
    """The calibration of one stored evaluation, and the Calibrate action."""
    cal = summary.get("calibration")
    st.subheader("Calibration", help="A model is calibrated when, of the images it is 90% sure "
                 "about, 90% are right. The bars are the accuracy per confidence bin; the "
                 "dashed diagonal is perfect calibration; bars below it are over-confident.")
    latest = task_progress.show(job.id, TASK, "Calibration", key="cal_cancel")
    busy = latest is not None and latest.status in ("queued", "running")
    if cal is None:
        st.caption("This evaluation is older than calibration: evaluate again to see it.")
        return
    t = cal["temperature"]
    cols = st.columns(4)
    if t != 1.0:
        cols[0].metric("ECE before", f"{cal['ece_raw']:.2%}", help="Raw softmax (T = 1)")
        cols[1].metric("ECE after", f"{cal['ece']:.2%}", f"{cal['ece'] - cal['ece_raw']:+.2%}",
                       delta_color="inverse", help="Temperature-scaled")
        cols[2].metric("Temperature", f"{t:.3f}")
        cols[3].metric("NLL after", f"{cal['nll']:.4f}", f"{cal['nll'] - cal['nll_raw']:+.4f}",
                       delta_color="inverse")
        tables = (("raw (T = 1)", _as_args(cal["reliability_raw"])),
                  (f"temperature-scaled (T = {t:.2f})", _as_args(cal["reliability"])))
    else:
        cols[0].metric("ECE", f"{cal['ece']:.2%}",
                       help=f"Expected calibration error over {cal['bins']} confidence bins")
        cols[1].metric("Temperature", "1 (uncalibrated)")
        tables = (("raw softmax (uncalibrated)", _as_args(cal["reliability"])),)
    charts.draw(st, reliability_chart, tables, width="content")
    st.caption(f"ECE: the mean gap between confidence and accuracy over {cal['bins']} "
               "equal-width bins, weighted by the images in each (the numbers over the bars).")
    label = "Calibrate again" if t != 1.0 else "Calibrate (temperature scaling)"
    if st.button(label, key="cal_submit", disabled=busy,
                 help="Fit one temperature T on the validation split (minimum NLL of "
                      "softmax(logits / T)); every backend, export and bundle then reports "
                      "calibrated confidences. Labels never change."):
        params = {"checkpoint": summary["checkpoint"]}
        task_progress.submit(TASK, job.id, params, "calibration",
                             name=f"calibrate {job.name or job.id} "
                                  f"{summary['checkpoint']}")
