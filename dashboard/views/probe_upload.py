"""Adding many images to a probe board at once (the Probe boards and Lab pages): drop files or
a zip, check the proposed labels (from folders or names like `7_photo.jpg`) in an editable
table with thumbnails, and add them all with one click."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import pandas as pd
import streamlit as st
from PIL import Image

from engine.evaluation import probe_import, probes

UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff", "zip"]
THUMB_PX = 48


def thumbnail_uri(png: bytes, size: int = THUMB_PX) -> str:
    """A small PNG as a data URI, for image columns of tables."""
    im = Image.open(io.BytesIO(png))
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _nonce_key(key: str) -> str:
    return f"{key}_nonce"


def bulk_add(board_id: str, user: str, key: str, classes: Sequence[str] | None = None,
             polarity: str = "auto", help_polarity: str | None = None) -> list[int]:
    """The uploader, the table of proposed labels and the "Add" button; returns the ids of
    probes added in this run (empty when none)."""
    nonce = st.session_state.get(_nonce_key(key), 0)
    files = st.file_uploader(
        "Add images: files or a .zip (labels from class folders or names like 7_photo.jpg)",
        type=UPLOAD_TYPES, accept_multiple_files=True, key=f"{key}_files_{nonce}")
    if flash := st.session_state.pop(f"{key}_flash", None):
        st.success(flash)
    if not files:
        return []
    found = probe_import.read_uploads([(f.name, f.getvalue()) for f in files], classes)
    for why in found.skipped[:10]:
        st.warning(f"Skipped {why}")
    if len(found.skipped) > 10:
        st.warning(f"… and {len(found.skipped) - 10} more files skipped")
    if not found.candidates:
        return []
    table = pd.DataFrame({"image": [thumbnail_uri(c.png) for c in found.candidates],
                          "file": [c.name for c in found.candidates],
                          "label": [c.label or "" for c in found.candidates]})
    label_column = (st.column_config.SelectboxColumn("true label", options=list(classes),
                                                     required=True)
                    if classes else st.column_config.TextColumn("true label", required=True))
    edited = st.data_editor(
        table, hide_index=True, width="stretch", disabled=["image", "file"],
        key=f"{key}_editor_{nonce}",
        column_config={"image": st.column_config.ImageColumn("image", width="small"),
                       "label": label_column})
    c1, c2 = st.columns(2)
    polarities = list(probes.POLARITIES)
    chosen = c1.selectbox("Polarity", polarities, index=polarities.index(polarity),
                          key=f"{key}_polarity", help=help_polarity)
    digit = c2.checkbox("Frame like MNIST (digits)", value=True, key=f"{key}_digit")
    n = len(found.candidates)
    if not st.button(f"Add {n} image{'s' * (n != 1)} to the board", type="primary",
                     key=f"{key}_add"):
        return []
    labels = ["" if pd.isna(v) else str(v) for v in edited["label"]]
    for cand, label in zip(found.candidates, labels, strict=True):
        cand.label = label
    try:
        ids = probe_import.add_all(board_id, found.candidates, user, chosen, digit)
    except (ValueError, PermissionError, KeyError) as e:
        st.error(f"Nothing added: {e}")
        return []
    st.session_state[_nonce_key(key)] = nonce + 1  # a fresh, empty uploader
    st.session_state[f"{key}_flash"] = f"Added {len(ids)} image{'s' * (len(ids) != 1)}."
    st.rerun()
    return ids
