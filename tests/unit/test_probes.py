"""engine.evaluation.probes: boards in SQLite, ownership, and the
lab's comparison table of experiments."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine import jobs
from engine.evaluation import probes
from engine.state import store
from testkit.drawings import draw_one


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def trained_job(home, name: str, epochs: int = 2, owner: str = "alice") -> str:
    """A done job trained in-process into its job dir (no scheduler: fast and deterministic)."""
    from engine.training import TrainConfig, train

    cfg = {"dataset": "digits", "network": "lenet", "epochs": epochs, "seed": 0,
           "device": "cpu"}
    job_id = jobs.submit(cfg, owner=owner, name=name, start_scheduler=False)
    train(TrainConfig(**cfg), jobs.job_dir(job_id), home=home)
    conn = store.connect(home)
    store.update_job(conn, job_id, status="done")
    conn.close()
    return job_id


def test_boards_and_ownership(home):
    a = probes.create_board("lab", "alice")
    private = probes.create_board("mine", "alice", shared=False)
    b = probes.create_board("bob's", "bob")
    with pytest.raises(ValueError, match="already"):
        probes.create_board("lab", "alice")
    assert [x["name"] for x in probes.list_boards("alice")] == ["mine", "lab", "bob's"]
    assert [x["name"] for x in probes.list_boards("bob")] == ["bob's", "lab"]
    assert [x["name"] for x in probes.list_boards(None)] == ["bob's", "lab"]
    with pytest.raises(PermissionError):
        probes.get_board(private, "bob")

    pid = probes.add_probe(a, png(draw_one()), "1", "as-is", user="alice")
    assert probes.list_boards("alice")[1]["probes"] == 1
    with pytest.raises(PermissionError):
        probes.add_probe(a, png(draw_one()), "1", user="bob")
    with pytest.raises(ValueError, match="polarity"):
        probes.add_probe(a, png(draw_one()), "1", "sideways", user="alice")
    with pytest.raises(ValueError, match="label"):
        probes.add_probe(a, png(draw_one()), " ", user="alice")
    with pytest.raises(Exception):  # noqa: B017 - PIL says what is wrong with the bytes
        probes.add_probe(a, b"not an image", "1", user="alice")
    [probe] = probes.list_probes(a, "bob")  # shared: others can view
    assert probe["id"] == pid and probe["polarity"] == "as-is" and probe["digit"] is True
    assert Image.open(io.BytesIO(probe["image"])).size == (280, 280)
    with pytest.raises(PermissionError):
        probes.delete_probe(pid, "bob")
    with pytest.raises(PermissionError):
        probes.delete_board(a, "bob")
    with pytest.raises(PermissionError):
        probes.set_shared(a, False, "bob")
    probes.set_shared(b, False, "bob")
    assert [x["name"] for x in probes.list_boards("alice")] == ["mine", "lab"]
    probes.delete_probe(pid, "alice")
    assert probes.list_probes(a, "alice") == []
    probes.add_probe(a, png(draw_one()), "1", user="alice")
    probes.delete_board(a, "alice")
    with pytest.raises(KeyError):
        probes.get_board(a, "alice")
    conn = store.connect(home)
    assert conn.execute("SELECT COUNT(*) FROM probes").fetchone()[0] == 0  # cascaded


def test_score_board(jobs_home):
    first = trained_job(jobs_home, "lenet-1", epochs=1)
    second = trained_job(jobs_home, "lenet-2", epochs=2)
    board = probes.create_board("real world", "alice")
    probes.add_probe(board, png(draw_one("MNIST")), "1", "as-is", user="alice")
    probes.add_probe(board, png(draw_one("paper")), "1", "invert", user="alice")
    probes.add_probe(board, png(draw_one("paper")), "7", "auto", user="alice")  # wrong label
    blank = np.zeros((280, 280, 4), np.uint8)
    blank[..., 3] = 255
    probes.add_probe(board, png(blank), "3", "as-is", user="alice")

    score = probes.score_board(board, [first, second], user="bob")
    df = score.frame()
    assert list(df.columns) == ["label", "lenet-1", "lenet-2"]
    assert list(df.index) == [f"#{p['id']}" for p in score.probes] + ["score"]
    cell = df.loc[df.index[0], "lenet-2"]
    assert cell.startswith("1 : ") and cell.endswith("%")
    assert df.loc[df.index[3], "lenet-1"] == "—"  # an empty image: nothing to classify
    assert df.loc["score", "lenet-2"] == "2/4"
    flags = score.correct()
    assert flags["lenet-2"].tolist() == [True, True, False, False]

    csv = probes.board_csv(board, [first, second], score=score)
    lines = csv.strip().splitlines()
    assert lines[0] == "image,label,lenet-1,lenet-2" and lines[-1].startswith("score,,")
    assert probes.job_checkpoint(first, "last").name == "last.pt"
    with pytest.raises(ValueError, match="outside"):
        probes.job_checkpoint(first, "../../studio.db")
