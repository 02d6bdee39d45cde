"""The Evaluation tab's per-class PR and ROC curves, and the images behind a threshold.

The curves and areas come from engine/evaluation/curves.py; this draws them (one colour per
class, AP and ROC AUC in the legend and a table), lets the user pick a class and a threshold
(a click on a curve point, or the pickers) and shows that threshold's false positives and false
negatives as galleries, as the pair gallery shows a confusion cell's images.
"""

from __future__ import annotations

import warnings
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import gallery
from dashboard.charts import draw, selected_point
from engine.evaluation import curves
from engine.evaluation.evaluate import Evaluation

DEFAULT_DRAWN = 10  # classes drawn at first: more lines than this are a tangle


@st.cache_data(max_entries=16, show_spinner=False)
def _class_curves(key: tuple, _ev: Evaluation) -> list[curves.ClassCurves]:
    """The curves of one stored evaluation (key: job, checkpoint, split, created)."""
    return curves.evaluation_curves(_ev)


def _legend(k: curves.ClassCurves) -> str:
    ap = "—" if k.average_precision is None else f"{k.average_precision:.3f}"
    roc = "—" if k.roc_auc is None else f"{k.roc_auc:.3f}"
    return f"{k.name}  AP {ap} · AUC {roc}"


def curves_chart(drawn: list[curves.ClassCurves], picked: curves.ClassCurves,
                 at: curves.ThresholdImages) -> alt.HConcatChart:
    """PR (recall, precision) and ROC (false-positive rate, true-positive rate) curves side by
    side, one colour per class labelled with its AP and ROC AUC; a click on a curve selects its
    nearest (class, threshold) point (selection parameter "point"); the chosen threshold of
    the picked class is a ringed dot on both."""
    legend = {k.name: _legend(k) for k in drawn}
    df = pd.DataFrame(curves.curve_rows(drawn),
                      columns=["curve", "class", "x", "y", "threshold"])
    df["legend"] = df["class"].map(legend)
    order = [legend[k.name] for k in drawn]
    color = alt.Color("legend:N", sort=order, title="class  (AP · ROC AUC)",
                      legend=alt.Legend(orient="right", labelLimit=400, symbolOpacity=1,
                                         symbolType="stroke", symbolStrokeWidth=3))
    pick = alt.selection_point(name="point", fields=["class", "threshold"], on="click",
                               nearest=True, empty=False)
    fpr = at.false_positive_count / picked.negatives if picked.negatives else 0.0
    marks = pd.DataFrame([{"curve": "PR", "x": at.recall, "y": at.precision},
                          {"curve": "ROC", "x": fpr, "y": at.recall}])

    def one(curve: str, title: str, x: str, y: str) -> alt.LayerChart:
        base = alt.Chart(df).transform_filter(alt.datum.curve == curve)
        enc = {"x": alt.X("x:Q", title=x, scale=alt.Scale(domain=[0, 1])),
               "y": alt.Y("y:Q", title=y, scale=alt.Scale(domain=[0, 1])),
               "color": color}
        line = base.mark_line(strokeWidth=2).encode(**enc)
        points = base.mark_point(size=30, filled=True, opacity=0.01).encode(
            **enc, tooltip=["class", alt.Tooltip("threshold:Q", format=".3f"),
                            alt.Tooltip("x:Q", title=x, format=".3f"),
                            alt.Tooltip("y:Q", title=y, format=".3f")]).add_params(pick)
        mark = (alt.Chart(marks).transform_filter(alt.datum.curve == curve)
                .mark_point(size=160, shape="circle", filled=False, strokeWidth=3,
                            color="#e4572e").encode(x="x:Q", y="y:Q"))
        return alt.layer(line, points, mark, title=title).properties(width=300, height=300)

    return alt.hconcat(one("PR", "Precision-recall (one class vs the rest)", "recall",
                           "precision"),
                       one("ROC", "ROC (one class vs the rest)", "false-positive rate",
                           "true-positive rate"))


def _clicked(event: Any, classes: list[str]) -> tuple[int, float] | None:
    """The (class index, threshold) of a clicked curve point, if any."""
    point = selected_point(event, "point")
    if point is None:
        return None
    try:
        threshold = point["threshold"]
        if threshold is None:
            return None
        return classes.index(str(point["class"])), min(1.0, max(0.0, float(threshold)))
    except (KeyError, ValueError, TypeError):
        return None


