"""A job's page: live status, progress, ETA and charts; cancel, resume, clone, delete and
download. The live part is a fragment that reruns about once a second while the job runs."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from dashboard import charts, nav, session
from dashboard.views import evaluation
from engine import jobs
from engine.datasets import DatasetError, open_dataset
from engine.text import format_duration


def _choose_job() -> str | None:
    job_id = st.query_params.get("id")
    if job_id:
        return job_id
    all_jobs = jobs.list_jobs()
    if not all_jobs:
        st.info("No jobs yet.")
        st.page_link(nav.page("new_model"), label="Train a new model")
        return None
    labels = {j["id"]: f"{j['name'] or j['id']} ({j['status']}, {j['id']})" for j in all_jobs}
    chosen = st.selectbox("Job", list(labels), format_func=labels.get, key="job_pick")
    return chosen


def _live(job_id: str) -> None:
    """Status, progress and charts of one job; polls while the job is active."""
    try:
        job = jobs.get_job(job_id)
    except jobs.JobError as e:
        st.error(str(e))
        return
    status = job["status"]
    progress = job.get("progress") or {}
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Status", status)
    epochs = job["config"]["epochs"]
    done_epochs = len(job["metrics"])
    c2.metric("Epoch", f"{min(done_epochs + (status == 'running'), epochs)} / {epochs}")
    c3.metric("ETA", format_duration(job.get("eta_s")) if status == "running" else "—")
    rate = progress.get("images_per_s")
    c4.metric("Images/s", f"{rate:,.0f}" if rate else "—")
    st.progress(job.get("fraction") or 0.0,
                text=f"{(job.get('fraction') or 0):.0%}" + (
                    f" — loss {progress['loss']:.4f}" if progress.get("loss") else ""))
    if job.get("cancel_requested") and status == "running":
        st.info("Cancel requested: the job stops at its next step and saves a checkpoint.")
    if status == "failed":
        st.error(f"Failed ({job.get('reason') or 'error'}): {job.get('message') or ''}")
    elif status == "interrupted":
        st.warning(f"Interrupted: {job.get('message') or 'the worker stopped'}. "
                   "Resume continues from the last checkpoint.")
    result = job.get("result") or {}
    held = result.get("held_out")
    if held:
        st.success(f"Held-out ({held['split']}) accuracy: {held['accuracy']:.2%}, "
                   f"loss {held['loss']:.4f}")
    _charts(job["metrics"], job["config"]["dataset"])
    with st.expander("Log", expanded=status in ("running", "failed")):
        st.code(jobs.read_log(job_id, tail=30) or "(empty)", language=None)
    # When the job ends, redraw the whole page once so the buttons match the new status.
    if status not in jobs.ACTIVE and st.session_state.get("job_last_status") in jobs.ACTIVE:
        st.session_state["job_last_status"] = status
        st.rerun()
    st.session_state["job_last_status"] = status


def _charts(metrics: list[dict[str, Any]], dataset: str) -> None:
    if not metrics:
        st.caption("Charts appear after the first epoch.")
        return
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.metric_curves(metrics, {"train_loss": "train", "val_loss": "val"},
                                         "Loss", "loss"), width="stretch")
    acc = {"val_accuracy": "top-1"}
    if any(m.get("val_top5") is not None for m in metrics):
        acc["val_top5"] = "top-5"
    c2.altair_chart(charts.metric_curves(metrics, acc, "Validation accuracy", "accuracy"),
                    width="stretch")
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.metric_curves(metrics, {"lr": "learning rate"}, "Learning rate",
                                         "rate"), width="stretch")
    c2.altair_chart(charts.metric_curves(metrics, {"images_per_s": "images/s"}, "Throughput",
                                         "images/s"), width="stretch")
    if any(m.get("val_per_class_accuracy") for m in metrics):
        st.altair_chart(charts.per_class_accuracy(metrics, _classes(dataset)), width="stretch")


def _classes(dataset: str) -> list[str]:
    """Class names for the per-class chart (indexes when the dataset is gone)."""
    try:
        return list(open_dataset(dataset).classes)
    except DatasetError:
        return []


def _actions(job: dict[str, Any]) -> None:
    user = session.current_user()
    mine = job.get("owner") in (None, user)
    cols = st.columns(5)
    status = job["status"]
    if cols[0].button("Cancel", disabled=status not in jobs.ACTIVE or not mine,
                      help=None if mine else "Only the job's owner can cancel it"):
        _do(lambda: jobs.cancel(job["id"], user=user))
    if cols[1].button("Resume", disabled=not job.get("resumable") or not mine):
        _do(lambda: jobs.resume(job["id"], user=user))
    if cols[2].button("Clone"):
        nav.go("new_model", clone=job["id"])
    confirm = st.session_state.get("job_confirm_delete") == job["id"]
    if cols[3].button("Confirm delete" if confirm else "Delete", type="primary" if confirm
                      else "secondary", disabled=status in jobs.ACTIVE or not mine,
                      help=None if mine else "Only the job's owner can delete it"):
        if not confirm:
            st.session_state["job_confirm_delete"] = job["id"]
            st.rerun()
        if _do(lambda: jobs.delete(job["id"], user=user), rerun=False):
            st.session_state.pop("job_confirm_delete", None)
            nav.go("home")
    best = jobs.job_dir(job["id"]) / "best.pt"
    if best.exists():
        cols[4].download_button("Download checkpoint", best.read_bytes(),
                                file_name=f"{job['id']}-best.pt")


def _do(action, rerun: bool = True) -> bool:
    try:
        action()
    except (jobs.JobError, PermissionError) as e:
        st.error(str(e))
        return False
    if rerun:
        time.sleep(0.2)
        st.rerun()
    return True


def _dataset_name(id_or_name: str) -> str:
    try:
        return open_dataset(id_or_name).name
    except DatasetError:
        return f"{id_or_name} (deleted)"


def _lineage(job: dict[str, Any]) -> None:
    """Where the weights started (issue 17): job -> job -> job."""
    if job["config"].get("init_from"):
        from engine.jobs.lineage import lineage_line

        st.caption(f"Started from: {lineage_line(job['id'])}")


def render() -> None:
    job_id = _choose_job()
    if not job_id:
        return
    try:
        job = jobs.get_job(job_id, metrics=False, events=False)
    except jobs.JobError as e:
        st.error(str(e))
        return
    cfg = job["config"]
    network = cfg["network"] if isinstance(cfg["network"], str) else "custom network"
    st.title(job["name"] or job["id"])
    st.caption(f"{job['id']} · owner {job.get('owner') or '—'} · dataset "
               f"{_dataset_name(cfg['dataset'])} · "
               f"{network} · {cfg['solver']} lr {cfg['lr']:g} · {cfg['epochs']} epochs · "
               f"device {job.get('assigned_device') or cfg['device']}")
    _lineage(job)
    _actions(job)
    active = job["status"] in jobs.ACTIVE
    st.session_state.setdefault("job_last_status", job["status"])
    st.fragment(_live, run_every=1.0 if active else None)(job_id)
    # Evaluation needs a best checkpoint and a job at rest; task jobs (evaluations, exports)
    # have no checkpoint of their own.
    if not active and job.get("kind", "train") == "train" \
            and (jobs.job_dir(job_id) / "best.pt").exists():
        evaluation.render(job)
    with st.expander("Configuration"):
        st.json(cfg)
