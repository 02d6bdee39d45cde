"""A batch never aborts on one image (issue 27 item 6): `predict`, classify-many and its task
report each image's answer or its one-line reason naming the file, and fail only when nothing
could be classified."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli.main import main
from engine.inference.classify_many import classify_many
from engine.inference.uploads import NO_INK
from engine.jobs import tasks
from engine.state.runs import job_dir
from testkit import trained_digits
from testkit.finished_jobs import finished_job

ROOT = Path(__file__).resolve().parents[2]
digit_images = trained_digits.digit_images  # eight held-out digits and their labels


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STUDIO_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


def blanks(folder: Path) -> list[Path]:
    """An all-white and an all-black PNG: nothing to classify in either."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "blank-white.png", folder / "blank-black.png"]
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(paths[0])
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(paths[1])
    return paths


@pytest.fixture
def batch(digit_images, tmp_path) -> tuple[list[Path], list[str], list[Path]]:
    """Eight held-out digits as PNGs with the two blanks among them: (all, labels, blanks)."""
    images, labels = digit_images
    digits = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        digits.append(tmp_path / "scans" / label / f"digit{i}.png")
        digits[-1].parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(digits[-1])
    white, black = blanks(tmp_path / "scans" / "blank")
    return [*digits[:3], white, *digits[3:6], black, *digits[6:]], labels, [white, black]


def test_predict_classifies_the_rest_and_names_the_blank_files(home, lenet_run, batch):
    paths, labels, (white, black) = batch
    p = cli(home, "predict", str(lenet_run), *map(str, paths), "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert [r["image"] for r in rows] == [str(q) for q in paths]  # every one, in order
    failed = {r["image"]: r["error"] for r in rows if r["error"]}
    assert failed == {str(white): NO_INK, str(black): NO_INK}
    classified = [r for r in rows if not r["error"]]
    assert len(classified) == 8 and all(len(r["top"]) == 5 for r in classified)
    assert sum(r["label"] == y for r, y in zip(classified, labels, strict=True)) >= 6

    text = cli(home, "predict", str(lenet_run), *map(str, paths))
    assert text.returncode == 0, text.stderr
    out = text.stdout.strip().splitlines()
    assert [line.split(": ")[0] for line in out] == [r["image"] for r in classified]
    err = text.stderr.strip().splitlines()
    assert f"{white}: not classified: {NO_INK}" in err
    assert f"{black}: not classified: {NO_INK}" in err
    assert err[-1] == "2 of 10 images could not be classified (listed above); 8 were"
    assert "Traceback" not in text.stderr


def test_predict_of_only_blank_images_fails_with_a_clear_message(home, lenet_run, tmp_path):
    white, black = blanks(tmp_path)
    p = cli(home, "predict", str(lenet_run), str(white), str(black))
    assert p.returncode == 2 and p.stdout == ""
    err = p.stderr.strip().splitlines()
    assert err == [f"{white}: not classified: {NO_INK}", f"{black}: not classified: {NO_INK}",
                   "error: none of the 2 images could be classified (each one's reason is "
                   "above)"]
    one = cli(home, "predict", str(lenet_run), str(white))
    assert one.returncode == 2 and one.stderr.strip() == f"error: {white}: {NO_INK}"
    as_json = cli(home, "predict", str(lenet_run), str(white), str(tmp_path / "missing.png"),
                  "--json")
    assert as_json.returncode == 2
    rows = json.loads(as_json.stdout)
    assert rows[0]["error"] == NO_INK and "file not found" in rows[1]["error"]
    assert as_json.stderr.strip() == "error: none of the 2 images could be classified"


def test_classify_many_and_its_task_list_each_failure(lenet_run, batch, tmp_path):
    paths, labels, (white, black) = batch
    (tmp_path / "scans" / "broken.png").write_bytes(b"\x89PNG not really")
    out_csv = tmp_path / "results.csv"
    result = classify_many(lenet_run, [tmp_path / "scans"], out_csv=out_csv, digit=True)
    assert result["images"] == 8 and result["errors"] == 3
    failures = {f["file"]: f["error"] for f in result["failures"]}
    assert failures["blank/blank-white.png"] == failures["blank/blank-black.png"] == NO_INK
    assert failures["broken.png"].startswith("cannot read 'broken.png' (")
    rows = {r["file"]: r for r in csv.DictReader(out_csv.open())}
    assert len(rows) == 11 and rows["blank/blank-black.png"]["error"] == NO_INK
    assert rows["blank/blank-black.png"]["predicted"] == ""
    assert sum(bool(r["predicted"]) for r in rows.values()) == 8

    # The task job's result (what the dashboard and `jobs show` read) names them too.
    home = tmp_path / "workspace"
    shutil.copytree(lenet_run, job_dir("trained", home))
    done = tasks.classify({"job": "trained", "task_job": "task", "inputs": [str(white),
                           str(paths[0]), str(black)], "digit": True}, lambda f, m: None, home)
    assert done["images"] == 1 and done["errors"] == 2
    assert done["failures"] == [{"file": "blank-white.png", "error": NO_INK},
                                {"file": "blank-black.png", "error": NO_INK}]
    assert json.loads(json.dumps(done)) == done  # stored as the job's JSON result
    assert Path(done["csv"]) == job_dir("task", home) / "results.csv"


def test_classify_many_lists_a_bounded_number_of_failures(lenet_run, tmp_path, monkeypatch):
    from engine.inference import classify_many as cm

    monkeypatch.setattr(cm, "FAILURES_LISTED", 1)
    white, black = blanks(tmp_path / "b")
    result = classify_many(lenet_run, [white, black], digit=True)
    assert result["errors"] == 2 and len(result["failures"]) == 1
    assert result["failures_not_listed"] == 1
    assert result["csv"].count(NO_INK) == 2  # the CSV keeps every row


def test_classify_cli_fails_only_when_nothing_was_classified(capsys, jobs_home, batch,
                                                             tmp_path):
    paths, _, (white, black) = batch
    job_id = finished_job(jobs_home, evaluate=False)
    assert main(["classify", job_id, str(paths[0]), str(white), "--digit"]) == 0
    out = capsys.readouterr().out
    assert f"{white.name}: error: {NO_INK}" in out
    assert "1 images classified" in out and "1 could not be" in out

    assert main(["classify", job_id, str(white), str(black), "--digit", "--csv",
                 str(tmp_path / "r.csv")]) == 2
    captured = capsys.readouterr()
    assert f"{black.name}: error: {NO_INK}" in captured.out  # named, though rows went to CSV
    assert captured.err.strip().splitlines()[-1] == (  # after the progress bar
        "error: none of the 2 images could be classified (each one's reason is above)")
    assert main(["classify", job_id, str(white), "--digit", "--json"]) == 2
    captured = capsys.readouterr()
    shown = json.loads(captured.out)
    assert shown["images"] == 0 and shown["failures"] == [{"file": white.name,
                                                           "error": NO_INK}]
    assert captured.err.strip() == "error: none of the 1 images could be classified"
