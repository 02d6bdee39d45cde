"""AppTest of the job page's Evaluation and Classify-many tabs, on a LeNet trained in the test
on the offline digits dataset, with its evaluation stored the way the evaluation task does."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from dashboard.views import evaluation
from engine import jobs
from engine.datasets import open_dataset
from engine.evaluation.evaluate import load_evaluation
from engine.jobs import tasks
from testkit.apptest import app, open_job, switch_tab
from testkit.finished_jobs import finished_job


def job_page(job_id: str, user: str = "alice") -> AppTest:
    return open_job(app(user), job_id)


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.ndim == 3 else image).save(buf, "PNG")
    return buf.getvalue()


def test_evaluation_tab(jobs_home):
    job_id = finished_job(jobs_home)
    [stored] = jobs.job_evaluations(job_id)
    at = job_page(job_id)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Top-1 accuracy"] == f"{stored['accuracy']:.2%}"
    assert metrics["Top-5 accuracy"] == f"{stored['top5']:.2%}"
    assert metrics["Images"] == f"{stored['images']:,}"
    assert metrics["Macro F1"] == f"{stored['macro_f1']:.3f}"
    # The confusion heatmap and the reliability diagram (views/calibration.py); the training
    # curves are the Training tab's, not drawn while this one is open.
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2
    assert not any("Precision-recall" in c.proto.spec for c in charts)  # a closed, lazy tab
    heatmap = [c for c in charts if "Confusion matrix" in c.proto.spec]
    assert len(heatmap) == 1 and '"cell"' in heatmap[0].proto.spec  # the click selection
    assert not at.get("progress")  # the training's progress bar is the Training tab's
    per_class = next(d.value for d in at.dataframe if "recall" in d.value.columns)
    assert list(per_class.index) == stored["classes"]
    assert per_class["support"].sum() == stored["images"]

    # The pair pickers start on the most confused pair and show its images.
    cm = np.asarray(stored["confusion"])
    off = cm - np.diag(np.diag(cm))
    t, p = np.unravel_index(off.argmax(), off.shape)
    assert at.selectbox(key="ev_true").value == t and at.selectbox(key="ev_pred").value == p
    ev = load_evaluation(jobs.job_dir(job_id))
    pair = ev.pair(int(t), int(p), limit=48)
    mistakes = ev.confident_mistakes(16)
    classes = len(stored["classes"])
    assert pair and mistakes  # two epochs of LeNet still confuses some digits
    # One gallery per st.image call: the pair, then the open tab's: the mistakes (the first
    # tab); the other tabs draw nothing until opened.
    galleries = at.image
    assert len(galleries) == 2
    assert galleries[0].captions == [f"#{i}" for i in pair]
    assert galleries[1].captions[0] == (f"{mistakes[0]['true']} → {mistakes[0]['predicted']} "
                                        f"{mistakes[0]['confidence']:.0%}")
    assert len(galleries[1].captions) == len(mistakes)
    at.session_state[evaluation.SECTIONS_KEY] = "Top per class"  # then one per class (top 6)
    at.run()
    galleries = at.image
    assert len(galleries) == 1 + classes
    assert all(len(g.captions) == 6 for g in galleries[1:1 + classes])
    at.session_state[evaluation.SECTIONS_KEY] = "PR / ROC curves"
    at.run()
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3  # ... and PR/ROC
    at.session_state[evaluation.SECTIONS_KEY] = "Top per class"
    at.run()

    # Choosing a diagonal pair shows its correctly classified images.
    at.selectbox(key="ev_true").set_value(3)
    at.selectbox(key="ev_pred").set_value(3).run()
    assert any(f"{cm[3, 3]} image(s) of 3 predicted as 3" in c.value for c in at.caption)

    # Top N per class follows N.
    at.number_input(key="ev_topn").set_value(2).run()
    assert not at.exception
    top = ev.top_per_class(2)
    for c, gallery in enumerate(at.image[1:1 + classes]):
        assert [cap.split("%")[0] for cap in gallery.captions] == [
            f"{r['probability']:.0%}".rstrip("%") for r in top[c]]


def test_evaluation_tab_without_a_matrix_shows_the_top_confusions(jobs_home):
    """Above 100 classes an evaluation keeps the top confusions instead of the matrix: the
    page shows them as a table whose rows pick the pair (here a 10-class evaluation stored in
    that form)."""
    from types import SimpleNamespace

    from dashboard.views import evaluation as view
    from engine.evaluation.evaluate import top_confusions
    from engine.state import store

    job_id = finished_job(jobs_home)
    [stored] = jobs.job_evaluations(job_id)
    ev = load_evaluation(jobs.job_dir(job_id))
    sparse = {**stored, "confusion": None,
              "top_confusions": top_confusions(ev.labels, ev.predicted)}
    conn = store.connect(jobs_home)
    with store.transaction(conn):
        store.put_evaluation(conn, job_id, sparse)
    conn.close()
    at = job_page(job_id)
    assert not at.exception, at.exception
    assert not [c for c in at.get("vega_lite_chart") if "Confusion matrix" in c.proto.spec]
    table = next(d.value for d in at.dataframe if "share of true class" in d.value.columns)
    t, p, n = sparse["top_confusions"][0]
    classes = stored["classes"]
    assert (table.iloc[0]["true"], table.iloc[0]["predicted"], table.iloc[0]["images"]) == \
        (classes[t], classes[p], n)
    assert at.selectbox(key="ev_true").value == t and at.selectbox(key="ev_pred").value == p
    assert any(f"{n} image(s) of {classes[t]} predicted as {classes[p]}" in c.value
               for c in at.caption)
    assert at.image[0].captions == [f"#{i}" for i in ev.pair(t, p, limit=48)]
    # a picked row is that row's pair; nothing picked is no pair
    t1, p1, _ = sparse["top_confusions"][1]
    assert view._selected_row(SimpleNamespace(selection={"rows": [1]}), sparse) == (t1, p1)
    assert view._selected_row(SimpleNamespace(selection={"rows": []}), sparse) is None


def test_evaluate_button_queues_a_task(jobs_home):
    job_id = finished_job(jobs_home, evaluate=False)
    at = job_page(job_id)
    assert any("No evaluation yet" in i.value for i in at.info)
    at.selectbox(key="ev_split").set_value("val")
    at.button(key="FormSubmitter:ev_form-Evaluate").click().run()
    assert not at.exception, at.exception
    [task] = jobs.list_tasks(job_id, "engine.evaluate")
    assert task["config"]["params"] == {"checkpoint": "best.pt", "split": "val", "job": job_id}
    assert task["owner"] == "alice"
    done = jobs.wait(task["id"], timeout=240)
    assert done["status"] == "done", done.get("message")
    at = job_page(job_id)
    [stored] = jobs.job_evaluations(job_id)
    assert stored["split"] == "val"
    assert any(m.label == "Top-1 accuracy" and m.value == f"{stored['accuracy']:.2%}"
               for m in at.metric)


def test_queued_evaluation_shows_progress(jobs_home):
    job_id = finished_job(jobs_home, evaluate=False, epochs=1)
    jobs.submit_task("engine.evaluate", {"checkpoint": "best.pt"}, parent=job_id,
                     start_scheduler=False)  # no scheduler: it stays queued
    at = job_page(job_id)
    assert not at.exception, at.exception
    bars = [b.proto.text for b in at.get("progress")]
    assert len(bars) == 1 and bars[0].startswith("Evaluation queued")  # the task's alone
    assert at.button(key="FormSubmitter:ev_form-Evaluate").disabled
    assert not any("No evaluation yet" in i.value for i in at.info)


def test_classify_many_zip_with_folder_labels(jobs_home):
    job_id = finished_job(jobs_home, evaluate=False)
    ds = open_dataset("digits", home=jobs_home)
    test = ds.split("test")[:30]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in test:
            zf.writestr(f"{ds.classes[ds.labels[i]]}/img{i}.png", png(ds.images[i]))
        zf.writestr("notes.txt", "not an image")
    at = job_page(job_id)
    assert not at.get("file_uploader")  # the Classify many tab is drawn when opened
    switch_tab(at, "Classify many")
    at.file_uploader(key="cm_files").set_value([("digits.zip", buf.getvalue(),
                                                 "application/zip")])
    at.run()
    at.radio(key="cm_labels").set_value("folders")
    at.button(key="cm_submit").click().run()
    assert not at.exception, at.exception
    [task] = jobs.list_tasks(job_id, "engine.classify")
    params = task["config"]["params"]
    assert params["labels"] == "folders" and params["expected_images"] == 30
    assert Path(params["inputs"][0]).parent.parent == jobs.job_dir(job_id) / "uploads"
    done = jobs.wait(task["id"], timeout=240)
    assert done["status"] == "done", done.get("message")

    at = job_page(job_id)
    switch_tab(at, "Classify many")
    assert not at.exception, at.exception
    labelled = done["result"]["labelled"]
    assert any(m.label == "Accuracy" and m.value == f"{labelled['accuracy']:.2%}"
               for m in at.metric)
    table = next(d.value for d in at.dataframe if "predicted" in d.value.columns)
    assert len(table) == 30 and set(table["correct"]) <= {"✓", "✗"}
    assert (table["correct"] == "✓").mean() == labelled["accuracy"]
    assert any("Confusion matrix of the uploads" in c.proto.spec
               for c in at.get("vega_lite_chart"))
    assert [b.label for b in at.get("download_button")].count("Download results CSV") == 1


def test_save_uploads_keeps_names_inside(jobs_home):
    job_id = finished_job(jobs_home, evaluate=False, epochs=1)
    paths, csv_path, expected = tasks.save_uploads(
        job_id, [("../../evil.png", b"x"), ("a.png", b"y"), ("readme.txt", b"z")], b"a.png,1\n")
    root = jobs.job_dir(job_id) / "uploads"
    assert all(Path(p).resolve().is_relative_to(root) for p in paths + [csv_path])
    assert [Path(p).name for p in paths] == ["evil.png", "a.png", "readme.txt"]
    assert expected == 2


def test_confusion_frame_is_row_normalized():
    from dashboard import charts

    df = charts.confusion_frame([[3, 1], [0, 0]], ["a", "b"])
    assert df["count"].tolist() == [3, 1, 0, 0]
    assert df["share"].tolist() == [0.75, 0.25, 0.0, 0.0]  # an empty row stays 0, not NaN
    spec = charts.confusion_heatmap([[3, 1], [0, 0]], ["a", "b"], selectable=True).to_dict()
    assert [p["name"] for p in spec["params"]] == ["cell"]
