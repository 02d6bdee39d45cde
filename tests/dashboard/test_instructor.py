"""The instructor's page and the hidden board in the dashboard (issue 19): no page a student
opens carries the hidden board's images (in any element, or any media file the page stored),
while the board's owner does see them (so the check can fail); the instructor's leaderboard
shows the scores; a student gets a clear message on the Instructor page; a student picks
their entry on their Job page; the Quotas tab saves limits."""

from __future__ import annotations

import base64
import io
from contextlib import closing

import numpy as np
import pytest
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from dashboard.nav import INSTRUCTOR_PAGES, PAGES
from dashboard.views.probe_upload import thumbnail_uri
from engine.evaluation import probes
from engine.hosting import classroom, quotas, roles
from engine.state import store
from testkit.apptest import app, errors, open_page
from testkit.digit_images import digit_photo
from testkit.finished_jobs import finished_job


@pytest.fixture
def media(monkeypatch) -> list[bytes]:
    """Every media file (images, downloads) any page stores while the test runs."""
    stored: list[bytes] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if isinstance(path_or_data, bytes):
            stored.append(path_or_data)
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return stored


@pytest.fixture
def hosted(jobs_home, monkeypatch):
    """An instructor (teacher) with the hidden board of four photos, and a student (alice)
    with a finished job: (home, board id, the board's PNGs, alice's job)."""
    monkeypatch.delenv("STUDIO_INSTRUCTORS", raising=False)
    roles.set_role("teacher", roles.INSTRUCTOR)
    board = classroom.hidden_board("teacher")["id"]
    images = [digit_photo(d, seed=41) for d in (3, 5, 8, 9)]
    probes.add_probes(board, [(png, str(d), f"{d}.png") for png, d in
                              zip(images, (3, 5, 8, 9), strict=True)], "auto", user="teacher")
    job = finished_job(jobs_home, epochs=1, evaluate=False)
    with closing(store.connect(jobs_home)) as conn, store.transaction(conn):
        store.update_job(conn, job, owner="alice")
    return jobs_home, board, images, job


def _serialized(node) -> list[bytes]:
    """The wire form of every element and block under a node of AppTest's tree."""
    out = []
    proto = getattr(node, "proto", None)
    if proto is not None and hasattr(proto, "SerializeToString"):
        out.append(proto.SerializeToString())
    for child in getattr(node, "children", {}).values():
        out += _serialized(child)
    return out


def _pixels(png: bytes) -> np.ndarray | None:
    try:
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    except Exception:  # noqa: BLE001 - not an image (a CSV download, a chart)
        return None


def _leaks(at, media: list[bytes], images: list[bytes]) -> list[str]:
    """Where any of the images shows on the page: its bytes, its base64, its table
    thumbnail, or a stored media file with its bytes or pixels."""
    wire = _serialized(at._tree)
    found = []
    for k, png in enumerate(images):
        needles = [png, base64.b64encode(png), thumbnail_uri(png).encode(),
                   thumbnail_uri(png).split(",", 1)[1].encode()]
        if any(n in blob for n in needles for blob in wire):
            found.append(f"image {k} in an element")
        pixels = _pixels(png)
        for blob in media:
            shown = _pixels(blob) if blob != png else pixels
            if blob == png or (shown is not None and shown.shape == pixels.shape
                               and np.array_equal(shown, pixels)):
                found.append(f"image {k} in a media file")
    return found


def test_no_page_a_student_opens_shows_the_hidden_board(hosted, media):
    home, board, images, job = hosted
    alice = app("alice")
    own = probes.create_board("mine", "alice")
    probes.add_probe(own, digit_photo(1, seed=2), "1", user="alice")
    queries = {"job": {"id": job}, "probes": {"board": board}, "classify": {"job": job},
               "compare": {"ids": job}, "deploy": {"id": job}}
    for name in PAGES:
        if name in INSTRUCTOR_PAGES:  # not even listed for a student
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                open_page(alice, name)
            continue
        at = open_page(alice, name, **queries.get(name, {}))
        assert not at.exception, (name, at.exception)
        assert _leaks(at, media, images) == [], name
        if name == "probes":  # the board's id in the URL does not open it
            assert any("No board" in w.value for w in at.warning)
    # The check itself: the board's owner, on its page, is shown its images.
    media.clear()
    owner = open_page(app("teacher"), "probes", board=board)
    assert _leaks(owner, media, images), "the leak check found nothing where images show"


def test_instructor_leaderboard_shows_scores_and_a_student_picks_an_entry(hosted):
    home, board, images, job = hosted
    at = open_page(app("alice"), "job", id=job)
    assert not errors(at)
    at.button(key="job_entry").click().run()
    assert classroom.entry_of("alice") == job
    assert any("your entry for the class leaderboard" in s.value for s in at.success)

    teacher = open_page(app("teacher"), "instructor")
    assert not teacher.exception and not errors(teacher)
    users = teacher.dataframe[0].value
    assert "alice" in set(users["user"]) and "teacher" in set(users["user"])
    teacher.button(key="instructor_score").click().run()
    table = teacher.dataframe[-1].value
    right, total = probes.score_board(board, [job], user="teacher").score(0)
    assert list(table["student"]) == ["alice"] and list(table["rank"]) == [1]
    assert list(table["correct"]) == [right] and list(table["images"]) == [total] == [4]
    assert table["board_score"].iloc[0] == pytest.approx(right / 4)
    assert table["entry"].iloc[0] == "chosen"


def test_a_student_picks_a_lab_experiment_as_entry(hosted):
    home, board, images, job = hosted
    with closing(store.connect(home)) as conn:
        conn.execute("INSERT INTO lab_runs (owner, step, job, created) VALUES (?, ?, ?, ?)",
                     ("alice", "small", job, 0.0))
    at = open_page(app("alice"), "lab")
    assert not at.exception and not errors(at)
    assert at.selectbox(key="lab_entry_pick").value == job
    at.button(key="lab_entry").click().run()
    assert classroom.entry_of("alice") == job
    assert at.button(key="lab_entry").disabled  # already the entry


def test_quotas_tab_saves_limits_and_refuses_bad_values(hosted):
    teacher = open_page(app("teacher"), "instructor")
    teacher.selectbox(key="instructor_quota_user").set_value("alice").run()
    teacher.text_input(key="instructor_q_alice_running_jobs").input("2")
    teacher.text_input(key="instructor_q_alice_queued_jobs").input("-3")
    submit = next(b for b in teacher.button if b.label == "Save limits")
    submit.click().run()
    assert any("must be a number >= 0" in e for e in errors(teacher))
    assert quotas.all_limits() == {}  # nothing saved while one value is wrong
    teacher.text_input(key="instructor_q_alice_queued_jobs").input("unlimited")
    next(b for b in teacher.button if b.label == "Save limits").click().run()
    assert quotas.all_limits() == {"alice": {"running_jobs": 2.0}}
