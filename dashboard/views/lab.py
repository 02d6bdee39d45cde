"""Lab: the DLI lab "Image Classification with DIGITS" as a guided path. Four experiments, each
one click away with its settings pre-filled (and editable), marked done when its job ends; a
lab probe board of the user's own images; the comparison table and a chart of the board score
per experiment, filled in as the jobs finish. The logic lives in engine/lab/guide.py."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts, cpu_budget, nav, session
from dashboard.views.probe_upload import bulk_add
from dashboard.views.probes import draw_comparison
from engine.datasets import DatasetError
from engine.evaluation import probes
from engine.jobs import ACTIVE, JobError
from engine.lab import guide as lab
from engine.networks import zoo_names
from engine.training import ConfigError

SOURCES = {"offline": "Offline sample (no download)", "idx": "IDX files (e.g. MNIST)"}
IDX_LABELS = {"train_images": "Training images", "train_labels": "Training labels",
              "test_images": "Test images (optional)", "test_labels": "Test labels (optional)"}
BADGES = {"to do": "⚪ to do", "queued": "🕓 queued", "running": "⏳ running", "done": "✅ done",
          "failed": "❌ failed", "cancelled": "⛔ cancelled", "interrupted": "⚠️ interrupted"}
DIGITS = [str(d) for d in range(10)]


# --- data -----------------------------------------------------------------------------------


def _source(user: str) -> lab.LabSource | None:
    st.subheader("Data")
    kind = st.radio("Images to train on", list(SOURCES), format_func=SOURCES.get,
                    horizontal=True, key="lab_source")
    if kind == "offline":
        return lab.offline_source()
    saved = lab.idx_source(user)
    with st.form("lab_idx_form"):
        cols = st.columns(2)
        files = {arg: cols[i % 2].file_uploader(label, key=f"lab_idx_{arg}")
                 for i, (arg, label) in enumerate(IDX_LABELS.items())}
        if st.form_submit_button("Use these files"):
            try:
                saved = lab.save_idx_files(user, {a: f.getvalue() for a, f in files.items()
                                                  if f is not None})
                st.success("Saved: every step makes its dataset from these files.")
            except (ValueError, OSError) as e:
                st.error(str(e))
    if saved is None:
        st.info("Upload the IDX files (MNIST ships them as .gz) to run the steps on them.")
    return saved


# --- the steps ------------------------------------------------------------------------------


def _settings(step: lab.LabStep, user: str, source: lab.LabSource) -> lab.StepForm:
    """The step's form, pre-filled; every field can be changed before running the step.

    The expander is lazy (closed, its 7 widgets x 4 steps are not built: 54 elements a view,
    not 118; the server's CPU per view did not measurably change, bench/server_cost.py), and
    the last edits, kept in the session, are what Run uses. Streamlit drops the state of
    widgets it does not draw, hence the copy."""
    k = f"lab_{step.key}_{source.slug}"
    kept = st.session_state.get(f"{k}_form") or lab.step_form(step.key, user, source)
    box = st.expander("Settings (pre-filled; change anything)", key=f"{k}_open",
                      on_change="rerun")
    if not box.open:
        return kept
    opts, train = dict(kept.dataset_options), dict(kept.train)
    with box:
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Dataset name", kept.dataset_name, key=f"{k}_ds")
        per_class = c2.number_input("Max images per class (0 = all)", 0, None,
                                    int(opts.get("max_per_class") or 0), key=f"{k}_max")
        opts["add_inverted"] = c3.checkbox("Add inverted copies", bool(opts["add_inverted"]),
                                           key=f"{k}_inv")
        opts["max_per_class"] = int(per_class) or None
        c1, c2, c3, c4 = st.columns(4)
        names = zoo_names()
        train["network"] = c1.selectbox("Network", names, index=names.index(train["network"]),
                                        key=f"{k}_net")
        train["epochs"] = int(c2.number_input("Epochs", 1, 1000, int(train["epochs"]),
                                              key=f"{k}_epochs"))
        train["lr"] = float(c3.number_input("Learning rate", 1e-6, 10.0, float(train["lr"]),
                                            format="%.4f", key=f"{k}_lr"))
        train["batch_size"] = int(c4.number_input("Batch size", 1, 8192,
                                                  int(train["batch_size"]), key=f"{k}_bs"))
    form = lab.StepForm(name.strip(), opts, train)
    st.session_state[f"{k}_form"] = form
    return form


def _summary(form: lab.StepForm) -> str:
    t = form.train
    epochs = f"{t['epochs']} epoch" + ("s" if t["epochs"] != 1 else "")
    return (f"Runs {t['network']} for {epochs} (batch {t['batch_size']}, "
            f"learning rate {t['lr']:g}) on {form.dataset_name or 'an unnamed dataset'}.")


def _status(state: lab.StepState) -> str:
    badge = BADGES.get(state.status, state.status)
    job = state.job
    if job and state.status == "running" and job.fraction is not None:
        badge += f" {job.fraction:.0%}"
    if job and state.status == "done":
        acc = (job.result or {}).get("held_out") or {}
        if acc.get("accuracy") is not None:
            badge += f" · held-out accuracy {acc['accuracy']:.1%}"
    return badge


def _step(state: lab.StepState, user: str, source: lab.LabSource | None) -> None:
    step = state.step
    with st.container(border=True):
        head, status = st.columns([3, 2])
        head.markdown(f"**Step {step.number}: {step.title}**")
        status.markdown(_status(state))
        st.caption(step.lesson)
        if state.job:
            st.page_link(nav.page("job"), label=f"Job {state.job.id}",
                         query_params={"id": state.job.id})
            if state.status == "failed" and state.job.message:
                st.error(state.job.message)
        if source is None:
            return
        form = _settings(step, user, source)
        st.caption(_summary(form))  # what Run will use, as the server has it
        busy = state.status in ACTIVE
        label = f"Run step {step.number}" if state.job is None else f"Run step {step.number} again"
        if st.button(label, key=f"lab_run_{step.key}", disabled=busy,
                     type="primary" if state.job is None else "secondary"):
            try:
                with st.spinner("Preparing the dataset and queueing the job…"):
                    job_id = lab.run_step(step.key, user, source, form)
            except (DatasetError, ConfigError, JobError, ValueError, PermissionError) as e:
                st.error(f"Step {step.number} did not start: {e}")
                return
            st.session_state["lab_flash"] = f"Step {step.number} queued as job {job_id}."
            st.rerun()


# --- the board and the comparison -----------------------------------------------------------


def _board(user: str) -> None:
    st.subheader("Your test images")
    st.caption("Photos or drawings of digits on paper, the lab's \"real-world\" images. Name "
               "files like 7_photo.jpg (or use a zip with one folder per digit) and the labels "
               "fill in by themselves. They are scored as taken (polarity as-is): a network "
               "that never saw dark ink on light paper should struggle, until step 3.")
    board_id = lab.lab_board(user)
    bulk_add(board_id, user, "lab_bulk", classes=DIGITS, polarity=lab.BOARD_POLARITY,
             help_polarity="as-is shows the lesson of the inverted dataset; auto inverts "
                           "dark-on-light images for every model.")
    items = probes.list_probes(board_id, user)
    if items:
        st.image([p["image"] for p in items], width=64,
                 caption=[f"{p['label']}" for p in items])
        st.page_link(nav.page("probes"), label="Edit the board on Probe boards")


def score_chart(rows: list[dict[str, Any]]) -> alt.Chart:
    df = pd.DataFrame(rows, columns=["experiment", "step", "correct", "images", "score"])
    return (alt.Chart(df, title="Board score per experiment").mark_bar()
            .encode(x=alt.X("experiment:N", sort=None, title=None,
                            axis=alt.Axis(labelAngle=0)),
                    y=alt.Y("score:Q", title="images right", axis=alt.Axis(format="%"),
                            scale=alt.Scale(domain=[0, 1])),
                    tooltip=["experiment", "correct", "images",
                             alt.Tooltip("score:Q", format=".0%")])
            .properties(height=260))


def _comparison(user: str, comparison: lab.Comparison) -> None:
    st.subheader("Comparison")
    pending = [s for s in comparison.steps if not s.done]
    if not comparison.images:
        st.info("Add a few of your own images above: each finished step scores them.")
        return
    if comparison.score is None:
        st.info("The table fills in as the steps' jobs finish.")
        return
    board_id = lab.lab_board(user, create=False)
    images = {p["id"]: p["image"] for p in probes.list_probes(board_id, user)}
    draw_comparison(comparison.score, images, "lab-comparison.csv", "lab_csv")
    if pending:
        st.caption("Still to come: " + ", ".join(lab.step_column(s.step) for s in pending))
    charts.draw(st, score_chart, comparison.chart_rows())


def _entry(user: str) -> None:
    """The class leaderboard (issue 19): once the class has a hidden board, a student picks
    one of their finished experiments as their entry. The board itself never shows here."""
    from engine.hosting import classroom

    if not classroom.hidden_board_exists():
        return
    done = [s for s in lab.lab_state(user) if s.done]
    if not done:
        return
    st.subheader("Class leaderboard")
    entry = classroom.entry_of(user)
    ids = [s.job.id for s in done]
    names = {s.job.id: lab.step_column(s.step) for s in done}
    st.caption("Your instructor scores your entry on a hidden board of images"
               + (f"; your entry now: {names.get(entry, entry)}." if entry else
                  "; without a choice, your best finished job counts."))
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    chosen = c1.selectbox("Experiment", ids, index=ids.index(entry) if entry in ids else 0,
                          format_func=names.get, key="lab_entry_pick")
    if c2.button("Make it my entry", key="lab_entry", disabled=chosen == entry):
        try:
            classroom.choose_entry(user, chosen)
        except (ValueError, PermissionError) as e:
            st.error(str(e))
            return
        st.rerun()


# --- the page -------------------------------------------------------------------------------


def _live(user: str, source: lab.LabSource | None) -> None:
    states = lab.lab_state(user)
    active = any(s.status in ACTIVE for s in states)
    was_active = st.session_state.get("lab_was_active", False)
    st.session_state["lab_was_active"] = active
    if was_active and not active:  # the last job just ended: stop polling, redraw all
        st.rerun()
    done = sum(s.done for s in states)
    st.progress(done / len(states), text=f"{done} of {len(states)} experiments done")
    st.subheader("Experiments")
    for state in states:
        _step(state, user, source)
    try:
        comparison = lab.compare(user)
    except (FileNotFoundError, KeyError, ValueError) as e:
        st.error(f"Could not score the board: {e}")
        return
    _comparison(user, comparison)


def render() -> None:
    st.title("Lab: image classification with DIGITS")
    st.caption("A network that scores 99% on MNIST can still fail on your own photos. Run the "
               "four experiments, add a few photos of digits, and compare.")
    user = session.require_user("run the lab")
    if not user:
        return
    if flash := st.session_state.pop("lab_flash", None):
        st.success(flash)
    source = _source(user)
    _board(user)
    active = any(s.status in ACTIVE for s in lab.lab_state(user))
    cpu_budget.fragment(_live, run_every=2.0 if active else None)(user, source)
    _entry(user)
