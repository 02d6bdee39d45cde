"""Probe boards: a handful of a user's own images (drawings, photos) with their true labels,
scored by several experiments side by side, as the DIGITS lab compares its networks on the same
real-world test images ("predicted label : confidence" per experiment).

Images are stored as drawn (PNG of the original canvas or upload) with the polarity and framing
used, so each model prepares them under its own preprocessing contract when scored.
"""

from __future__ import annotations

import io
import os
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from engine.hosting import access
from engine.state import store
from engine.state.runs import job_dir

if TYPE_CHECKING:
    import pandas as pd

Home = str | os.PathLike | None
POLARITIES = ("auto", "invert", "as-is")


def _visible(board: dict[str, Any], user: str | None,
             conn: sqlite3.Connection | None = None) -> bool:
    """Shared boards (not a class's hidden board, engine/hosting/classroom.py), the user's own, and
    (with a connection to ask) every board for an instructor (engine/access)."""

    if (board["shared"] and not board["hidden"]) or board["owner"] == user:
        return True
    return conn is not None and access.may_see_board(conn, board, user)


def create_board(name: str, owner: str, shared: bool = True, home: Home = None) -> str:
    """A new board owned by `owner`; shared boards are viewable (not editable) by everyone."""
    name = name.strip()
    if not name:
        raise ValueError("a board needs a name")
    if not owner:
        raise PermissionError("sign in to create a probe board")
    board_id = uuid.uuid4().hex[:12]
    with store.opened(home) as conn:
        try:
            store.add_board(conn, board_id, name, owner, shared)
        except sqlite3.IntegrityError as e:
            raise ValueError(f"you already have a board named {name!r}") from e
    return board_id


def list_boards(user: str | None, home: Home = None) -> list[dict[str, Any]]:
    """The user's own boards, then the boards others share, newest first, with probe counts."""

    with store.opened(home) as conn:
        every = access.is_instructor_in(conn, user)  # instructors see every board
        return store.boards_for(conn, user, every)


def get_board(board_id: str, user: str | None = None, home: Home = None) -> dict[str, Any]:
    """A board the user may view; KeyError if there is none, PermissionError if private."""
    with store.opened(home) as conn:
        return _get_board(conn, board_id, user)


def _get_board(conn: sqlite3.Connection, board_id: str, user: str | None) -> dict[str, Any]:
    board = store.get_board(conn, board_id)
    if board is None:
        raise KeyError(f"no probe board {board_id!r}")
    if not _visible(board, user, conn):
        raise PermissionError("this probe board is private to its owner")
    return board


def _owned(conn: sqlite3.Connection, board_id: str, user: str | None, action: str) -> None:
    board = _get_board(conn, board_id, user) if user else None
    if board is None or board["owner"] != user:
        raise PermissionError(f"only the board's owner can {action}")


def set_shared(board_id: str, shared: bool, user: str | None, home: Home = None) -> None:
    with store.opened(home) as conn:
        _owned(conn, board_id, user, "share or unshare it")
        if shared and _get_board(conn, board_id, user)["hidden"]:
            raise PermissionError("this is the class's hidden board: it stays private, so "
                                  "students never see its images")
        store.set_board_shared(conn, board_id, shared)


def delete_board(board_id: str, user: str | None, home: Home = None) -> None:
    """Delete a board and its probes (owner only -> PermissionError)."""
    with store.opened(home) as conn:
        _owned(conn, board_id, user, "delete it")
        store.delete_board(conn, board_id)


def add_probe(board_id: str, image_png: bytes, label: str, polarity: str = "auto",
              user: str | None = None, digit: bool = True, source: str = "",
              home: Home = None) -> int:
    """Store an image as drawn, with its true label and the polarity and framing it needs."""
    return add_probes(board_id, [(image_png, label, source)], polarity, user, digit, home)[0]


def add_probes(board_id: str, items: list[tuple[bytes, str, str]], polarity: str = "auto",
               user: str | None = None, digit: bool = True, home: Home = None) -> list[int]:
    """Store (image, true label, source) items in one transaction: all of them, or none when
    one is refused (the error names it)."""
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {', '.join(POLARITIES)}, not {polarity!r}")
    for k, (image_png, label, source) in enumerate(items):
        what = f" ({source or f'image {k + 1}'})" if len(items) > 1 else ""
        if not str(label).strip():
            raise ValueError(f"a probe needs its true label{what}")
        Image.open(io.BytesIO(image_png)).verify()  # refuse what is not an image, now
    with store.opened(home) as conn, store.transaction(conn):
        _owned(conn, board_id, user, "add images to it")
        ids = []
        for image_png, label, source in items:
            ids.append(store.add_probe(conn, board_id, image_png, str(label).strip(), polarity,
                                       digit, source))
        return ids


def list_probes(board_id: str, user: str | None = None, home: Home = None
                ) -> list[dict[str, Any]]:
    """The board's probes, oldest first, with their PNG bytes under "image"."""
    with store.opened(home) as conn:
        _get_board(conn, board_id, user)
        return store.board_probes(conn, board_id)


