"""A finished training job with a stored evaluation, made in the foreground (no scheduler), for
the dashboard and CLI evaluation tests.

Each kind of job is trained once per test session, in a template workspace copied from the
session's digits workspace, and then copied (files and rows) into each test's workspace: the
tests get their own job to change or delete, without training LeNet again for every test.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path

from engine import jobs
from engine.evaluation.evaluate import evaluate_job
from engine.state import store
from engine.state.runs import new_job_id
from engine.training import TrainConfig, train

_TEMPLATES: dict[tuple, tuple[Path, str]] = {}
_JOB_TABLES = {"jobs": "id", "metrics": "job", "events": "job", "evaluations": "job"}


def trained_job(home: Path) -> str:
    """A done LeNet job (2 epochs, seed 0) trained into `home` here, rather than by a worker
    (no scheduler to start), with no metrics rows: for tests that deploy or classify it."""
    job_id = jobs.submit({"dataset": "digits", "network": "lenet", "epochs": 2}, owner="alice",
                         name="lenet-2", home=home, start_scheduler=False)
    train(TrainConfig(dataset="digits", network="lenet", epochs=2, seed=0),
          jobs.job_dir(job_id, home), home=home)
    with closing(store.connect(home)) as conn, store.transaction(conn):
        store.update_job(conn, job_id, status="done")
    return job_id


def finished_job(home: Path, dataset: str = "digits", epochs: int = 2, evaluate: bool = True,
                 owner: str = "alice") -> str:
    """A done LeNet job on `dataset` (which `home` must hold, as copied from the session's
    digits workspace), its metrics, and with evaluate the stored evaluation of best.pt."""
    key = (dataset, epochs, evaluate, owner)
    if key not in _TEMPLATES:
        _TEMPLATES[key] = _train_template(home, dataset, epochs, evaluate, owner)
    template, template_id = _TEMPLATES[key]
    job_id = new_job_id()  # each copy its own job, so a test may ask for several
    shutil.copytree(jobs.job_dir(template_id, template), jobs.job_dir(job_id, home))
    with closing(store.connect(home)) as conn:
        conn.execute("ATTACH DATABASE ? AS template", (str(store.db_path(template)),))
        with store.transaction(conn):
            _copy_rows(conn, template_id, job_id, template, home)
    return job_id


def _copy_rows(conn: sqlite3.Connection, old: str, new: str, template: Path, home: Path
               ) -> None:
    """The template job's rows under the new id, its paths pointing into `home`."""
    for table, column in _JOB_TABLES.items():
        names = [r[1] for r in conn.execute(f"PRAGMA main.table_info({table})")
                 if r[1] != "id" or table == "jobs"]
        values = ", ".join("?" if n == column else n for n in names)
        conn.execute(f"INSERT INTO main.{table} ({', '.join(names)}) SELECT {values} FROM "
                     f"template.{table} WHERE {column} = ?", (new, old))
        for name in _text_columns(conn, table):
            conn.execute(f"UPDATE main.{table} SET {name} = replace(replace({name}, ?, ?), ?, ?) "
                         f"WHERE {column} = ?", (str(template), str(home), old, new, new))


def _text_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA main.table_info({table})")
            if r[2].upper() == "TEXT"]


def _train_template(home: Path, dataset: str, epochs: int, evaluate: bool, owner: str
                    ) -> tuple[Path, str]:
    template = Path(tempfile.mkdtemp(prefix="finished-job-")) / "workspace"
    shutil.copytree(home, template, ignore=shutil.ignore_patterns("jobs", "scheduler*"))
    cfg = TrainConfig(dataset=dataset, network="lenet", epochs=epochs, lr=0.05, seed=0)
    with closing(store.connect(template)) as conn, store.transaction(conn):
        conn.execute("DELETE FROM jobs")  # only the template job: copies carry its rows alone
    job_id = jobs.submit(cfg, owner=owner, name="finished", home=template,
                         start_scheduler=False)
    _train_to_done(template, job_id, cfg)
    if evaluate:
        evaluate_job(job_id, "best.pt", home=template)
    return template, job_id


def finish_queued(home: Path, job_id: str, epochs: int = 1) -> None:
    """Trains a queued job in the foreground (with `epochs`, on the CPU) and marks it done with
    its metrics and result, as its worker would."""
    cfg = jobs.get_job(job_id, home, metrics=False, events=False)["config"]
    _train_to_done(home, job_id, TrainConfig.from_dict({**cfg, "epochs": epochs,
                                                         "device": "cpu"}))


def _train_to_done(home: Path, job_id: str, cfg: TrainConfig) -> None:
    """Train the job's config into its folder and record it done with its metrics and result,
    as its worker would."""
    result = train(cfg, jobs.job_dir(job_id, home), home=home)
    with closing(store.connect(home)) as conn, store.transaction(conn):
        for m in result.history:
            store.put_metrics(conn, job_id, m)
        store.update_job(conn, job_id, status="done", finished=time.time(),
                         result=result.to_dict())
