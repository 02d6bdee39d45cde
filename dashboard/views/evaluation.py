"""The Evaluation and Classify-many sections of a trained job's page.

Evaluation shows the latest stored evaluation of a checkpoint (metrics, per-class table,
confusion heatmap whose cells pick a (true, predicted) pair - above 100 classes a table of the
most frequent confusions whose rows do -, the images of a pair, and lazy tabs of confident
mistakes, top N per class, PR / ROC curves and the embedding, only the open one drawn) and runs
new ones as task jobs. Classify many uploads a zip or images, runs them as a
task job and shows its results table, accuracy and confusion matrix.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, cpu_budget, gallery, session, tables, task_progress
from dashboard.views import calibration
from dashboard.views import curves as curves_view
from dashboard.views import embedding as embedding_view
from engine import jobs
from engine.datasets import DatasetError, open_dataset
from engine.evaluation.evaluate import Evaluation, load_evaluation, most_confused, pair_count
from engine.inference.classify_many import IMAGE_SUFFIXES
from engine.jobs import tasks

SPLIT_AUTO = "test (validation when none)"
SECTIONS = ["Confident mistakes", "Top per class", "PR / ROC curves", "Embedding"]
SECTIONS_KEY = "ev_section"
LABEL_MODES = {"none": "No labels", "folders": "Folder per class (inside the zip)",
               "csv": "CSV file (file,label)"}


# --- evaluation ----------------------------------------------------------------------------------


def _eval_label(e: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.get("created") or 0))
    epoch = f", epoch {e['epoch']}" if e.get("epoch") is not None else ""
    return f"{e['checkpoint']} on {e['split']} ({e['images']} images{epoch}) — {when}"


def _evaluate_form(job: jobs.LiveJob, dataset: Any, busy: bool) -> None:
    run_dir = jobs.job_dir(job.id)
    checkpoints = sorted((p.name for p in run_dir.glob("*.pt")),
                         key=lambda n: (n != "best.pt", n != "last.pt", n))
    if not checkpoints:
        st.caption("No checkpoint to evaluate yet.")
        return
    splits = [SPLIT_AUTO] + ([s for s in ("test", "val", "train") if len(dataset.split(s))]
                             if dataset is not None else [])
    with st.form("ev_form", enter_to_submit=False, border=False):
        c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
        ckpt = c1.selectbox("Checkpoint", checkpoints, key="ev_ckpt")
        split = c2.selectbox("Split", splits, key="ev_split")
        go = c3.form_submit_button("Evaluate", disabled=dataset is None or busy,
                                   help="One evaluation at a time" if busy else None)
    if go:
        params = {"checkpoint": ckpt} | ({} if split == SPLIT_AUTO else {"split": split})
        task_progress.submit("engine.evaluate", job.id, params, "evaluation",
                             name=f"evaluate {job.name or job.id} {ckpt}")


def _selected_cell(event: Any, classes: list[str]) -> tuple[int, int] | None:
    """The (true, predicted) indexes of a clicked heatmap cell, if any."""
    point = charts.selected_point(event, "cell")
    if point is None:
        return None
    try:
        return classes.index(str(point["true"])), classes.index(str(point["predicted"]))
    except (KeyError, ValueError, TypeError):
        return None


def _selected_row(event: Any, summary: dict[str, Any]) -> tuple[int, int] | None:
    """The (true, predicted) indexes of a picked row of the top-confusions table, if any."""
    try:
        [row] = event.selection["rows"]
        t, p, _ = summary["top_confusions"][row]
        return int(t), int(p)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return None


def confusions_table(summary: dict[str, Any]) -> pd.DataFrame:
    """The most frequent confusions (many classes: no matrix), with each one's share of its
    true class."""
    classes, per_class = summary["classes"], summary["per_class"]
    rows = [{"true": classes[t], "predicted": classes[p], "images": n,
             "share of true class": n / per_class[t]["support"] if per_class[t]["support"]
             else 0.0} for t, p, n in summary.get("top_confusions", [])]
    return pd.DataFrame(rows, columns=["true", "predicted", "images", "share of true class"])


def _confusions(where: Any, summary: dict[str, Any], key: str, selectable: bool,
                title: str = "Confusion matrix (colour: % of true class)") -> Any:
    """The heatmap (up to 100 classes) or the top-confusions table; its selection event."""
    classes = summary["classes"]
    if summary.get("confusion") is not None:
        args = (summary["confusion"], classes, title, selectable)
        if not selectable:
            return charts.draw(where, charts.confusion_heatmap, *args, width="content")
        return charts.draw(where, charts.confusion_heatmap, *args, on_select="rerun", key=key,
                           width="content")
    where.markdown(f"**Most frequent confusions** ({len(classes)} classes: too many for a "
                   "matrix)" + (" · pick a row to see its images" if selectable else ""))
    table = confusions_table(summary)
    config = {"share of true class": st.column_config.NumberColumn(format="%.1f%%")}
    table["share of true class"] *= 100
    if not selectable:
        return where.dataframe(table, hide_index=True, column_config=config)
    return where.dataframe(table, hide_index=True, column_config=config, key=key,
                           on_select="rerun", selection_mode="single-row")


def _metrics(summary: dict[str, Any]) -> None:
    cols = st.columns(5)
    cols[0].metric("Top-1 accuracy", f"{summary['accuracy']:.2%}")
    cols[1].metric("Top-5 accuracy", f"{summary['top5']:.2%}" if "top5" in summary else "—")
    cols[2].metric("Loss", f"{summary['loss']:.4f}")
    cols[3].metric("Macro F1", f"{summary['macro_f1']:.3f}")
    cols[4].metric("Images", f"{summary['images']:,}")


def per_class_table(per_class: list[dict[str, Any]]) -> pd.DataFrame:
    """The evaluation summary's per-class rows, by class."""
    df = pd.DataFrame(per_class, columns=["class", "precision", "recall", "f1", "support"])
    return df.set_index("class")


