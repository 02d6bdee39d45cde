"""Issue 13 item 4: cloning a job with a custom network twice keeps its spec (Streamlit drops
the editor's text when the user leaves the page; the second visit must fill it again)."""

from __future__ import annotations

from engine import jobs
from engine.networks import parse_spec
from testkit.apptest import app, errors, open_page
from tests.dashboard.test_names import wide_spec


def test_second_clone_keeps_the_custom_network(jobs_home):
    job_id = jobs.submit({"dataset": "digits", "epochs": 1, "network": wide_spec()},
                         owner="alice", name="wide", start_scheduler=False)
    at = open_page(app(), "new_model", clone=job_id)
    assert not at.exception and not errors(at)
    assert at.toggle(key="nm_custom").value
    assert parse_spec(at.text_area(key="nm_spec").value)["name"] == "lenet-75-100-relu"
    at.text_area(key="nm_spec").set_value(
        at.text_area(key="nm_spec").value.replace("out: 75", "out: 60")).run()
    # Away to the job page (the editor leaves the page), then Clone again.
    at = open_page(at, "job", id=job_id)
    assert not at.exception
    at.query_params.pop("id", None)
    at = open_page(at, "new_model", clone=job_id)
    assert not at.exception and not errors(at)
    assert "the spec is empty" not in " ".join(errors(at))
    spec = parse_spec(at.text_area(key="nm_spec").value)
    assert spec["name"] == "lenet-75-100-relu" and spec["layers"][0]["out"] == 75
    assert at.toggle(key="nm_custom").value


def test_clone_of_another_job_replaces_the_editor(jobs_home):
    wide = jobs.submit({"dataset": "digits", "epochs": 1, "network": wide_spec()},
                       owner="alice", name="wide", start_scheduler=False)
    other = wide_spec() | {"name": "other-net"}
    other_id = jobs.submit({"dataset": "digits", "epochs": 1, "network": other},
                           owner="alice", name="other", start_scheduler=False)
    at = open_page(app(), "new_model", clone=wide)
    assert parse_spec(at.text_area(key="nm_spec").value)["name"] == "lenet-75-100-relu"
    at = open_page(at, "new_model", clone=other_id)
    assert parse_spec(at.text_area(key="nm_spec").value)["name"] == "other-net"
