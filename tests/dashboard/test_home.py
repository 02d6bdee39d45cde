"""AppTest of the Home page through the real dashboard/app.py: the empty workspace's
"Start here", then datasets and jobs at a glance, the job filters and opening a job.

Jobs are queued with start_scheduler=False and given metrics and states by hand, so nothing
trains here."""

from __future__ import annotations

from contextlib import closing

from streamlit.testing.v1 import AppTest

from engine import jobs
from engine.datasets import create_dataset
from engine.state import store
from testkit.apptest import app


def jobs_table(at: AppTest):
    """The jobs table (the one with a status column; read-only tables carry no key)."""
    [table] = [d.value for d in at.dataframe if "status" in d.value.columns]
    return table


def finish(job_id: str, losses: list[float], accs: list[float]) -> None:
    """Record epochs and mark the job done, as a worker would."""
    with closing(store.connect()) as conn, store.transaction(conn):
        for epoch, (loss, acc) in enumerate(zip(losses, accs, strict=True), 1):
            store.put_metrics(conn, job_id, {"epoch": epoch, "train_loss": loss,
                                             "val_loss": loss, "val_accuracy": acc})
        store.update_job(conn, job_id, status="done")


def test_empty_workspace_says_start_here_then_lists_datasets(home):
    at = app()
    assert not at.exception
    assert any("Start here: create a dataset" in i.value for i in at.info)
    assert not at.dataframe
    at.button(key="home_start").click().run()
    assert at.title[0].value == "Datasets"  # the button opened the Datasets page

    create_dataset("digits", "digits-sample", owner="alice")
    at = app()
    assert not at.exception, at.exception
    assert not any("Start here" in i.value for i in at.info)
    table = at.dataframe[-1].value
    assert table["name"].tolist() == ["digits"]
    assert table.loc[0, "owner"] == "alice" and table.loc[0, "classes"] == 10
    assert table.loc[0, "images"] == 1797 and table.loc[0, "image size"] == "28×28×1"


def test_jobs_table_filters_and_opens_a_job(home):
    create_dataset("digits", "digits-sample", owner="alice")
    done = jobs.submit({"dataset": "digits", "epochs": 3}, owner="alice", name="lenet-done",
                       start_scheduler=False)
    finish(done, [1.2, 0.6, 0.3], [0.7, 0.9, 0.85])
    queued = jobs.submit({"dataset": "digits", "epochs": 2}, owner="bob", name="lenet-queued",
                         start_scheduler=False)

    at = app()
    assert not at.exception, at.exception
    table = jobs_table(at).set_index("name")
    assert set(table.index) == {"lenet-done", "lenet-queued"}
    row = table.loc["lenet-done"]
    assert row["status"] == "done" and row["owner"] == "alice" and row["network"] == "lenet"
    assert row["epochs"] == "3/3" and list(row["train loss"]) == [1.2, 0.6, 0.3]
    assert row["last val acc"] == 0.85 and row["best val acc"] == 0.9
    assert table.loc["lenet-queued", "status"] == "queued"
    assert len(table.loc["lenet-queued", "train loss"]) == 0

    at.multiselect(key="home_status").set_value(["queued"]).run()
    assert jobs_table(at)["name"].tolist() == ["lenet-queued"]
    at.multiselect(key="home_status").set_value([]).run()
    at.selectbox(key="home_owner").set_value("alice").run()
    assert jobs_table(at)["name"].tolist() == ["lenet-done"]
    at.multiselect(key="home_status").set_value(["failed"]).run()
    assert any("No jobs match" in i.value for i in at.info)

    at.multiselect(key="home_status").set_value([]).run()
    at.selectbox(key="home_owner").set_value(None).run()
    at.selectbox(key="home_job").set_value(queued).run()
    at.button(key="home_open_job").click().run()
    assert at.query_params["id"] == queued  # went to the job page for that job
    assert at.title[0].value != "DIGITS Studio"
