"""Dataset versions in the dashboard (issue 17): the Datasets page's versions table and
"extend into a new version" form, and the Evaluation tab's "add to training data" on
confident mistakes, with "retrain" opening New model from the job on the new version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from dashboard import nav, session
from dashboard.widgets import camera_shots, clear_shots
from engine.datasets import Dataset, DatasetError
from engine.datasets.versions import NewImage, dataset_versions, extend_dataset, from_probes
from engine.evaluation import probes

if TYPE_CHECKING:
    from engine.jobs import LiveJob


def _added_text(added: dict[str, Any]) -> str:
    if not added:
        return "original"
    parts = [f"+{added.get('images', 0)} images"]
    if added.get("by_source"):
        parts.append("(" + ", ".join(f"{n} {s}" for s, n in added["by_source"].items()) + ")")
    if added.get("corrected"):
        parts.append(f"{added['corrected']} relabelled")
    if added.get("new_classes"):
        parts.append("new classes " + ", ".join(added["new_classes"]))
    return " ".join(parts)


def versions_table(ds: Dataset) -> None:
    family = dataset_versions(ds.id)
    if len(family) < 2:
        return
    st.subheader("Versions")
    st.dataframe(pd.DataFrame([{"version": d["number"], "name": d["name"],
                                "images": d["total"], "added": _added_text(d["added"]),
                                "note": d["note"], "this": "◀" if d["id"] == ds.id else ""}
                               for d in family]), hide_index=True, width="stretch")


def _open_new(made: Dataset, message: str) -> None:
    st.session_state["ds_flash"] = message
    st.query_params["id"] = made.id  # the page selects it on the next run


def _make_button(label: str, key: str, ready: bool, dataset: Dataset, *args: Any,
                 **kwargs: Any) -> Dataset | None:
    """A button that makes a new version of `dataset` (extend_dataset's arguments): the
    version made, or None (not pressed, nobody signed in, or the error said in the page)."""
    if not st.button(label, key=key, disabled=not ready):
        return None
    if not session.require_user("extend a dataset"):
        return None
    try:
        return extend_dataset(dataset, *args, owner=session.current_user(), **kwargs)
    except DatasetError as e:
        st.error(str(e))
        return None


def extend_form(ds: Dataset, user: str | None) -> None:
    """Uploads (one class each time) and probe-board images into a new version."""
    # A toggle, not an expander: it stays open across the reruns that the camera and the
    # uploads cause (an expander above which the page changes closes again).
    if not st.toggle("Extend into a new version (this one stays as it is)", key="dv_open"):
        return
    files = st.file_uploader("Images", accept_multiple_files=True, key="dv_files",
                             type=["png", "jpg", "jpeg", "bmp", "gif", "webp"])
    c1, c2 = st.columns(2)
    label = c1.selectbox("Their class (or type a new one)", ds.classes, key="dv_label",
                         accept_new_options=True)
    boards = {b["id"]: f"{b['name']} ({b['probes']} images)"
              for b in probes.list_boards(user) if b["probes"]}
    board = c2.selectbox("Add a probe board's images, with their labels",
                         [None, *boards], format_func=lambda b: boards.get(b, "none"),
                         key="dv_board")
    c1, c2 = st.columns(2)
    name = c1.text_input("New version's name (empty: numbered)", key="dv_name")
    note = c2.text_input("What it adds (a note)", key="dv_note")
    added = [NewImage(f.getvalue(), str(label), "upload") for f in files or []]
    added += camera_shots(str(label), "dv")
    if board:
        added += from_probes(probes.list_probes(board, user))
    made = _make_button(f"Make the new version ({len(added)} images)", "dv_make", bool(added),
                        ds, added, name=name or None, note=note)
    if made is None:
        return
    clear_shots("dv")
    _open_new(made, f"Made {made.name!r} from {ds.name!r}.")
    st.rerun()


def add_mistakes(job: LiveJob, mistakes: list[dict[str, Any]], dataset: Dataset) -> None:
    """'Add to training data' on each confident mistake, with its corrected label; then a new
    version of the dataset and a button to retrain from this job on it."""
    if made_id := st.session_state.get(f"dv_made_{job.id}"):
        st.success(f"New dataset version {made_id} made.")
        if st.button("Retrain from this job on it", key="dv_retrain", type="primary"):
            nav.go("new_model", start=job.id, dataset=made_id)
    if not mistakes:
        return
    # A toggle, not an expander: a closed expander still builds its contents, and its two
    # widgets per mistake were a fifth of the Job page's server CPU (bench/server_cost.py).
    if not st.toggle("Add mistakes to training data (with corrected labels)",
                     key="dv_mistakes_open"):
        return
    chosen: dict[int, str] = {}
    for m in mistakes:
        c1, c2 = st.columns([1, 2])
        if c1.checkbox(f"#{m['index']}: add to training data", key=f"dv_add_{m['index']}"):
            chosen[m["index"]] = c2.selectbox(
                "Correct label", dataset.classes, index=m["true"],
                key=f"dv_fix_{m['index']}")
    made = _make_button(f"Make a new version with {len(chosen)} image(s)", "dv_mistakes",
                        bool(chosen), dataset, corrections=chosen,
                        note=f"corrected mistakes of job {job.id}")
    if made is None:
        return
    st.session_state[f"dv_made_{job.id}"] = made.id
    st.rerun()
