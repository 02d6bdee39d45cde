"""Galleries of dataset images (the Evaluation tab's pairs, mistakes, top images per class and
threshold images): each image enlarged pixel for pixel and PNG-encoded once per dataset and
indexes, so a rerun that shows the same images again sends cached bytes instead of encoding
every picture anew (bench/server_cost.py: a tenth of a finished job's page). They go to the
browser inline, as data URIs: a thumbnail is a few hundred bytes, and as media files each one
cost the server a PIL header parse, a digest and an HTTP request of its own per view."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from dashboard.widgets import THUMB_PX
from engine.images.pictures import enlarge


@st.cache_resource(max_entries=256, show_spinner=False)  # bytes: shared, not copied
def _pngs(dataset_path: str, indexes: tuple[int, ...], px: int, _dataset: Any) -> list[bytes]:
    """PNG bytes of the dataset's images at `indexes` (a dataset's images never change under
    its path: a new version is a new dataset)."""
    idx = np.asarray(indexes, dtype=np.int64)
    order = np.argsort(idx)  # sorted reads from the memory map, then back in caller's order
    got = np.asarray(_dataset.images[idx[order]])
    out = np.empty_like(got)
    out[order] = got
    pngs = []
    for img in out:
        buf = io.BytesIO()
        Image.fromarray(enlarge(img, px)).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    return pngs


def dataset_images(dataset: Any, indexes: Sequence[int], px: int = THUMB_PX) -> list[bytes]:
    """The dataset's images at `indexes`, in that order, enlarged to about `px`, as PNG."""
    if len(indexes) == 0:
        return []
    return _pngs(str(dataset.path), tuple(int(i) for i in indexes), px, dataset)


def image_uris(dataset: Any, indexes: Sequence[int], px: int = THUMB_PX) -> list[str]:
    """dataset_images as data URIs (what a gallery sends)."""
    return ["data:image/png;base64," + base64.b64encode(png).decode("ascii")
            for png in dataset_images(dataset, indexes, px)]


def show(where: Any, dataset: Any, indexes: Sequence[int], captions: list[str],
         px: int = THUMB_PX) -> None:
    """A row-wrapped gallery of the dataset's images at `indexes` with their captions."""
    where.image(image_uris(dataset, indexes, px), caption=captions, width=px)
