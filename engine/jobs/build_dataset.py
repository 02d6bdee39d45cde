"""Creating a dataset in a worker process, as a task job ("engine.dataset"), so decoding a
large or hostile upload can never exhaust the dashboard's memory.

submit_dataset_build() checks everything that needs no pixels (name, options, source
arguments) at once and queues the job; build_dataset_in_worker() does that and waits for the
job, relaying its progress, and returns the Dataset or raises DatasetError with the worker's
one-line reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from engine.datasets.build import check_name
from engine.datasets.catalog import Dataset, open_dataset
from engine.datasets.errors import DatasetError, DownloadUnavailable
from engine.datasets.options import DatasetOptions
from engine.datasets.sources import check_args
from engine.jobs.api import get_job, submit_task
from engine.jobs.status import ENDED

TASK = "engine.dataset"
DEVICE = "host"  # runs beside training: needs no CPU training slot and no GPU

Progress = Callable[[float, str], None]


def submit_dataset_build(name: str, source: str, source_args: dict[str, Any] | None = None,
                         options: DatasetOptions | dict[str, Any] | None = None, *,
                         owner: str | None = None, home: str | os.PathLike | None = None
                         ) -> str:
    """Queue the build of a dataset as a task job; returns the job id. Bad names, options or
    source arguments are refused here, in one line, before anything is queued."""

    opts = DatasetOptions.coerce(options)
    name = check_name(name)
    args = check_args(source, source_args)
    return submit_task(TASK, {"name": name, "source": source, "source_args": args,
                              "options": opts.to_dict(), "owner": owner},
                       owner=owner, name=f"create dataset {name}", device=DEVICE, home=home)


def build_dataset_in_worker(name: str, source: str,
                            source_args: dict[str, Any] | None = None,
                            options: DatasetOptions | dict[str, Any] | None = None, *,
                            owner: str | None = None,
                            home: str | os.PathLike | None = None,
                            progress: Progress | None = None, poll_s: float = 0.25,
                            timeout_s: float | None = None) -> Dataset:
    """create_dataset(), but in a worker process: same arguments, same result, same
    DatasetError messages; this process only waits and relays progress."""

    job_id = submit_dataset_build(name, source, source_args, options, owner=owner, home=home)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        job = get_job(job_id, home, metrics=False, events=False)
        if progress is not None and job.progress:
            p = job.progress
            progress(float(p.get("fraction") or 0.0), str(p.get("message") or ""))
        if job.status == "done":
            return open_dataset(job.result["dataset"], home=home)
        if job.status in ENDED:
            raise _build_error(source, job.message or f"the dataset build {job.status}")
        if deadline is not None and time.monotonic() > deadline:
            raise DatasetError(f"the dataset build (job {job_id}) is still {job.status} "
                               f"after {timeout_s:.0f} s; it goes on in the background")
        time.sleep(poll_s)


def _build_error(source: str, message: str) -> DatasetError:
    """The worker's one-line reason, as the error create_dataset() would have raised here: a
    failed download stays a DownloadUnavailable, so a front end can say it in its own words."""
    from engine.datasets.sources.downloads import DOWNLOADS

    if source in DOWNLOADS and message.startswith("could not download"):
        return DownloadUnavailable(message, DOWNLOADS[source].title)
    return DatasetError(message)


def run_build_task(params: dict[str, Any], progress: Progress, home=None) -> dict[str, Any]:
    """The task: create_dataset in this (worker) process."""
    from engine.datasets.build import create_dataset

    ds = create_dataset(params["name"], params["source"], params.get("source_args"),
                        params.get("options"), owner=params.get("owner"), home=home,
                        progress=progress)
    return {"dataset": ds.id, "name": ds.name, "images": len(ds), "classes": ds.num_classes}
