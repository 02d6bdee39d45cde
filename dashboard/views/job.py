"""A job's page: live status, progress, ETA and charts; cancel, resume, clone, delete and
download. While the job is queued or running the live part is a fragment that polls every
second; at rest it is drawn once, and a fragment that draws nothing reads the status every few
seconds (another tab may resume it). When the status changes, the whole page is drawn again so
the buttons match. A trained job at rest has lazy tabs (Training, Evaluation, Classify many):
only the open one is drawn."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from dashboard import charts, cpu_budget, nav, session, widgets
from dashboard.views import evaluation, gpu_panel
from engine import jobs
from engine.datasets import DatasetError, open_dataset
from engine.devices import device_units
from engine.hosting import roles
from engine.jobs.progress import epoch_position, queue_position, queue_words
from engine.text import format_duration

ACTIVE_POLL_S = 1.0
AT_REST_POLL_S = 5.0  # a job at rest changes only when someone acts on it elsewhere
RENDERED = "job_rendered_status"  # (job id, status) the full page was last drawn with
TABS = ["Training", "Evaluation", "Classify many"]  # a trained job at rest; the first opens


def _choose_job() -> str | None:
    """The job in the URL (?id=...), chosen from a picker that writes its choice there."""
    all_jobs = jobs.list_jobs(viewer=session.current_user())
    wanted = st.query_params.get("id")
    if wanted and wanted not in {j.id for j in all_jobs}:
        return wanted  # a task job, an id prefix, or a wrong id: the page says which
    if not all_jobs:
        st.info("No jobs yet.")
        st.page_link(nav.page("new_model"), label="Train a new model")
        return None
    return widgets.pick_job(all_jobs, "id", "job_pick")


def _live(job_id: str) -> None:
    """Status, progress and charts of one job; polls while the job is active."""
    try:
        job = jobs.get_job(job_id, viewer=session.current_user())
    except (jobs.JobError, PermissionError) as e:
        st.error(str(e))
        return
    status = job.status
    progress = job.progress or {}
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Status", status)
    where = epoch_position(job, len(job.metrics))
    c2.metric("Epochs done", f"{where.completed} / {where.total}",
              help="Completed epochs; the step inside the one under way is shown below.")
    eta = job.eta_s
    c3.metric("ETA", format_duration(eta) if status == "running" and eta is not None
              else "measuring…" if status == "running" else "—",
              help="From the speed measured after the first few (warm-up) steps.")
    rate = progress.get("images_per_s")
    c4.metric("Images/s", f"{rate:,.0f}" if rate else "—")
    if where.step:
        st.caption(f"Epoch {where.completed + 1} at step {where.step} / {where.steps}"
                   + (" when it stopped" if status != "running" else ""))
    if status == "queued":
        place = queue_position(job.id)
        if place:
            st.info(queue_words(place))
    st.progress(job.fraction or 0.0,
                text=f"{(job.fraction or 0):.0%}" + (
                    f" — loss {progress['loss']:.4f}" if progress.get("loss") else ""))
    if job.cancel_requested and status == "running":
        st.info("Cancel requested: the job stops at its next step and saves a checkpoint.")
    if status == "failed":
        st.error(f"Failed ({job.reason or 'error'}): {job.message or ''}")
    elif status == "interrupted":
        st.warning(f"Interrupted: {job.message or 'the worker stopped'}. "
                   "Resume continues from the last checkpoint.")
    result = job.result or {}
    held = result.get("held_out")
    if held:
        st.success(f"Held-out ({held['split']}) accuracy: {held['accuracy']:.2%}, "
                   f"loss {held['loss']:.4f}")
        if held["split"] != "test":
            st.caption("The dataset has no test split, so this is the validation split, which "
                       "also chose the best epoch: an optimistic figure. For an unbiased one, "
                       "create the dataset with a Test % (Datasets → Options).")
    if status == "running":  # the devices it runs on, live
        units = device_units(job.assigned_device)
        gpus = [int(u.split(":")[1]) for u in units if u.startswith("cuda:")]
        gpu_panel.render(only=gpus or None)
    _charts(job.metrics, job.config["dataset"], progress.get("curve") or [])
    with st.expander("Log", expanded=status in ("running", "failed")):
        st.code(jobs.read_log(job_id, tail=30) or "(empty)", language=None)
    _redraw_on_change(job_id, status)


def _redraw_on_change(job_id: str, status: str | None) -> None:
    """When the status changed (it ended, or another tab resumed, cancelled or deleted it),
    draw the whole page again so the buttons, the picker and the polling rate match it."""
    if st.session_state.get(RENDERED) != (job_id, status):
        st.rerun()


def _watch(job_id: str) -> None:
    """A job at rest, watched whichever tab is open: it draws nothing and reads the status
    alone (the Training tab used to redraw its charts every 3 s, and the other tabs never
    noticed a resume from elsewhere)."""
    try:
        status = jobs.get_job(job_id, metrics=False, events=False,
                              viewer=session.current_user()).status
    except (jobs.JobError, PermissionError):
        status = None
    _redraw_on_change(job_id, status)


def _charts(metrics: list[dict[str, Any]], dataset: str, steps: list[list[float]]) -> None:
    if not metrics and not steps:
        st.caption("The loss curve appears after the first steps.")
        return
    if not metrics:
        charts.draw(st, charts.loss_curves, metrics, steps)
        st.caption("Accuracy and the other charts appear after the first epoch.")
        return
    c1, c2 = st.columns(2)
    charts.draw(c1, charts.loss_curves, metrics, steps)
    acc = {"val_accuracy": "top-1"}
    if any(m.get("val_top5") is not None for m in metrics):
        acc["val_top5"] = "top-5"
    charts.draw(c2, charts.metric_curves, metrics, acc, "Validation accuracy", "accuracy")
    c1, c2 = st.columns(2)
    charts.draw(c1, charts.metric_curves, metrics, {"lr": "learning rate"}, "Learning rate",
                "rate")
    charts.draw(c2, charts.metric_curves, metrics, {"images_per_s": "images/s"}, "Throughput",
                "images/s")
    if any(m.get("val_per_class_accuracy") for m in metrics):
        charts.draw(st, charts.per_class_accuracy, metrics, _classes(dataset))


def _classes(dataset: str) -> list[str]:
    """Class names for the per-class chart (indexes when the dataset is gone)."""
    try:
        return list(open_dataset(dataset).classes)
    except DatasetError:
        return []


def _actions(job: jobs.LiveJob) -> None:
    user = session.current_user()
    mine = job.owner in (None, user)
    teacher = roles.is_instructor(user)  # may cancel or delete any job (engine/access)
    stop_help = None if mine or teacher else (
        f"Sign in as {job.owner} to do this" if not user
        else f"Only the job's owner ({job.owner}) or an instructor can do this")
    owner_only = None if mine else (
        f"Sign in as {job.owner} to do this" if not user
        else f"Only the job's owner ({job.owner}) can do this")
    if not user and not mine:
        st.caption(f"Signed out: sign in as **{job.owner}** (sidebar) to cancel, resume or "
                   "delete this job.")
    cols = st.columns(5)
    status = job.status
    if cols[0].button("Cancel", disabled=status not in jobs.ACTIVE or not (mine or teacher),
                      help=stop_help):
        _do(lambda: jobs.cancel(job.id, user=user))
    if cols[1].button("Resume", disabled=not job.resumable or not mine, help=owner_only):
        _do(lambda: jobs.resume(job.id, user=user))
    if cols[2].button("Clone"):
        nav.go("new_model", clone=job.id)
    confirm = st.session_state.get("job_confirm_delete") == job.id
    if cols[3].button("Confirm delete" if confirm else "Delete", type="primary" if confirm
                      else "secondary", disabled=status in jobs.ACTIVE or not (mine or teacher),
                      help=stop_help):
        if not confirm:
            st.session_state["job_confirm_delete"] = job.id
            st.rerun()
        if _do(lambda: jobs.delete(job.id, user=user), rerun=False):
            st.session_state.pop("job_confirm_delete", None)
            nav.go("home")
    best = jobs.job_dir(job.id) / "best.pt"
    if best.exists():  # read when clicked, not on every rerun
        cols[4].download_button("Download checkpoint", best.read_bytes,
                                file_name=f"{job.id}-best.pt",
                                mime="application/octet-stream", on_click="ignore")


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


def _entry(job: jobs.LiveJob) -> None:
    """A student's leaderboard entry (issue 19): shown once the class has a hidden board, on
    the student's own finished training jobs. The board itself is never shown here."""
    from engine.hosting import classroom

    user = session.current_user()
    if not user or job.owner != user or job.status != "done" \
            or not classroom.hidden_board_exists():
        return
    if classroom.entry_of(user) == job.id:
        st.success("This job is your entry for the class leaderboard.")
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="center")
    c1.caption("Class leaderboard: your entry is the job you choose (without a choice, your "
               "best finished job counts). The instructor scores it on a hidden board.")
    if c2.button("Make this my entry", key="job_entry"):
        try:
            classroom.choose_entry(user, job.id)
        except (ValueError, PermissionError) as e:
            st.error(str(e))
            return
        st.rerun()


