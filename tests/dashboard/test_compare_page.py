"""AppTest of Compare: the settings that differ in a table of their own, and every setting, the
differing ones highlighted, in a lazy expander drawn when opened; jobs still queued or running
(a sweep lands here when submitted) get no empty axes, and their curves fill in."""

from __future__ import annotations

import re
from contextlib import closing

from dashboard.views.compare import HIGHLIGHT
from engine import jobs
from engine.state import store
from testkit.apptest import app, open_page
from testkit.finished_jobs import finished_job


def test_the_differing_settings_first_and_all_of_them_when_asked(jobs_home):
    ids = [finished_job(jobs_home, epochs=1, evaluate=False),
           finished_job(jobs_home, epochs=2, evaluate=False)]
    at = app()
    at.session_state["compare_ids"] = ids
    at = open_page(at, "compare")
    assert not at.exception, at.exception
    assert any(c.value == "1 setting(s) differ:" for c in at.caption)
    differing = at.dataframe[-1].value
    assert list(differing.index) == ["epochs"]
    assert differing.loc["epochs"].tolist() == ["1", "2"]
    [everything] = [e for e in at.expander if e.label.startswith("All ")]
    assert not everything.children  # closed: not built

    at.session_state["cmp_all_settings"] = True
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[-1]
    assert len(table.value) > 10 and "lr" in table.value.index
    styles = table.proto.arrow_data.styler.styles  # the differing row alone is highlighted
    assert HIGHLIGHT in styles
    row = list(table.value.index).index("epochs")
    assert set(re.findall(r"_row(\d+)_col(\d+)", styles)) == {(str(row), "0"), (str(row), "1")}


def _epoch(home, job_id: str, status: str, val_accuracy: float) -> None:
    """What a worker records: the job's status and one epoch's metrics."""
    with closing(store.connect(home)) as conn, store.transaction(conn):
        store.update_job(conn, job_id, status=status)
        store.put_metrics(conn, job_id, {"epoch": 1, "train_loss": 0.9, "val_loss": 0.5,
                                         "val_accuracy": val_accuracy})


def test_a_sweep_just_submitted_has_no_empty_axes_and_its_curves_fill_in(jobs_home):
    ids = jobs.submit_sweep({"dataset": "digits", "network": "lenet", "epochs": 1},
                            lrs=[0.1, 0.01], owner="alice", name="sweep",
                            start_scheduler=False)
    at = app()
    at.session_state["compare_ids"] = ids
    at = open_page(at, "compare")
    assert not at.exception, at.exception
    assert not at.get("vega_lite_chart")  # axes at 0 read as an accuracy of 0
    assert any("No validation point yet" in i.value and "follows them" in i.value
               for i in at.info)
    assert at.dataframe[0].value["status"].tolist() == ["queued", "queued"]

    _epoch(jobs_home, ids[0], "running", 0.8)
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("vega_lite_chart")) == 2
    assert any(c.value.startswith("No validation point yet for sweep lr=0.01 batch=")
               for c in at.caption)
    table = at.dataframe[0].value
    assert table["status"].tolist() == ["running", "queued"]
    assert table["last val accuracy"].tolist()[0] == 0.8

    _epoch(jobs_home, ids[1], "done", 0.7)
    at.run()
    assert not any(c.value.startswith("No validation point yet") for c in at.caption)
    assert at.dataframe[0].value["last val accuracy"].tolist() == [0.8, 0.7]
