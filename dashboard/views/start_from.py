"""New model's "Start from" section (issue 17): random weights, an earlier job's checkpoint,
an uploaded weights file or torchvision's download; freezing and the pretrained learning rate.
`?start=JOB&dataset=DS` (the "retrain" button) pre-fills a start from JOB's best weights."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import session
from dashboard.views.train_forms import number
from engine import jobs
from engine.state.runs import has_checkpoint
from engine.training.config import ConfigError

CHOICES = ("Random weights", "An earlier job", "A weights file", "torchvision's weights")


def retrain_prefill() -> dict[str, Any] | None:
    """The config of ?start=JOB, set to start from its best weights on ?dataset=, or None."""
    start = st.query_params.get("start")
    if not start:
        return None
    try:
        base = jobs.get_job(start, metrics=False, events=False,
                            viewer=session.current_user())
    except jobs.JobError as e:
        st.error(f"Cannot start from job {start}: {e}")
        return None
    config = {**base.config, "init_from": f"{base.id}:best", "name": ""}
    if st.query_params.get("dataset"):
        config["dataset"] = st.query_params["dataset"]
    st.info(f"Retraining from job {base.id} ({base.name}): its best weights are the "
            "start.")
    return config


def _job_choice(current: str) -> str:
    ended = jobs.list_jobs(status=jobs.ENDED, viewer=session.current_user())
    finished = [j for j in ended if has_checkpoint(j.id)]
    if not finished:
        st.caption("No finished or cancelled job with a checkpoint yet.")
        return ""
    ids = [j.id for j in finished]
    labels = {j.id: f"{j.name} [{j.id}]" for j in finished}
    job_now, _, which_now = current.partition(":")
    c1, c2 = st.columns([3, 1])
    job = c1.selectbox("Job", ids, index=ids.index(job_now) if job_now in ids else 0,
                       format_func=labels.get, key="nm_start_job")
    kept = ["best", "last"] + [p.stem.removeprefix("epoch-").lstrip("0") for p in
                               sorted((jobs.job_dir(job) / "checkpoints").glob("epoch-*.pt"))]
    which = c2.selectbox("Checkpoint", kept,
                         index=kept.index(which_now) if which_now in kept else 0,
                         key="nm_start_ckpt", help="a number is the checkpoint of that epoch")
    return f"{job}:{which}"


def _file_choice() -> str:
    from engine.training.weights_files import keep_weights_file, kept_weights_files

    upload = st.file_uploader("Weights file (.pt/.pth: a state dict such as torchvision's "
                              "resnet18-*.pth, or a checkpoint of this product)",
                              type=["pt", "pth"], key="nm_start_upload")
    if upload is not None:
        try:
            kept = keep_weights_file(upload.name, upload.getvalue())
            st.session_state["nm_start_file"] = str(kept)
        except ConfigError as e:
            st.error(str(e))
    files = [str(p) for p in kept_weights_files()]
    if not files:
        return ""
    chosen = st.session_state.get("nm_start_file")
    return st.selectbox("Kept weights files", files,
                        index=files.index(chosen) if chosen in files else 0,
                        format_func=lambda p: p.rsplit("/", 1)[-1], key="nm_start_kept")


def section(base: dict[str, Any]) -> dict[str, Any]:
    """The start settings: init_from, freeze and pretrained_lr_factor for the config."""
    current = str(base.get("init_from") or "")
    if not current:
        index = 0
    elif current.startswith("torchvision"):
        index = 3
    elif "/" in current:
        index = 2
    else:
        index = 1
    kind = st.radio("Start from", CHOICES, index=index, horizontal=True, key="nm_start_kind")
    if kind == CHOICES[0]:
        return {"init_from": "", "freeze": "", "pretrained_lr_factor": 1.0}
    if kind == CHOICES[1]:
        init_from = _job_choice(current)
    elif kind == CHOICES[2]:
        init_from = _file_choice()
    else:
        st.caption("Downloads torchvision's pretrained weights (needs internet) for networks "
                   "built on torchvision, such as resnet18; offline, give a weights file.")
        init_from = "torchvision"
    c1, c2 = st.columns(2)
    freeze_options = ["none", "all-but-head"] + [str(n) for n in range(1, 21)]
    freeze_now = str(base.get("freeze") or "none")
    freeze = c1.selectbox("Freeze", freeze_options,
                          index=freeze_options.index(freeze_now)
                          if freeze_now in freeze_options else 0,
                          key="nm_freeze", help="a number: the first N layers with weights")
    factor = number(c2, "Learning rate of pretrained layers (fraction of the rate)",
                    "pretrained_lr_factor", base.get("pretrained_lr_factor") or 1.0,
                    format="%.3f", key="nm_pre_lr")
    return {"init_from": init_from, "freeze": "" if freeze == "none" else freeze,
            "pretrained_lr_factor": float(factor)}