def _lineage(job: jobs.LiveJob) -> None:
    """Where the weights started (issue 17): job -> job -> job."""
    if job.config.get("init_from"):
        from engine.jobs.lineage import lineage_line

        st.caption(f"Started from: {lineage_line(job.id)}")


def render() -> None:
    job_id = _choose_job()
    if not job_id:
        return
    try:
        job = jobs.get_job(job_id, metrics=False, events=False, viewer=session.current_user())
    except (jobs.JobError, PermissionError) as e:
        st.error(str(e))
        return
    cfg = job.config
    job_id = job.id
    widgets.scheduler_banner()
    st.title(job.name or job.id)
    if job.kind != "train":
        st.caption(f"{job_id} · {cfg.get('task')} task · owner {job.owner or '—'} · "
                   f"{job.status}" + (f": {job.message}" if job.message else ""))
        st.json(cfg)
        return
    st.caption(f"{job_id} · owner {job.owner or '—'} · dataset "
               f"{widgets.dataset_label(cfg['dataset'])} · "
               f"{widgets.network_label(cfg['network'])} · {cfg['solver']} lr {cfg['lr']:g} · "
               f"{cfg['epochs']} epochs · device {job.assigned_device or cfg['device']}")
    _lineage(job)
    _actions(job)
    _entry(job)
    active = job.status in jobs.ACTIVE
    st.session_state[RENDERED] = (job_id, job.status)
    if active:
        cpu_budget.fragment(_live, run_every=ACTIVE_POLL_S)(job_id)
    # Evaluation needs a best checkpoint and a job at rest; task jobs (evaluations, exports)
    # have no checkpoint of their own.
    elif not (jobs.job_dir(job_id) / "best.pt").exists():
        _live(job_id)
    else:
        # Lazy tabs, only the open one drawn: the evaluation was 55% of the page's server CPU
        # when it was drawn below the charts on every view (bench/server_cost.py).
        # Bound to the URL: a reload, a shared link or a second tab opens the same tab.
        training, evaluated, many = st.tabs(TABS, key=nav.JOB_TAB, bind="query-params")
        if training.open:
            with training:
                _live(job_id)
        if evaluated.open:
            with evaluated:
                evaluation.render(job)
        if many.open:
            with many:
                evaluation.classify_many(job)
    if not active:
        cpu_budget.fragment(_watch, run_every=AT_REST_POLL_S)(job_id)
    with st.expander("Configuration"):
        st.json(cfg)
