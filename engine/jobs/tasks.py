"""Engine work that runs as a job besides training: evaluation and classify-many.

A task is `fn(params, progress, home) -> result dict`. A job's task name says which package
holds it ("engine.evaluate" -> engine.jobs.tasks.TASKS, "trt.build" -> trt.tasks.TASKS), so the
worker can run deployment tasks without engine importing trt.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from engine.jobs.paths import job_dir

Progress = Callable[[float, str], None]
# The only places task code may come from: a task name's package -> the module with its TASKS.
TASK_MODULES = {"engine": "engine.jobs.tasks", "trt": "trt.tasks"}


def evaluate(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """Evaluate a trained job's checkpoint (default best) on its test (or validation) split."""
    from engine.evaluation.evaluate import evaluate_job

    summary = evaluate_job(params["job"], params.get("checkpoint"), params.get("split"),
                           home=home, device=params.get("device", "cpu"), progress=progress)
    return {k: summary[k] for k in ("split", "checkpoint", "images", "accuracy", "loss")
            if k in summary} | ({"top5": summary["top5"]} if "top5" in summary else {})


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


def create_dataset(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """Build a dataset (engine.datasets.build_job): decoding happens here, not in the
    dashboard."""
    from engine.datasets.build_job import run_build_task

    return run_build_task(params, progress, home=home)


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "engine.evaluate": evaluate, "engine.classify": classify, "engine.dataset": create_dataset}


def resolve(name: str) -> Callable[..., dict[str, Any]]:
    """The function of a task name, imported from its package's tasks module."""
    package = name.split(".", 1)[0]
    if package not in TASK_MODULES:
        raise ValueError(f"unknown task {name!r}")
    tasks = importlib.import_module(TASK_MODULES[package]).TASKS
    if name not in tasks:
        raise ValueError(f"unknown task {name!r}; {package} offers {', '.join(sorted(tasks))}")
    return tasks[name]
