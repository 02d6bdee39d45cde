"""Engine work that runs as a job besides training: evaluation and classify-many.

A task is `fn(params, progress, home) -> result dict`, found by name through
engine.jobs.task_registry.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from engine.hosting.ownership import uploads_dir
from engine.inference.classify_many import IMAGE_SUFFIXES
from engine.jobs.api import submit_task
from engine.state.runs import job_dir, new_job_id

Progress = Callable[[float, str], None]


def evaluate(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """Evaluate a trained job's checkpoint (default best) on its test (or validation) split."""
    from engine.evaluation.evaluate import evaluate_job

    summary = evaluate_job(params["job"], params.get("checkpoint"), params.get("split"),
                           home=home, device=params.get("device", "cpu"), progress=progress)
    return {k: summary[k] for k in ("split", "checkpoint", "images", "accuracy", "loss")
            if k in summary} | ({"top5": summary["top5"]} if "top5" in summary else {}) \
        | ({"ece": summary["calibration"]["ece"]} if "calibration" in summary else {})


def calibrate(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """Temperature-scale a trained job's checkpoint (default best) on its validation split,
    then re-evaluate it (engine.evaluation.evaluate.calibrate_job)."""
    from engine.evaluation.evaluate import calibrate_job

    return calibrate_job(params["job"], params.get("checkpoint"), home=home,
                         device=params.get("device", "cpu"), progress=progress)


def classify(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """Classify uploaded images (zip, folders, files) with a trained job's checkpoint, writing
    results.csv into this task's own job directory."""
    from engine.inference.classify_many import classify_many

    out_csv = job_dir(params["task_job"], home) / "results.csv"
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = job_dir(params["job"], home) / (params.get("checkpoint") or "best.pt")
    expected = params.get("expected_images")
    result = classify_many(
        checkpoint, params["inputs"], labels=params.get("labels"), out_csv=out_csv,
        digit=bool(params.get("digit")), polarity=params.get("polarity", "auto"),
        progress=lambda n, m: progress(min(0.99, n / expected) if expected else 0.5, m))
    return {k: v for k, v in result.items() if k != "csv"} | {"csv": str(out_csv)}


# --- submitting classify-many: the uploads saved where the task reads them --------------


def _is_image(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def save_uploads(job_id: str, files: list[tuple[str, bytes]], labels_csv: bytes | None = None,
                 user: str | None = None) -> tuple[list[str], str | None, int]:
    """Writes uploaded files under the trained job's uploads/ (deleted with the job), or the
    user's own area when the job is someone else's; returns the input paths, the saved labels
    CSV (if any) and how many images they hold."""

    folder = uploads_dir(job_id, user) / new_job_id()
    folder.mkdir(parents=True)
    paths, expected = [], 0
    for i, (name, data) in enumerate(files):
        # Keep the base name (the CSV matches on it) but never let it climb out of folder.
        safe = Path(name).name or f"file{i}"
        path = folder / (f"{i:05d}-{safe}" if (folder / safe).exists() else safe)
        path.write_bytes(data)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                expected += sum(1 for n in zf.namelist() if _is_image(n))
        else:
            expected += _is_image(safe)
        paths.append(str(path))
    csv_path = None
    if labels_csv is not None:
        csv_path = folder / "labels.csv.txt"  # not an image nor in the inputs
        csv_path.write_bytes(labels_csv)
    return paths, (str(csv_path) if csv_path else None), expected


def submit_classify(job_id: str, files: list[tuple[str, bytes]], labels: str = "none",
                    labels_csv: bytes | None = None, digit: bool = False,
                    polarity: str = "auto", owner: str | None = None) -> str:
    """Saves the uploads and queues an engine.classify task job for them; returns its id.
    labels: "none", "folders" (each image's folder is its class) or "csv" (labels_csv)."""

    paths, csv_path, expected = save_uploads(job_id, files, labels_csv, owner)
    label_arg = {"none": None, "folders": "folders", "csv": csv_path}[labels]
    return submit_task(
        "engine.classify", {"inputs": paths, "labels": label_arg, "checkpoint": "best.pt",
                            "digit": digit, "polarity": polarity, "expected_images": expected},
        owner=owner, name=f"classify {expected} images", parent=job_id)


def create_dataset(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """Build a dataset (engine.jobs.build_dataset): decoding happens here, not in the
    dashboard."""
    from engine.jobs.build_dataset import run_build_task

    return run_build_task(params, progress, home=home)


def study(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """Drive a hyperparameter study (engine.jobs.study_driver) until it ends."""
    from engine.jobs.study_driver import drive

    return drive(params, progress, home=home)


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "engine.evaluate": evaluate, "engine.calibrate": calibrate, "engine.classify": classify,
    "engine.dataset": create_dataset, "engine.study": study}
