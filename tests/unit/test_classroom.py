"""The instructor's view (issue 19): instructors only; the hidden board stays the owner's; a
student's entry; the leaderboard's ranking (ties by held-out accuracy) and its CSV; every
user's usage and lab progress."""

from __future__ import annotations

import csv
import io
import time
from contextlib import closing

import pytest

from engine import jobs
from engine.cli.main import main as cli
from engine.evaluation import probes
from engine.hosting import classroom, roles
from engine.state import store
from testkit.digit_images import digit_photo
from testkit.finished_jobs import finished_job


@pytest.fixture
def class_home(jobs_home, monkeypatch):
    """The digits workspace with an instructor (teacher) and the class's hidden board of
    five digit photos."""
    monkeypatch.delenv("STUDIO_INSTRUCTORS", raising=False)
    roles.set_role("teacher", roles.INSTRUCTOR)
    board = classroom.hidden_board("teacher")
    probes.add_probes(board["id"], [(digit_photo(d, seed=7), str(d), f"{d}.png")
                                    for d in (0, 1, 2, 3, 7)], "auto", user="teacher")
    return jobs_home


def _student_job(home, student: str, held_out: float) -> str:
    """A copy of the session's finished LeNet job, owned by `student`, with its held-out
    accuracy set to `held_out`."""
    job_id = finished_job(home, epochs=1, evaluate=False)
    with closing(store.connect(home)) as conn, store.transaction(conn):
        result = store.get_job(conn, job_id)["result"]
        result["held_out"] = {"split": "test", "accuracy": held_out, "loss": 0.1}
        store.update_job(conn, job_id, owner=student, result=result)
    return job_id


def test_only_instructors_and_the_board_stays_hidden(class_home):
    with pytest.raises(PermissionError, match="only the class's instructors see this "
                                              r"\(alice is a student\)"):
        classroom.leaderboard("alice")
    with pytest.raises(PermissionError):
        classroom.usage_table("alice")
    with pytest.raises(PermissionError):
        classroom.hidden_board("alice")
    board_id = classroom.hidden_board("teacher")["id"]
    assert classroom.hidden_board("teacher")["probes"] == 5  # the same board, not another
    assert board_id not in {b["id"] for b in probes.list_boards("alice")}
    with pytest.raises(PermissionError, match="private to its owner"):
        probes.list_probes(board_id, "alice")
    with pytest.raises(PermissionError, match="stays private"):
        probes.set_shared(board_id, True, "teacher")
    assert classroom.hidden_board_exists()


def test_leaderboard_ranks_by_board_score_then_held_out_and_exports_csv(class_home):
    bob = _student_job(class_home, "bob", held_out=0.91)
    alice = _student_job(class_home, "alice", held_out=0.95)
    _student_job(class_home, "alice", held_out=0.80)  # alice's other, weaker job
    classroom.choose_entry("alice", alice)
    # Same weights, so the same board score: held-out accuracy breaks the tie.
    board = classroom.hidden_board("teacher")
    right, total = probes.score_board(board["id"], [alice], user="teacher").score(0)
    rows = classroom.leaderboard("teacher")
    assert [(r.rank, r.student, r.job) for r in rows] == [(1, "alice", alice), (2, "bob", bob)]
    assert [(r.correct, r.images) for r in rows] == [(right, total)] * 2
    assert rows[0].entry == "chosen" and rows[1].entry == "best of 1"
    assert [r.held_out_accuracy for r in rows] == [0.95, 0.91]
    table = list(csv.DictReader(io.StringIO(classroom.leaderboard_csv(rows))))
    assert list(table[0]) == list(classroom.CSV_COLUMNS)
    assert [(t["rank"], t["student"], t["board_correct"], t["board_images"], t["board_score"],
             t["held_out_accuracy"], t["job"]) for t in table] == [
        ("1", "alice", str(right), "5", f"{right / 5:.4f}", "0.9500", alice),
        ("2", "bob", str(right), "5", f"{right / 5:.4f}", "0.9100", bob)]
    # The CLI writes the same file; a student asking is refused in one line.
    out = class_home / "grades.csv"
    assert cli(["class", "leaderboard", "--user", "teacher", "--csv", str(out)]) == 0
    assert out.read_text() == classroom.leaderboard_csv(rows)
    assert cli(["class", "leaderboard", "--user", "bob"]) == 2


def test_ranking_rules_with_equal_ranks_and_unscored_entries(class_home, monkeypatch):
    """The ranking alone, with chosen scores: board score first, held-out second; equal on
    both, equal rank; an entry that cannot be scored comes last and says why."""
    ids = {s: _student_job(class_home, s, acc) for s, acc in
           [("ann", 0.90), ("ben", 0.99), ("cat", 0.97), ("dan", 0.97), ("eve", 0.99)]}
    scores = {ids["ann"]: (5, 5), ids["ben"]: (3, 5), ids["cat"]: (4, 5), ids["dan"]: (4, 5)}

    def fake_score(board, job_id, checkpoint, home):
        if job_id not in scores:
            raise FileNotFoundError("no checkpoint in the job's folder")
        return scores[job_id]

    monkeypatch.setattr(classroom, "_score", fake_score)
    rows = classroom.leaderboard("teacher")
    assert [(r.rank, r.student) for r in rows] == [
        (1, "ann"), (2, "cat"), (2, "dan"), (4, "ben"), (5, "eve")]
    assert rows[-1].board_score is None and "no checkpoint" in rows[-1].problem


def test_entries_are_the_students_own_finished_jobs(class_home):
    bob = _student_job(class_home, "bob", 0.9)
    with pytest.raises(PermissionError, match="only your own jobs"):
        classroom.choose_entry("alice", bob)
    queued = jobs.submit({"dataset": "digits", "epochs": 1}, owner="bob",
                         start_scheduler=False)
    with pytest.raises(ValueError, match="only a finished training job"):
        classroom.choose_entry("bob", queued)
    classroom.choose_entry("bob", bob)
    assert classroom.entry_of("bob") == bob
    jobs.delete(bob)
    assert classroom.entry_of("bob") is None


def test_usage_and_lab_progress(class_home):
    from engine.lab import guide as lab

    job = _student_job(class_home, "bob", 0.9)
    now = time.time()
    with closing(store.connect(class_home)) as conn, store.transaction(conn):
        store.update_job(conn, job, assigned_device="cpu", started=now - 600, finished=now)
        conn.execute("INSERT INTO lab_runs (owner, step, job, created) VALUES (?, ?, ?, ?)",
                     ("bob", "small", job, now))
    queued = jobs.submit({"dataset": "digits", "epochs": 1}, owner="carol",
                         start_scheduler=False)
    rows = {r["user"]: r for r in classroom.usage_table("teacher")}
    assert rows["bob"]["done"] == 1 and rows["bob"]["CPU min (24 h)"] == 10.0
    assert rows["bob"]["disk MiB"] > 0 and rows["bob"]["lab steps done"] == 1
    assert rows["carol"]["queued"] == 1 and rows["teacher"]["role"] == "instructor"
    progress = classroom.lab_progress("teacher")
    assert progress == [{"user": "bob", **{lab.step_column(s): "to do" for s in lab.STEPS},
                         lab.step_column(lab.STEPS[0]): "done", "steps done": 1}]
    summary = classroom.lab_summary(progress)
    assert summary[0]["done"] == 1 and summary[1]["done"] == 0
    active = classroom.active_jobs("teacher")
    assert [(a["id"], a["status"]) for a in active] == [(queued, "queued #1")]
