"""Datasets: create one (tabs per source), then look at one: summary, counts per class and
split, the mean image, an image explorer (DIGITS' "Explore the db") and delete."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from dashboard import charts, gallery, session
from dashboard.views import dataset_forms
from engine.datasets import (
    PAGE_SIZES,
    Dataset,
    DatasetError,
    dataset_usage,
    delete_dataset,
    explore,
    list_datasets,
    open_dataset,
)
from engine.hosting import roles
from engine.images import pictures

PICK = "ds_pick"
EXPLORER_KEYS = ("ds_split", "ds_class", "ds_page_size")
MEAN_PX = 224


def _readable(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "—"


# --- choosing a dataset -------------------------------------------------------------------------


def _apply_query(rows: list[dict[str, Any]]) -> None:
    """A link with ?id=<id or name> selects that dataset, once per distinct link."""
    wanted = st.query_params.get("id")
    if not wanted or wanted == st.session_state.get("ds_query_id"):
        return
    st.session_state["ds_query_id"] = wanted
    match = next((r["id"] for r in rows if wanted in (r["id"], r["name"])), None)
    if match:
        st.session_state[PICK] = match
    else:
        st.warning(f"No dataset {wanted!r}; showing another one.")


def _on_pick() -> None:
    chosen = st.session_state[PICK]
    st.query_params["id"] = chosen
    st.session_state["ds_query_id"] = chosen


def choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The dataset to show: from the link, the last choice, or the newest."""
    _apply_query(rows)
    by_id = {r["id"]: r for r in rows}
    if st.session_state.get(PICK) not in by_id:
        st.session_state[PICK] = rows[0]["id"]
    chosen = st.selectbox(
        "Dataset", list(by_id), key=PICK, on_change=_on_pick,
        format_func=lambda i: f"{by_id[i]['name']} — {by_id[i]['num_classes']} classes, "
                              f"{by_id[i]['total']:,} images ({by_id[i]['owner'] or 'no owner'})")
    return by_id[chosen]


# --- one dataset --------------------------------------------------------------------------------


def summary(ds: Dataset, row: dict[str, Any]) -> None:
    m = ds.manifest
    c, h, w = ds.shape
    cols = st.columns(5)
    cols[0].metric("Classes", ds.num_classes)
    cols[1].metric("Images", f"{len(ds):,}")
    for col, split in zip(cols[2:], ("train", "val", "test"), strict=True):
        col.metric(split.capitalize() if split != "val" else "Validation", f"{row[split]:,}")
    opts = m.get("options", {})
    st.caption(
        f"Source **{row['source']}** · {w}×{h} px, {'colour' if c == 3 else 'grayscale'} "
        f"({opts.get('resize_mode', '?')}) · owner {row['owner'] or '—'} · created "
        f"{_readable(row['created'])} · id `{ds.id}`")
    st.caption("Classes: " + ", ".join(ds.classes))
    report = m.get("report", {})
    if report.get("skipped"):
        st.warning(f"{report['skipped']} file(s) were skipped while reading the source.")
        with st.expander("Skipped files (first few)"):
            for item in report.get("skipped_examples", []):
                st.text(str(item))
    else:
        st.caption("No files were skipped.")


def counts_and_mean(ds: Dataset) -> None:
    left, right = st.columns([3, 1])
    with left:
        charts.draw(st, charts.class_counts, ds.manifest["counts"])
    with right:
        st.image(pictures.enlarge(ds.mean, MEAN_PX), caption="Mean training image",
                 output_format="PNG")


def _reset_explorer_on_switch(ds: Dataset) -> None:
    """Class and split choices belong to one dataset: forget them when another is shown."""
    if st.session_state.get("ds_explored") != ds.id:
        for key in EXPLORER_KEYS:
            st.session_state.pop(key, None)
        st.session_state["ds_explored"] = ds.id


