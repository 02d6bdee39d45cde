"""Issue 13 item 10: an evaluation opens on its most frequent confusion, even after the user
picked a pair (here an empty one) on another job's evaluation in the same session."""

from __future__ import annotations

import numpy as np

from engine import jobs
from testkit.apptest import app, open_job
from testkit.finished_jobs import finished_job


def most_confused(job_id: str) -> tuple[int, int, np.ndarray]:
    [stored] = jobs.job_evaluations(job_id)
    cm = np.asarray(stored["confusion"])
    off = cm - np.diag(np.diag(cm))
    t, p = np.unravel_index(off.argmax(), off.shape)
    return int(t), int(p), cm


def test_each_evaluation_opens_on_its_most_frequent_confusion(jobs_home):
    first = finished_job(jobs_home, epochs=1)
    second = finished_job(jobs_home, epochs=2)
    at = open_job(app(), first)
    assert not at.exception, at.exception
    _, _, cm = most_confused(first)
    empty = next((t, p) for t in range(10) for p in range(10) if t != p and cm[t, p] == 0)
    at.selectbox(key="ev_true").set_value(empty[0])
    at.selectbox(key="ev_pred").set_value(empty[1]).run()
    assert any(c.value.startswith("0 image(s)") for c in at.caption)

    at = open_job(at, second)  # same session, another job's evaluation
    assert not at.exception, at.exception
    t, p, cm2 = most_confused(second)
    assert (at.selectbox(key="ev_true").value, at.selectbox(key="ev_pred").value) == (t, p)
    assert cm2[t, p] > 0
    assert any(c.value.startswith(f"{cm2[t, p]} image(s)") for c in at.caption)
