"""AppTest of the Evaluation tab's PR / ROC curves with their threshold galleries, and of its
embedding view, on a LeNet trained on the offline digits with a stored evaluation."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.views import evaluation
from engine import jobs
from engine.evaluation import curves, probes
from engine.evaluation.evaluate import load_evaluation
from testkit.apptest import app, open_job
from testkit.digit_images import digit_photo
from testkit.finished_jobs import finished_job


def job_page(job_id: str, user: str = "alice", section: str = "PR / ROC curves") -> AppTest:
    """The job's page with the Evaluation tab's `section` open."""
    at = app(user)
    at.session_state[evaluation.SECTIONS_KEY] = section
    return open_job(at, job_id)


def curve_chart(at: AppTest):
    [chart] = [c for c in at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")
               if "Precision-recall" in c.proto.spec]
    return chart


def gallery(at: AppTest, what: str):
    """The st.image gallery under the markdown line starting with `what`."""
    heads = [m.value for m in at.markdown]
    assert any(h.startswith(f"**{what}") for h in heads), heads
    return heads


def test_curves_and_threshold_galleries(jobs_home):
    job_id = finished_job(jobs_home)
    ev = load_evaluation(jobs.job_dir(job_id))
    every = curves.evaluation_curves(ev)
    classes = ev.summary["classes"]
    at = job_page(job_id)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    text = json.dumps(json.loads(curve_chart(at).proto.spec), ensure_ascii=False)
    assert "ROC (one class vs the rest)" in text and '"point"' in text  # the click selection
    for k in every:  # AP and ROC AUC of every class in the legend
        assert f"{k.name}  AP {k.average_precision:.3f} · AUC {k.roc_auc:.3f}" in text
    table = next(d.value for d in at.dataframe if "ROC AUC" in d.value.columns)
    assert list(table.index) == classes
    assert table["ROC AUC"].tolist() == pytest.approx([k.roc_auc for k in every])
    assert table["average precision"].tolist() == pytest.approx(
        [k.average_precision for k in every])

    # The pickers start on the class of lowest AP at 0.5; the galleries are its mistakes there.
    worst = min(every, key=lambda k: k.average_precision).index
    assert at.selectbox(key="cv_class").value == worst
    assert at.slider(key="cv_threshold").value == 0.5
    for c, t in ((worst, 0.5), (3, 0.05), (8, 0.95)):
        at.selectbox(key="cv_class").set_value(c)
        at.slider(key="cv_threshold").set_value(t).run()
        assert not at.exception, at.exception
        want = curves.evaluation_threshold_images(ev, c, t)
        heads = gallery(at, "False positives")
        assert f"**False positives (taken for {classes[c]}, most confident first): " \
               f"{want.false_positive_count}**" in " ".join(heads)
        assert any(f"({classes[c]} missed, most clearly first): {want.false_negative_count}"
                   in h for h in heads)
        assert any(f"precision {want.precision:.3f}, recall {want.recall:.3f}" in cap.value
                   for cap in at.caption)
        captions = [g.captions for g in at.image]
        fp = [f"is {classes[r['true']]} · {r['probability']:.0%}" for r in want.false_positives]
        fn = [f"{r['probability']:.0%}" for r in want.false_negatives]
        assert (fp in captions) == bool(fp) and (fn in captions) == bool(fn)
    assert want.false_positive_count + want.false_negative_count > 0  # something to show

    # A clicked curve point is a (class, threshold) pick; the end point without one is not.
    from dashboard.views import curves as view

    event = SimpleNamespace(selection={"point": [{"class": "7", "threshold": 0.25}]})
    assert view._clicked(event, classes) == (classes.index("7"), 0.25)
    assert view._clicked(SimpleNamespace(selection={"point": [{"class": "7",
                                                               "threshold": None}]}),
                         classes) is None
    assert view._clicked(SimpleNamespace(selection={"point": []}), classes) is None


def test_embedding_view_with_a_probe_board(jobs_home):
    job_id = finished_job(jobs_home)
    board = probes.create_board("photos", "alice", home=jobs_home)
    probes.add_probes(board, [(digit_photo(d), str(d), f"photo-{d}.png") for d in (1, 4, 7)],
                      polarity="as-is", user="alice", digit=False, home=jobs_home)
    at = job_page(job_id, section="Embedding")
    assert not at.exception, at.exception
    assert not [c for c in at.get("vega_lite_chart") if "Penultimate" in c.proto.spec]
    at.toggle(key="emb_on").set_value(True).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="emb_board").value == board  # the user's board, first
    [chart] = [c for c in at.get("vega_lite_chart") if "Penultimate" in c.proto.spec]
    spec = json.loads(chart.proto.spec)
    assert "Penultimate features (500 wide), PCA fitted on the test images" in json.dumps(spec)
    table = next(d.value for d in at.dataframe if "farther than" in d.value.columns)
    assert table["probe"].tolist()[0].startswith("probe #") and len(table) == 3
    assert table["true"].tolist() == ["1", "4", "7"]
    # photos shown to the network as they are, unframed: off the digits' clusters
    assert (table["farther than"] > 90).all(), table
    assert any("3 of 3 probe(s) lie farther" in c.value for c in at.caption)
    # fewer held-out images: the caption follows
    at.selectbox(key="emb_limit").set_value(200).run()
    assert any(c.value.startswith("200 test images and 3 probe(s)") for c in at.caption)
    at.selectbox(key="emb_board").set_value("(no probe board)").run()
    assert not at.exception, at.exception
    assert not [d for d in at.dataframe if "farther than" in d.value.columns]