def _pair(ev: Evaluation | None, dataset: Any, summary: dict[str, Any], event: Any,
          shown_for: tuple) -> None:
    classes = summary["classes"]
    clicked = _selected_cell(event, classes) or _selected_row(event, summary)
    # Another evaluation (another job, checkpoint or split) opens on its most frequent
    # confusion, not on the pair picked for the previous one (often empty here).
    if st.session_state.get("ev_for") != shown_for:
        st.session_state["ev_for"] = shown_for
        st.session_state.pop("ev_true", None)
    # A new click moves the pickers; otherwise they keep what the user chose.
    if clicked is not None and clicked != st.session_state.get("ev_clicked"):
        st.session_state["ev_true"], st.session_state["ev_pred"] = clicked
    st.session_state["ev_clicked"] = clicked
    if "ev_true" not in st.session_state or st.session_state["ev_true"] >= len(classes) \
            or st.session_state.get("ev_pred", 0) >= len(classes):
        st.session_state["ev_true"], st.session_state["ev_pred"] = most_confused(summary)
    c1, c2 = st.columns(2)
    options = list(range(len(classes)))
    t = c1.selectbox("True class", options, format_func=lambda i: classes[i], key="ev_true")
    p = c2.selectbox("Predicted as", options, format_func=lambda i: classes[i], key="ev_pred")
    count = pair_count(summary, t, p)
    if count is None and ev is not None:  # a rare pair of many classes: count the predictions
        count = ev.count(t, p)
    if count is None:
        st.caption(f"{classes[t]} predicted as {classes[p]}: not among the "
                   f"{len(summary.get('top_confusions', []))} most frequent confusions kept "
                   "(the stored predictions are gone)")
        return
    st.caption(f"{count} image(s) of {classes[t]} predicted as {classes[p]}"
               + (" (most confident first)" if count else ""))
    if ev is None or dataset is None or not count:
        return
    indexes = ev.pair(t, p, limit=48)
    gallery.show(st, dataset, indexes, [f"#{i}" for i in indexes])


def _mistakes(ev: Evaluation, dataset: Any, classes: list[str]) -> None:
    n = st.slider("Mistakes shown", 4, 64, 16, step=4, key="ev_mistakes_n")
    wrong = ev.confident_mistakes(limit=n)
    if not wrong:
        st.success("No mistakes on this split.")
        return
    gallery.show(st, dataset, [m["index"] for m in wrong],
                 [f"{classes[m['true']]} → {classes[m['predicted']]} {m['confidence']:.0%}"
                  for m in wrong])


