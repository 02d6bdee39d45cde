"""Widgets and labels shared by several pages, so views never import each other: choosing a
job (its id goes into the URL, so the page can be reloaded and shared), names for datasets and
networks instead of ids."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import streamlit as st

from dashboard import nav
from engine import jobs
from engine.datasets import list_datasets
from engine.datasets.versions import NewImage

THUMB_PX = 84  # explorer and gallery thumbnails: 28x28 digits shown 3x, pixel for pixel


# --- names, not ids -------------------------------------------------------------------------


def dataset_names() -> dict[str, str]:
    """Dataset id -> name, for every dataset in the workspace (one query)."""
    try:
        return {d["id"]: d["name"] for d in list_datasets()}
    except Exception:  # noqa: BLE001 - a label never breaks a page
        return {}


def dataset_label(id_or_name: str, names: dict[str, str] | None = None) -> str:
    """A dataset's name for people; an id no longer in the workspace says so."""
    names = dataset_names() if names is None else names
    if id_or_name in names:
        return names[id_or_name]
    if id_or_name in names.values():
        return id_or_name
    return f"{id_or_name} (deleted)"


def network_label(network: Any) -> str:
    """A zoo name, or a custom spec's own name ("custom network" if it has none)."""
    if isinstance(network, dict):
        name = network.get("name")
        return f"{name} (custom)" if name else "custom network"
    return str(network or "—")


def job_label(job: jobs.LiveJob) -> str:
    """Name and creation time: no status, which would go stale in an open picker (the page
    itself shows the live status)."""
    when = time.strftime("%d %b %H:%M", time.localtime(job.created)) if job.created \
        else ""
    return f"{job.name or job.id} · {when}" if when else (job.name or job.id)


# --- the queue's health --------------------------------------------------------------------


def scheduler_banner() -> None:
    """Says when jobs wait (or look running) with no scheduler to run them, and offers to
    start one; it recovers jobs whose worker died (they resume from their checkpoint)."""
    try:
        health = jobs.scheduler_health()
    except Exception:  # noqa: BLE001 - the banner never breaks a page
        return
    if not health["needs_start"]:
        return
    parts = []
    if health["queued"]:
        parts.append(f"{health['queued']} queued job(s) wait")
    for j in health["stale"]:
        parts.append(f"job {j['name'] or j['id']} says running but has not reported for "
                     f"{j['silent_s']:.0f} s")
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.warning("**Scheduler not running**: " + "; ".join(parts) + ".")
    if c2.button("Start the scheduler", key="start_scheduler"):
        try:
            jobs.ensure_scheduler()
        except RuntimeError as e:
            st.error(str(e))
            return
        st.rerun()


# --- choosing a job -------------------------------------------------------------------------


def _viewer() -> str | None:
    from dashboard import session

    return session.current_user()


def usable_jobs() -> list[dict[str, Any]]:
    """Done jobs that kept a checkpoint, newest first."""
    from engine.training.checkpoint import list_checkpoints  # torch: only when needed

    done = jobs.list_jobs(status="done", viewer=_viewer())
    return [j for j in done if list_checkpoints(jobs.job_dir(j.id))
            or (jobs.job_dir(j.id) / "last.pt").exists()]


def _to_url(key: str, query_key: str) -> None:
    st.query_params[query_key] = st.session_state[key]


def pick_job(choices: list[dict[str, Any]], query_key: str, key: str, where: Any = st,
             label: str = "Job") -> str:
    """A selectbox of jobs by name (the id on hover), preselecting the one in the URL; a pick
    goes into the URL (?<query_key>=id) so the page can be reloaded or shared as it is."""
    labels = {j.id: job_label(j) for j in choices}
    seen = Counter(labels.values())  # two jobs of one name and minute: tell them apart by id
    labels = {i: f"{lab} · {i[-6:]}" if seen[lab] > 1 else lab for i, lab in labels.items()}
    ids = list(labels)
    wanted = st.query_params.get(query_key)
    if wanted in ids and st.session_state.get(key) != wanted:
        st.session_state[key] = wanted  # the URL wins: a link, a reload, a second tab
    elif st.session_state.get(key) not in ids:
        st.session_state.pop(key, None)
    chosen = where.selectbox(label, ids, format_func=labels.get, key=key,
                             on_change=_to_url, args=(key, query_key),
                             help="Each job's id is shown on its page and in the URL.")
    if chosen and wanted != chosen:
        st.query_params[query_key] = chosen
    return chosen


def choose_trained_job(purpose: str, query_key: str, key: str, where: Any = st
                       ) -> str | None:
    """A selectbox of finished jobs with a checkpoint, preselecting the one in the URL;
    without any, says what `purpose` needs and links to New model."""
    done = usable_jobs()
    if not done:
        st.info(f"No trained model yet: {purpose} needs a finished job with a checkpoint.")
        st.page_link(nav.page("new_model"), label="Train a new model")
        return None
    wanted = st.query_params.get(query_key)
    if wanted and wanted not in {j.id for j in done}:
        st.warning(f"Job {wanted} is not a finished training job with a checkpoint.")
    return pick_job(done, query_key, key, where, label="Model (job)")


# --- camera -----------------------------------------------------------------------------------


def camera_shots(label: str, key: str, switch: str = "Take pictures with the camera"
                 ) -> list[NewImage]:
    """Pictures from the browser's camera into the chosen class: each new picture is kept
    (with the class chosen when it was taken) and shown as a thumbnail that can be deleted.
    The camera starts only when its toggle is turned on."""
    shots: list[tuple[str, bytes]] = st.session_state.setdefault(f"{key}_shots", [])
    if st.toggle(switch, key=f"{key}_cam_on"):
        picture = st.camera_input(f"A picture of class {label!r}", key=f"{key}_cam")
        if picture is not None and picture.file_id != st.session_state.get(f"{key}_cam_seen"):
            st.session_state[f"{key}_cam_seen"] = picture.file_id
            shots.append((label, picture.getvalue()))
    if shots:
        st.caption(f"{len(shots)} picture(s) taken: "
                   + ", ".join(f"{n} of {c!r}" for c, n in _counts(shots)))
        columns = st.columns(min(len(shots), 8))
        for i, (shot_label, data) in enumerate(list(shots)):
            column = columns[i % len(columns)]
            column.image(data, caption=shot_label, width=80)
            if column.button("Delete", key=f"{key}_cam_del_{i}"):
                del shots[i]
                st.rerun()
    return [NewImage(data, shot_label, "camera") for shot_label, data in shots]


def clear_shots(key: str) -> None:
    st.session_state[f"{key}_shots"] = []


def _counts(shots: list[tuple[str, bytes]]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for label, _ in shots:
        counts[label] = counts.get(label, 0) + 1
    return list(counts.items())
