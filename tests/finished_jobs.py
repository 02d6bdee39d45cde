"""A finished training job with a stored evaluation, made in the foreground (no scheduler), for
the dashboard and CLI evaluation tests."""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path

from engine import jobs, store
from engine.evaluation.evaluate import evaluate_job
from engine.training import TrainConfig, train


def finished_job(home: Path, dataset: str = "digits", epochs: int = 2, evaluate: bool = True,
                 owner: str = "alice") -> str:
    """Trains LeNet on `dataset` into a queued job's directory, marks it done with its metrics,
    and (with evaluate) stores the evaluation of best.pt on the test split."""
    cfg = TrainConfig(dataset=dataset, network="lenet", epochs=epochs, lr=0.05, seed=0)
    job_id = jobs.submit(cfg, owner=owner, name="finished", home=home, start_scheduler=False)
    result = train(cfg, jobs.job_dir(job_id, home), home=home)
    with closing(store.connect(home)) as conn, store.transaction(conn):
        for m in result.history:
            store.put_metrics(conn, job_id, m)
        store.update_job(conn, job_id, status="done", finished=time.time(),
                         result=result.to_dict())
    if evaluate:
        evaluate_job(job_id, "best.pt", home=home)
    return job_id


def finish_queued(home: Path, job_id: str, epochs: int = 1) -> None:
    """Trains a queued job in the foreground (with `epochs`, on the CPU) and marks it done with
    its metrics and result, as its worker would."""
    cfg = jobs.get_job(job_id, home, metrics=False, events=False)["config"]
    cfg = TrainConfig.from_dict({**cfg, "epochs": epochs, "device": "cpu"})
    result = train(cfg, jobs.job_dir(job_id, home), home=home)
    with closing(store.connect(home)) as conn, store.transaction(conn):
        for m in result.history:
            store.put_metrics(conn, job_id, m)
        store.update_job(conn, job_id, status="done", finished=time.time(),
                         result=result.to_dict())
