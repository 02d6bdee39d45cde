"""The DLI lab "Image Classification with DIGITS" as a guided path: its four experiments as
steps with ready-made (editable) settings, which job ran each step for a user, the lab's probe
board of the user's own images, and the comparison of the experiments on that board.

    source = offline_source()
    form = step_form("small", "alice", source)         # pre-filled, editable
    job = run_step("small", "alice", source, form)      # dataset made if needed, job queued
    for s in lab_state("alice"): print(s.step.title, s.status)
    table = compare("alice")                            # "label : confidence" per step

The dashboard's Lab page only draws what this module returns.
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import jobs
from engine.datasets import DatasetError, DatasetOptions, create_dataset, open_dataset
from engine.evaluation import probes
from engine.jobs.build_dataset import build_dataset_in_worker
from engine.jobs.status import ENDED
from engine.state import store
from engine.state.workspace import studio_home
from engine.training import TrainConfig

Home = str | os.PathLike | None
BOARD_NAME = "Lab"
# What the lab's probe board uses: the photos as taken. "auto" would invert dark-on-light
# photos for every model, hiding the lesson of step 3 (the network must learn both polarities).
BOARD_POLARITY = "as-is"
IDX_ARGS = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class LabStep:
    key: str
    number: int
    title: str
    lesson: str
    data: str  # which dataset variant: small, full, inverted
    dataset_options: dict[str, Any]
    train: dict[str, Any]  # TrainConfig fields besides the dataset


_LENET = {"network": "lenet", "epochs": 10, "batch_size": 64, "solver": "sgd", "lr": 0.01,
          "lr_policy": "fixed", "seed": 0}
STEPS: tuple[LabStep, ...] = (
    LabStep("small", 1, "Small dataset",
            "LeNet on about 100 images per class: how far does little data go?",
            "small", {"max_per_class": 100}, dict(_LENET)),
    LabStep("full", 2, "Full dataset",
            "The same network on every image: better on MNIST, and on your photos?",
            "full", {}, dict(_LENET)),
    LabStep("inverted", 3, "Inverted copies added",
            "Add a 255 - x copy of every image, so dark ink on light paper is seen in training",
            "inverted", {"add_inverted": True}, dict(_LENET)),
    LabStep("wide", 4, "Wider network, ReLU after pool1",
            "conv1 20 -> 75 and conv2 50 -> 100 filters, a ReLU after pool1 (lenet-wide), on "
            "the inverted dataset",
            "inverted", {"add_inverted": True}, {**_LENET, "network": "lenet-wide"}),
)
STEP_KEYS = tuple(s.key for s in STEPS)


def get_step(key: str) -> LabStep:
    for step in STEPS:
        if step.key == key:
            return step
    raise ValueError(f"unknown lab step {key!r}; the steps are {', '.join(STEP_KEYS)}")


# --- where the images come from -------------------------------------------------------------


@dataclass(frozen=True)
class LabSource:
    kind: str  # a dataset source: "digits-sample" or "idx"
    args: dict[str, str] | None
    label: str
    slug: str  # goes into dataset names: lab-<slug>-<variant>-<user>


def offline_source() -> LabSource:
    return LabSource("digits-sample", None, "the offline sample (scikit-learn's 1,797 digits)",
                     "sample")


def _idx_dir(user: str, home: Home) -> Path:
    return studio_home(home) / "lab" / user / "idx"


def save_idx_files(user: str, files: dict[str, bytes], home: Home = None) -> LabSource:
    """Keep the user's uploaded IDX files (arg -> bytes: train_images, train_labels and
    optionally test_images, test_labels) for every step's dataset; they are checked when the
    first dataset is made from them."""
    bad = set(files) - set(IDX_ARGS)
    if bad:
        raise ValueError(f"unknown IDX file role(s): {', '.join(sorted(bad))}")
    missing = [a for a in ("train_images", "train_labels") if not files.get(a)]
    if missing:
        raise ValueError(f"the lab needs the {' and '.join(m.replace('_', ' ') for m in missing)}"
                         " file")
    if bool(files.get("test_images")) != bool(files.get("test_labels")):
        raise ValueError("test images and test labels go together: give both or neither")
    folder = _idx_dir(user, home)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    digest = hashlib.sha256()
    for arg in IDX_ARGS:
        data = files.get(arg)
        if data:
            digest.update(arg.encode() + len(data).to_bytes(8, "big") + data)
            tmp = folder / f".{arg}.tmp"
            tmp.write_bytes(data)
            tmp.rename(folder / arg)
    # Other files make other datasets: the content's hash goes into the datasets' names.
    (folder / "hash").write_text(digest.hexdigest())
    return _idx_source(folder)


def idx_source(user: str, home: Home = None) -> LabSource | None:
    """The IDX files this user saved for the lab, or None."""
    return _idx_source(_idx_dir(user, home))


def _idx_source(folder: Path) -> LabSource | None:
    args = {a: str(folder / a) for a in IDX_ARGS if (folder / a).exists()}
    if "train_images" not in args or "train_labels" not in args:
        return None
    digest = (folder / "hash").read_text()[:6] if (folder / "hash").exists() else "files"
    return LabSource("idx", args, "your IDX files", f"idx-{digest}")


# --- the steps' forms, and running a step ---------------------------------------------------


@dataclass
class StepForm:
    """What a step's form shows, pre-filled; the user may change any of it."""

    dataset_name: str
    dataset_options: dict[str, Any]
    train: dict[str, Any]


def dataset_name(step: LabStep, user: str, source: LabSource) -> str:
    return f"lab-{source.slug}-{step.data}-{user}"[:64]


