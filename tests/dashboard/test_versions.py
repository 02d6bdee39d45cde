"""AppTest of dataset versions (issue 17): "add to training data" on a confident mistake, then
"retrain" from the job on the new version; extending a dataset with a probe board's images."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine import jobs
from engine.datasets import open_dataset
from engine.datasets.versions import version_info
from engine.evaluation import probes
from engine.evaluation.evaluate import load_evaluation
from testkit.apptest import app, errors, open_job, open_page
from testkit.finished_jobs import finished_job


def datasets_view() -> None:
    from dashboard.views import datasets

    datasets.render()


def view(**query: str) -> AppTest:
    at = AppTest.from_function(datasets_view, default_timeout=60)
    at.session_state["user"] = "alice"
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def test_add_a_mistake_to_training_data_then_retrain(jobs_home):
    job_id = finished_job(jobs_home)
    mistake = load_evaluation(jobs.job_dir(job_id)).confident_mistakes(16)[0]
    index, fixed = mistake["index"], (mistake["true"] + 1) % 10
    at = open_job(app(), job_id)
    assert not at.exception and not errors(at)
    at.toggle(key="dv_mistakes_open").set_value(True).run()
    at.checkbox(key=f"dv_add_{index}").check().run()
    at.selectbox(key=f"dv_fix_{index}").set_value(str(fixed))
    at.button(key="dv_mistakes").click().run()
    assert not at.exception and not errors(at), errors(at)
    parent = open_dataset("digits")
    made = open_dataset("digits v2")
    assert version_info(made.manifest)["parent"] == parent.id
    assert made.labels[index] == fixed and parent.labels[index] == mistake["true"]
    assert index in made.split("train") and index not in made.split("test")
    assert any("New dataset version" in s.value for s in at.success)

    at.button(key="dv_retrain").click().run()
    assert at.query_params["start"] == job_id and at.query_params["dataset"] == made.id
    at = open_page(at, "new_model")
    assert not at.exception and not errors(at)
    assert at.selectbox(key="nm_dataset").value == "digits v2"
    assert at.radio(key="nm_start_kind").value == "An earlier job"
    assert at.selectbox(key="nm_start_job").value == job_id


def test_extend_with_a_probe_board(home, digits_home):
    import shutil

    shutil.rmtree(home)
    shutil.copytree(digits_home, home)
    board = probes.create_board("my sevens", "alice", home=home)
    ink = np.full((40, 40), 255, np.uint8)
    ink[8:12, 8:32] = 0
    ink[12:34, 26:30] = 0
    buf = io.BytesIO()
    Image.fromarray(ink).save(buf, "PNG")
    for _ in range(2):
        probes.add_probe(board, buf.getvalue(), "7", user="alice", home=home)
    at = view(id=open_dataset("digits", home=home).id)
    assert not at.exception and not errors(at)
    at.toggle(key="dv_open").set_value(True).run()
    at.selectbox(key="dv_board").set_value(board).run()
    at.text_input(key="dv_note").set_value("two sevens")
    at.button(key="dv_make").click().run()
    assert not at.exception and not errors(at), errors(at)
    made = open_dataset("digits v2", home=home)
    assert version_info(made.manifest)["added"]["by_source"] == {"probe": 2}
    assert any("Made 'digits v2'" in s.value for s in at.success)
    versions = next(d.value for d in at.dataframe if "added" in d.value.columns)
    assert versions["name"].tolist() == ["digits", "digits v2"]
    assert versions["added"].tolist()[1] == "+2 images (2 probe)"