def _table(every: list[curves.ClassCurves]) -> None:
    table = pd.DataFrame(curves.auc_table(every)).set_index("class")
    st.dataframe(table, width="stretch", key="cv_table",
                 column_config={k: st.column_config.NumberColumn(format="%.3f")
                                for k in ("average precision", "PR AUC", "ROC AUC")})
    ap, roc = curves.macro(every, "average_precision"), curves.macro(every, "roc_auc")
    st.caption("Macro average: AP " + ("—" if ap is None else f"{ap:.3f}") + " · ROC AUC "
               + ("—" if roc is None else f"{roc:.3f}"))


def _gallery(dataset: Any, rows: list[dict[str, Any]], total: int, what: str,
             captions: list[str]) -> None:
    st.markdown(f"**{what}: {total}**" + (f" (first {len(rows)} shown)" if total > len(rows)
                                          else ""))
    if rows:
        gallery.show(st, dataset, [r["index"] for r in rows], captions)


def render(ev: Evaluation, dataset: Any, key: tuple) -> None:
    """Curves, AUC table, pickers and threshold galleries of a stored evaluation (key: what
    identifies it, for the cache and for resetting the pickers)."""
    st.subheader("Precision-recall and ROC curves",
                 help="Each class against the rest: what its probability is worth at every "
                      "threshold. Click a point of a curve, or pick a class and threshold, to "
                      "see the images it gets wrong there.")
    classes = ev.summary["classes"]
    every = _class_curves(key, ev)
    if st.session_state.get("cv_for") != key:  # another evaluation: start on its worst class
        st.session_state["cv_for"] = key
        worst = min((k for k in every if k.average_precision is not None),
                    key=lambda k: k.average_precision, default=every[0])
        st.session_state["cv_class"] = worst.index
        st.session_state["cv_threshold"] = 0.5
        st.session_state["cv_drawn"] = list(range(min(DEFAULT_DRAWN, len(classes))))
        st.session_state.pop("cv_clicked", None)
    clicked = _clicked(st.session_state.get("cv_chart"), classes)
    if clicked is not None and clicked != st.session_state.get("cv_clicked"):
        st.session_state["cv_class"] = clicked[0]
        st.session_state["cv_threshold"] = round(clicked[1], 3)
        if clicked[0] not in st.session_state["cv_drawn"]:
            st.session_state["cv_drawn"] = [*st.session_state["cv_drawn"], clicked[0]]
    st.session_state["cv_clicked"] = clicked
    options = list(range(len(classes)))
    c1, c2, c3 = st.columns([3, 1, 2])
    drawn = c1.multiselect("Classes drawn", options, format_func=lambda i: classes[i],
                           key="cv_drawn")
    c = c2.selectbox("Class", options, format_func=lambda i: classes[i], key="cv_class",
                     help="The class whose threshold's images are shown below")
    threshold = c3.slider("Threshold", 0.0, 1.0, step=0.001, format="%.3f",
                          key="cv_threshold", help="An image counts as this class when its "
                          "probability is at least this; or click a point of a curve")
    at = curves.evaluation_threshold_images(ev, c, threshold)
    shown = [every[i] for i in sorted(set(drawn) | {c})]
    with warnings.catch_warnings():  # one "point" parameter for both views is meant
        warnings.filterwarnings("ignore", "Automatically deduplicated selection parameter")
        draw(st, curves_chart, shown, every[c], at, on_select="rerun", key="cv_chart",
             width="content")
    with st.expander("AUC per class", expanded=len(classes) <= DEFAULT_DRAWN):
        _table(every)
    st.caption(f"{classes[c]} at threshold {threshold:.3f}: precision {at.precision:.3f}, "
               f"recall {at.recall:.3f} ({at.true_positives} found of "
               f"{at.true_positives + at.false_negative_count})")
    _gallery(dataset, at.false_positives, at.false_positive_count,
             f"False positives (taken for {classes[c]}, most confident first)",
             [f"is {classes[r['true']]} · {r['probability']:.0%}" for r in at.false_positives])
    _gallery(dataset, at.false_negatives, at.false_negative_count,
             f"False negatives ({classes[c]} missed, most clearly first)",
             [f"{r['probability']:.0%}" for r in at.false_negatives])