def step_form(key: str, user: str, source: LabSource) -> StepForm:
    step = get_step(key)
    options = {**DatasetOptions().to_dict(), **copy.deepcopy(step.dataset_options)}
    return StepForm(dataset_name(step, user, source), options, copy.deepcopy(step.train))


def _same_options(manifest: dict[str, Any], options: DatasetOptions) -> bool:
    return manifest.get("options") == options.to_dict()


def ensure_dataset(name: str, source: LabSource, options: dict[str, Any], user: str,
                   home: Home = None, *, in_worker: bool = True) -> str:
    """The dataset's id: the one named `name` when it was made with these options (the steps
    share datasets), else a new one, built in a worker process (decoding uploaded files never
    runs in the caller, e.g. the dashboard) unless in_worker is False (no scheduler: here);
    DatasetError when the name is taken by another dataset."""
    opts = DatasetOptions.coerce(dict(options))
    with store.opened(home) as conn:
        row = store.get_dataset(conn, name)
    if row is not None and row["name"] == name:
        if row["source"] != source.kind or not _same_options(row["manifest"], opts):
            raise DatasetError(f"a dataset named {name!r} already exists with other settings; "
                               "give this step's dataset another name")
        return row["id"]
    build = build_dataset_in_worker if in_worker else create_dataset
    return build(name, source.kind, source.args, opts, owner=user, home=home).id


def run_step(key: str, user: str, source: LabSource, form: StepForm | None = None,
             home: Home = None, *, start_scheduler: bool = True) -> str:
    """Run a lab step: make (or reuse) its dataset, queue its training job, and record that
    the job is this user's run of the step. Returns the job id."""

    if not user:
        raise PermissionError("sign in to run the lab")
    step = get_step(key)
    form = form or step_form(key, user, source)
    settings = {k: v for k, v in form.train.items() if k != "dataset"}
    TrainConfig.from_dict({"dataset": "-", **settings}).validate()  # before any dataset work
    dataset_id = ensure_dataset(form.dataset_name, source, form.dataset_options, user, home,
                                in_worker=start_scheduler)  # no scheduler: no worker either
    name = f"Lab {step.number}: {step.title}"
    job_id = jobs.submit({**settings, "dataset": dataset_id, "name": name}, owner=user,
                         name=name, home=home, start_scheduler=start_scheduler)
    with store.opened(home) as conn:
        store.add_lab_run(conn, user, step.key, job_id)
    return job_id


# --- where the user stands ------------------------------------------------------------------


@dataclass
class StepState:
    step: LabStep
    job: jobs.LiveJob | None  # the latest job that ran this step (fraction done too), or None
    status: str  # "to do", or the job's status

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def ended(self) -> bool:
        return self.status in ENDED


def lab_state(user: str | None, home: Home = None) -> list[StepState]:
    """Every step with the latest job this user ran for it (deleted jobs drop out)."""
    latest: dict[str, jobs.LiveJob] = {}
    if user:
        with store.opened(home) as conn:
            rows = store.lab_runs(conn, user)
            for row in rows:
                job = store.get_job(conn, row["job"])
                if job is not None:
                    latest[row["step"]] = jobs.live(job)
    out = []
    for step in STEPS:
        job = latest.get(step.key)
        out.append(StepState(step, job, job.status if job else "to do"))
    return out


def next_step(states: list[StepState]) -> LabStep | None:
    """The first step not yet run (or whose run did not end well), or None when all are done."""
    for s in states:
        if s.job is None or s.status in ("failed", "cancelled", "interrupted"):
            return s.step
    return None


def lab_board(user: str, home: Home = None, create: bool = True) -> str | None:
    """The id of the user's lab probe board (named "Lab"), made when missing if `create`."""
    for board in probes.list_boards(user, home):
        if board["owner"] == user and board["name"] == BOARD_NAME:
            return board["id"]
    if not create:
        return None
    return probes.create_board(BOARD_NAME, user, shared=True, home=home)


# --- the comparison -------------------------------------------------------------------------


@dataclass
class Comparison:
    """The lab's table: the board scored by every finished step, the rest still to come."""

    score: probes.BoardScore | None  # None until a step is done and the board has images
    steps: list[StepState] = field(default_factory=list)
    images: int = 0

    def chart_rows(self) -> list[dict[str, Any]]:
        """One row per finished experiment: its board score, for a bar chart."""
        if self.score is None:
            return []
        done = [s for s in self.steps if s.done]
        rows = []
        for j, (state, column) in enumerate(zip(done, self.score.columns, strict=True)):
            right, total = self.score.score(j)
            rows.append({"experiment": column, "step": state.step.number, "correct": right,
                         "images": total, "score": right / total if total else 0.0})
        return rows


def step_column(step: LabStep) -> str:
    return f"{step.number}. {step.title}"


def compare(user: str, checkpoint: str = "best", home: Home = None) -> Comparison:
    """Score the user's lab board with the job of every finished step."""
    states = lab_state(user, home)
    board = lab_board(user, home, create=False)
    images = len(probes.list_probes(board, user, home)) if board else 0
    done = [s for s in states if s.done]
    if not board or not images or not done:
        return Comparison(None, states, images)
    score = probes.score_board(board, [s.job.id for s in done], checkpoint, user, home=home)
    score.columns = [step_column(s.step) for s in done]
    return Comparison(score, states, images)


def dataset_summary(dataset_id: str, home: Home = None) -> str:
    """A line about a step's dataset: images per split."""
    ds = open_dataset(dataset_id, home=home)
    return (f"{ds.name}: {len(ds.split('train')):,} training, {len(ds.split('val')):,} "
            f"validation, {len(ds.split('test')):,} test images")