def delete_probe(probe_id: int, user: str | None, home: Home = None) -> None:
    with store.opened(home) as conn:
        board_id = store.probe_board_of(conn, probe_id)
        if board_id is None:
            raise KeyError(f"no probe {probe_id}")
        _owned(conn, board_id, user, "delete its images")
        store.delete_probe(conn, probe_id)


# --- scoring --------------------------------------------------------------------------------


@dataclass
class Cell:
    predicted: str | None  # None: nothing to classify in the image
    confidence: float
    correct: bool

    def __str__(self) -> str:
        return "—" if self.predicted is None else f"{self.predicted} : {self.confidence:.1%}"


@dataclass
class BoardScore:
    probes: list[dict[str, Any]]  # id, label (no image bytes)
    columns: list[str]  # one per job
    cells: list[list[Cell]]  # [probe][job]
    temperatures: list[float] = field(default_factory=list)  # per job; 1.0 = uncalibrated

    def confidence_note(self) -> str:
        """Which confidence the table shows: the raw softmax, or temperature-scaled (the
        Evaluation tab's Calibrate) for the experiments that were calibrated."""
        scaled = [f"{c} (T = {t:.2f})" for c, t in zip(self.columns, self.temperatures,
                                                      strict=False) if t != 1.0]
        if not scaled:
            return "Confidence: the raw softmax of each network (none is calibrated)."
        rest = "the others show the raw softmax" if len(scaled) < len(self.columns) else ""
        return ("Confidence: calibrated by temperature scaling for " + ", ".join(scaled)
                + (f"; {rest}." if rest else "."))

    def score(self, j: int) -> tuple[int, int]:
        return sum(row[j].correct for row in self.cells), len(self.cells)

    def frame(self, foot: bool = True) -> pd.DataFrame:
        """One row per image ("predicted : confidence" per job), the scores at the foot."""
        import pandas as pd  # here: the CLI and workers that never draw a table skip it

        index = [f"#{p['id']}" for p in self.probes]
        data = {"label": [p["label"] for p in self.probes]}
        for j, col in enumerate(self.columns):
            data[col] = [str(row[j]) for row in self.cells]
        df = pd.DataFrame(data, index=pd.Index(index, name="image"))
        if foot:
            score = {"label": ""} | {c: "{}/{}".format(*self.score(j))
                                     for j, c in enumerate(self.columns)}
            df = pd.concat([df, pd.DataFrame([score], index=pd.Index(["score"], name="image"))])
        return df

    def correct(self) -> pd.DataFrame:
        """Correct flags, shaped like frame(foot=False) without the label column."""
        import pandas as pd

        return pd.DataFrame([[c.correct for c in row] for row in self.cells],
                            columns=self.columns, index=[f"#{p['id']}" for p in self.probes])


def job_checkpoint(job_id: str, checkpoint: str = "best", home: Home = None) -> Path:
    """A job's checkpoint: "best" (else the last), "last", or a path within its run dir."""
    from engine.inference.predictor import resolve_checkpoint

    run = job_dir(job_id, home)
    if checkpoint == "best":
        return resolve_checkpoint(run)
    path = (run / ("last.pt" if checkpoint == "last" else checkpoint)).resolve()
    if run.resolve() not in path.parents:
        raise ValueError(f"checkpoint {checkpoint!r} is outside the job's directory")
    return resolve_checkpoint(path)


def _column_names(job_ids: list[str], home: Home) -> list[str]:
    with store.opened(home) as conn:
        names = [(job.name if (job := store.get_job(conn, j)) else None) or j
                 for j in job_ids]
    return [f"{n} ({j})" if names.count(n) > 1 else n for n, j in zip(names, job_ids,
                                                                      strict=True)]


def score_board(board_id: str, job_ids: list[str], checkpoint: str = "best",
                user: str | None = None, backend: str = "pytorch-cpu",
                home: Home = None) -> BoardScore:
    """Classify every probe with every job's checkpoint: the lab's comparison table."""
    from engine.inference.backends import get_backend
    from engine.inference.classify import classify_batch

    probes = list_probes(board_id, user, home)
    images = [np.asarray(Image.open(io.BytesIO(p["image"]))) for p in probes]
    per_job: list[list[Cell]] = []
    temperatures: list[float] = []
    for job_id in job_ids:
        model = get_backend(backend, job_checkpoint(job_id, checkpoint, home))
        temperatures.append(float(getattr(model.contract, "temperature", 1.0)))
        results = [classify_batch(model, [im], top_k=1, digit=p["digit"],
                                 polarity=p["polarity"])[0] for im, p in zip(images, probes,
                                                                             strict=True)]
        per_job.append([Cell(None, 0.0, False) if r is None else
                        Cell(r.label, r.confidence, r.label == p["label"])
                        for r, p in zip(results, probes, strict=True)])
    cells = [[col[i] for col in per_job] for i in range(len(probes))]
    meta = [{k: v for k, v in p.items() if k != "image"} for p in probes]
    return BoardScore(meta, _column_names(job_ids, home), cells, temperatures)


def board_csv(board_id: str, job_ids: list[str], checkpoint: str = "best",
              user: str | None = None, home: Home = None,
              score: BoardScore | None = None) -> str:
    """The comparison table as CSV (scores in the last row)."""
    score = score or score_board(board_id, job_ids, checkpoint, user, home=home)
    return score.frame().to_csv()