def _top_per_class(ev: Evaluation, dataset: Any, classes: list[str]) -> None:
    c1, c2 = st.columns([1, 3])
    n = c1.number_input("N per class", 1, 50, 6, key="ev_topn")
    shown = c2.multiselect("Classes", list(range(len(classes))),
                           default=list(range(min(10, len(classes)))),
                           format_func=lambda i: classes[i], key="ev_top_classes")
    top = ev.top_per_class(int(n))
    for c in shown:
        rows = top[c]
        st.markdown(f"**{classes[c]}**")
        gallery.show(st, dataset, [r["index"] for r in rows],
                     [f"{r['probability']:.0%}" + ("" if r["true"] == c
                                                    else f" (is {classes[r['true']]})")
                      for r in rows])


def _add_to_training_data(job: jobs.LiveJob, ev: Evaluation, dataset: Any) -> None:
    """Issue 17: confident mistakes into a new dataset version, then retrain."""
    from dashboard.views import dataset_versions

    n = st.session_state.get("ev_mistakes_n", 16)
    dataset_versions.add_mistakes(job, ev.confident_mistakes(limit=n), dataset)


def render(job: jobs.LiveJob) -> None:
    """The Job page's Evaluation tab."""
    job_id = job.id
    task_progress.show(job_id, "engine.evaluate", "Evaluation", key="ev_cancel")
    tasks = jobs.list_tasks(job_id, "engine.evaluate")
    evals = jobs.job_evaluations(job_id)
    dataset = None
    try:
        dataset = open_dataset(job.config["dataset"])
    except DatasetError:
        st.warning("The job's dataset was deleted: metrics only, no images.")
    _evaluate_form(job, dataset, busy=bool(tasks) and tasks[0].status in jobs.ACTIVE)
    if not evals:
        if not tasks:
            st.info("No evaluation yet. Training jobs evaluate their best checkpoint when they "
                    "end; press Evaluate to run one now.")
        return
    summary = evals[0]
    if len(evals) > 1:
        labels = {i: _eval_label(e) for i, e in enumerate(evals)}
        summary = evals[st.selectbox("Evaluation", list(labels), format_func=labels.get,
                                     key="ev_pick")]
    else:
        st.caption(_eval_label(summary))
    classes = summary["classes"]
    _metrics(summary)
    left, right = st.columns([3, 2])
    event = _confusions(left, summary, "ev_cm", selectable=True)
    tables.draw(right, per_class_table, summary["per_class"], width="stretch",
                column_config={k: st.column_config.NumberColumn(format="%.3f")
                               for k in ("precision", "recall", "f1")})
    calibration.render(job, summary)  # reliability diagram, ECE, Calibrate
    ev = load_evaluation(jobs.job_dir(job_id), summary["checkpoint"], summary["split"])
    if ev is None:
        st.caption("The stored predictions of this evaluation are gone: no image galleries.")
    st.subheader("Images of a pair", help="Click a cell of the matrix (a row of the table), "
                 "or choose the pair.")
    _pair(ev, dataset, summary, event, (job_id, summary["checkpoint"], summary["split"],
                                         summary.get("created")))
    if ev is None or dataset is None:
        return
    # A fragment: opening a section (or clicking inside one) redraws the sections alone, not
    # the Job page and the evaluation above them.
    cpu_budget.fragment(_sections)(job, summary, ev, dataset, classes)


def _sections(job: jobs.LiveJob, summary: dict[str, Any], ev: Evaluation, dataset: Any,
              classes: list[str]) -> None:
    """The evaluation's heavy sections. Lazy tabs: only the open one is drawn (its galleries
    and charts are most of the page's server CPU, bench/server_cost.py);
    st.session_state[SECTIONS_KEY] names the open one."""
    job_id = job.id
    mistakes, top, pr_roc, embedding = st.tabs(SECTIONS, key=SECTIONS_KEY, on_change="rerun")
    if mistakes.open:
        with mistakes:
            st.subheader("Most confident mistakes")
            _mistakes(ev, dataset, classes)
            _add_to_training_data(job, ev, dataset)
    if top.open:
        with top:
            st.subheader("Top images per class",
                         help="For each class, the images the model is most sure belong to it.")
            _top_per_class(ev, dataset, classes)
    if pr_roc.open:
        with pr_roc:  # PR / ROC, threshold images
            curves_view.render(ev, dataset, (job_id, summary["checkpoint"], summary["split"],
                                             summary.get("created")))
    if embedding.open:
        with embedding:  # penultimate features of held-out images and probes
            embedding_view.render(job, summary)


