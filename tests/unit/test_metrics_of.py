"""Several jobs' metrics in one query (the Home page's table), equal to one query per job."""

from __future__ import annotations

from engine import jobs
from engine.state import store


def test_metrics_of_matches_one_query_per_job(home):
    with store.connect(home) as conn:
        for job_id in ("a", "b", "c"):
            store.insert_job(conn, {"id": job_id, "name": job_id, "status": "done",
                                    "device": "cpu", "config": {}, "created": 1.0,
                                    "queued": 1.0})
        for epoch in (2, 1):  # stored out of order: rows come back by epoch
            store.put_metrics(conn, "a", {"epoch": epoch, "train_loss": 1.0 / epoch})
        store.put_metrics(conn, "b", {"epoch": 1, "train_loss": 0.5})
    got = jobs.metrics_of(["a", "b", "c"], home=home)
    assert got == {j: jobs.job_metrics(j, home=home) for j in ("a", "b", "c")}
    assert [m["epoch"] for m in got["a"]] == [1, 2] and got["c"] == []
    assert jobs.metrics_of([], home=home) == {}