def explorer(ds: Dataset) -> None:
    st.subheader("Explore")
    _reset_explorer_on_switch(ds)
    counts = ds.manifest["counts"]
    splits = [s for s in ("train", "val", "test") if sum(counts.get(s, {}).values())] or ["train"]
    c1, c2, c3 = st.columns(3)
    split = c1.selectbox("Split", splits, key="ds_split",
                         format_func=lambda s: {"val": "validation"}.get(s, s))
    cls = c2.selectbox("Class", [None, *range(ds.num_classes)], key="ds_class",
                       format_func=lambda i: "All classes" if i is None else ds.classes[i])
    size = c3.selectbox("Images per page", PAGE_SIZES, index=PAGE_SIZES.index(25),
                        key="ds_page_size")
    first = explore(ds, split, cls, 0, size)
    pages = max(1, first.pages)
    page = st.pagination(pages, key=f"ds_page_{ds.id}_{split}_{cls}_{size}") if pages > 1 else 1
    shown = first if page == 1 else explore(ds, split, cls, page - 1, size)
    if not len(shown.images):
        st.info("No images here.")
        return
    start = (page - 1) * size
    st.caption(f"Images {start + 1}–{start + len(shown.images)} of {shown.total:,} "
               f"(page {page} of {pages})")
    gallery.show(st, ds, shown.indexes, [ds.classes[int(label)] for label in shown.labels])


def _may_delete(row: dict[str, Any], user: str | None) -> tuple[bool, str]:
    if not user:
        return False, "Sign in to delete datasets."
    if row.get("locked"):
        return False, "Locked read-only by an instructor: nobody deletes it until unlocked."
    if row["owner"] and row["owner"] != user and not roles.is_instructor(user):
        return False, f"Only its owner, {row['owner']}, or an instructor can delete it."
    return True, ""


def delete_controls(row: dict[str, Any], user: str | None) -> None:
    """Delete for the owner, in two steps; others see why they cannot."""
    allowed, why = _may_delete(row, user)
    if st.session_state.get("ds_confirm_delete") == row["id"] and allowed:
        users = dataset_usage(row["id"])
        st.warning(f"Delete {row['name']!r} and its files? This cannot be undone."
                   + (f" It is used by {len(users)} job(s), which can then no longer run, "
                      "resume or be evaluated." if users else ""))
        c1, c2 = st.columns(2)
        if c1.button("Yes, delete it", type="primary", key="ds_delete_yes"):
            try:
                # confirmed above, usage shown; the engine checks the user again
                delete_dataset(row["id"], force=True, user=user)
            except (DatasetError, PermissionError) as e:
                st.error(f"Could not delete the dataset: {e}")
                return
            st.session_state.pop("ds_confirm_delete", None)
            st.session_state.pop(PICK, None)
            st.query_params.pop("id", None)
            st.session_state["ds_flash"] = f"Deleted {row['name']!r}."
            st.rerun()
        if c2.button("Keep it", key="ds_delete_no"):
            st.session_state.pop("ds_confirm_delete", None)
            st.rerun()
        return
    if st.button("Delete dataset", key="ds_delete", disabled=not allowed, help=why or None):
        st.session_state["ds_confirm_delete"] = row["id"]
        st.rerun()
    if why:
        st.caption(why)


def _versions(ds: Dataset, user: str | None) -> None:
    """Issue 17: the dataset's versions and the form that extends it."""
    from dashboard.views import dataset_versions

    dataset_versions.versions_table(ds)
    dataset_versions.extend_form(ds, user)


def show(row: dict[str, Any], user: str | None) -> None:
    try:
        ds = open_dataset(row["id"])
    except (DatasetError, OSError) as e:
        st.error(f"Could not open dataset {row['name']!r}: {e}")
        return
    try:
        summary(ds, row)
        counts_and_mean(ds)
        explorer(ds)
        _versions(ds, user)
    except (DatasetError, ValueError, OSError) as e:
        st.error(f"Could not read dataset {row['name']!r}: {e}")
    st.divider()
    delete_controls(row, user)


def render() -> None:
    st.title("Datasets")
    if flash := st.session_state.pop("ds_flash", None):
        st.success(flash)
    with st.container(border=True):
        st.subheader("Create a dataset")
        made = dataset_forms.create_section()
    if made is not None:  # show what was just made (the picker is not drawn yet this run)
        st.session_state[PICK] = made.id
        st.session_state["ds_query_id"] = made.id
        st.query_params["id"] = made.id
    try:
        rows = list_datasets(viewer=session.current_user())
    except Exception as e:  # noqa: BLE001 - a broken workspace must still show a page
        st.error(f"Could not list datasets: {e}")
        return
    if not rows:
        st.info("No datasets yet. Create one above: the offline sample takes one click.")
        return
    st.subheader("Browse")
    show(choose(rows), session.current_user())