# --- classify many -------------------------------------------------------------------------------


def _classify_form(job: jobs.LiveJob) -> None:
    files = st.file_uploader("A zip, or images", type=["zip", *(s[1:] for s in IMAGE_SUFFIXES)],
                             accept_multiple_files=True, key="cm_files")
    c1, c2, c3 = st.columns(3)
    labels = c1.radio("Labels", list(LABEL_MODES), format_func=LABEL_MODES.get, key="cm_labels")
    csv_file = None
    if labels == "csv":
        csv_file = c1.file_uploader("Labels CSV", type=["csv"], key="cm_csv")
    digit = c2.checkbox("Frame like MNIST digits", key="cm_digit",
                        help="For photos or drawings of digits on a page")
    polarity = c3.selectbox("Polarity", ["auto", "invert", "as-is"], key="cm_polarity")
    ready = bool(files) and (labels != "csv" or csv_file is not None)
    if st.button("Classify", key="cm_submit", disabled=not ready, type="primary"):
        tasks.submit_classify(job.id, [(f.name, f.getvalue()) for f in files], labels,
                                  csv_file.getvalue() if csv_file else None, digit, polarity,
                                  session.current_user())
        time.sleep(0.2)  # let the scheduler pick it up, so the redraw shows it running
        st.rerun()


def results_frame(csv_path: str | Path, limit: int | None = None) -> pd.DataFrame:
    """The results.csv of a classify task: file, label, predicted, confidence, correct, top-k."""
    df = pd.read_csv(csv_path, nrows=limit, dtype=str, keep_default_na=False)
    if "confidence" in df:
        df["confidence"] = pd.to_numeric(df["confidence"], errors="coerce")
    return df


def _classify_results(task: jobs.LiveJob) -> None:
    result = task.result or {}
    csv_path = Path(result.get("csv") or jobs.job_dir(task.id) / "results.csv")
    if not csv_path.exists():
        st.warning("The results file of this run is gone.")
        return
    labelled = result.get("labelled")
    cols = st.columns(4)
    cols[0].metric("Images", f"{result.get('images', 0):,}")
    cols[1].metric("Accuracy", f"{labelled['accuracy']:.2%}" if labelled else "—")
    cols[2].metric("Unreadable", result.get("errors", 0))
    cols[3].metric("Unlabelled", result.get("unlabelled", 0) + result.get("unknown_label", 0))
    st.download_button("Download results CSV", csv_path.read_bytes,  # read on click
                       file_name=f"{task.id}-results.csv", mime="text/csv",
                       key="cm_download", on_click="ignore")
    shown = 2000  # the table shows the first rows; the CSV has them all
    df = results_frame(csv_path, limit=shown)
    if "correct" in df and labelled:
        df["correct"] = df["correct"].map({"true": "✓", "false": "✗"}).fillna("")
    st.dataframe(df, width="stretch", hide_index=True,
                 column_config={"confidence": st.column_config.NumberColumn(format="%.3f")})
    if result.get("images", 0) > shown:
        st.caption(f"First {shown:,} of {result['images']:,} rows; the CSV has them all.")
    if labelled:
        _confusions(st, labelled, "cm_confusions", selectable=False,
                    title="Confusion matrix of the uploads")


def classify_many(job: jobs.LiveJob) -> None:
    """The Job page's Classify many tab."""
    st.caption("Classify a zip or a batch of images with this job's best checkpoint; with "
               "labels, see accuracy and a confusion matrix. Runs as a job, so thousands of "
               "images are fine.")
    _classify_form(job)
    latest = task_progress.show(job.id, "engine.classify", "Classification",
                                key="cm_cancel")
    if latest is not None and latest.status == "done":
        _classify_results(latest)
