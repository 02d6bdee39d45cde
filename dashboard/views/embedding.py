"""The Evaluation tab's embedding view: held-out images and a probe board's photos in the
network's penultimate-layer feature space, projected to 2-D (engine/evaluation/embedding.py).

Points are coloured by true class, probes are large outlined diamonds, and hovering a point
shows its thumbnail (the Vega tooltip's `image` field, a PNG data URL). A table lists each
probe's prediction and how far it lies from the held-out images (novelty).
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import session
from engine import jobs
from engine.datasets import DatasetError
from engine.evaluation import embedding, probes
from engine.training.checkpoint import CheckpointError

NO_BOARD = "(no probe board)"
SIZES = (200, 600, 1500)


@st.cache_data(max_entries=8, show_spinner="Embedding images…")
def _view(checkpoint: str, mtime: float, split: str, board: str | None, probe_ids: tuple,
          user: str | None, limit: int, method: str) -> embedding.EmbeddingView:
    """One embedding, cached on what it shows (the checkpoint's mtime: a retrained file)."""
    rows = probes.list_probes(board, user) if board else []
    return embedding.embedding_view(checkpoint, split, rows, limit=limit, method=method)


def embedding_chart(view: embedding.EmbeddingView) -> alt.Chart:
    """A scatter of the projected points: colour = true class, probes as outlined diamonds,
    the thumbnail, label, prediction and novelty in the tooltip."""
    df = pd.DataFrame(view.points, columns=["kind", "id", "label", "predicted", "confidence",
                                            "x", "y", "novelty", "image"])
    axis = "PC" if view.method == "pca" else "UMAP "
    tooltip = ["image", "id", "kind", alt.Tooltip("label:N", title="true"), "predicted",
               alt.Tooltip("confidence:Q", format=".1%")]
    base = alt.Chart(df).encode(
        x=alt.X("x:Q", title=f"{axis}1"), y=alt.Y("y:Q", title=f"{axis}2"),
        color=alt.Color("label:N", title="true class",
                        legend=alt.Legend(orient="right", columns=1)),
        shape=alt.Shape("kind:N", title=None, scale=alt.Scale(
            domain=[f"{view.split} image", "probe"], range=["circle", "diamond"])))
    held = base.transform_filter(alt.datum.kind != "probe").mark_point(
        filled=True, size=40, opacity=0.55).encode(tooltip=tooltip)
    probe = base.transform_filter(alt.datum.kind == "probe").mark_point(
        filled=True, size=260, opacity=1, stroke="black", strokeWidth=1.5).encode(
        tooltip=[*tooltip, alt.Tooltip("novelty:Q", format=".0%",
                                       title="farther than (of held-out)")])
    title = (f"Penultimate features ({view.width} wide), {view.method.upper()} fitted on "
             f"the {view.split} images")
    return alt.layer(held, probe, title=title).properties(height=480)


def _probe_table(view: embedding.EmbeddingView) -> None:
    rows = [{"probe": p["id"], "true": p["label"], "predicted": p["predicted"],
             "confidence": p["confidence"], "farther than": p["novelty"] * 100}
            for p in view.probe_points()]
    if not rows:
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="emb_probes",
                 column_config={
                     "confidence": st.column_config.NumberColumn(format="%.1f%%"),
                     "farther than": st.column_config.ProgressColumn(
                         "farther than", format="%.0f%%", min_value=0, max_value=100,
                         help="Share of held-out images that lie closer to their nearest "
                              "neighbours than this probe does: near 100% is off the data")})
    off = sum(p["novelty"] >= 0.95 for p in view.probe_points())
    st.caption(f"{off} of {len(rows)} probe(s) lie farther from the {view.split} images than "
               "95% of those images do: the network has not seen anything like them.")


def render(job: jobs.LiveJob, summary: dict[str, Any]) -> None:
    """The embedding section: pickers, then (once switched on) the chart and probe table."""
    st.subheader("Embedding", help="Where images land in the network's penultimate-layer "
                 "features: held-out images cluster by class; real-world photos unlike the "
                 "training data land outside the clusters.")
    user = session.current_user()
    if not st.toggle("Show the embedding", key="emb_on",
                     help="Runs the checkpoint over the held-out images and the board"):
        return
    boards = {b["id"]: b for b in probes.list_boards(user)}
    c1, c2, c3 = st.columns([2, 1, 1])
    board = c1.selectbox("Probe board", [NO_BOARD, *boards], key="emb_board",
                         index=1 if boards else 0,  # the user's newest board first
                         format_func=lambda b: b if b == NO_BOARD else
                         f"{boards[b]['name']} ({boards[b].get('probes', 0)} images)")
    limit = c2.selectbox("Held-out images", SIZES, index=1, key="emb_limit")
    methods = ["pca"] + (["umap"] if embedding.umap_available() else [])
    method = c3.radio("Projection", methods, key="emb_method", horizontal=True,
                      format_func=str.upper, help=None if len(methods) > 1 else
                      "UMAP appears when the umap-learn package is installed")
    checkpoint = jobs.job_dir(job.id) / summary["checkpoint"]
    board_id = None if board == NO_BOARD else board
    try:
        ids = tuple(p["id"] for p in probes.list_probes(board_id, user)) if board_id else ()
        view = _view(str(checkpoint), checkpoint.stat().st_mtime, summary["split"], board_id,
                     ids, user, int(limit), method)
    except (ValueError, DatasetError, CheckpointError, FileNotFoundError, KeyError,
            PermissionError) as e:
        st.error(f"No embedding: {e}")
        return
    st.altair_chart(embedding_chart(view), key="emb_chart", width="stretch")
    extra = f"; {view.skipped_probes} blank probe(s) left out" if view.skipped_probes else ""
    st.caption(f"{len(view.points) - len(view.probe_points())} {view.split} images and "
               f"{len(view.probe_points())} probe(s){extra}. Hover a point for its image.")
    _probe_table(view)
