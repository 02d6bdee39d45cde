"""`python -m engine evaluate` and `python -m engine classify` on a LeNet trained in the test."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import jobs
from engine.cli.main import main
from engine.datasets import open_dataset
from engine.evaluation.evaluate import load_evaluation
from testkit.finished_jobs import finished_job

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def job_id(jobs_home) -> str:
    return finished_job(jobs_home, evaluate=False)


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def write_images(ds, indexes, folder: Path) -> list[Path]:
    paths = []
    for i in indexes:
        path = folder / ds.classes[ds.labels[i]] / f"img{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(ds.images[i])[:, :, 0]).save(path)
        paths.append(path)
    return paths


def test_evaluate_json_and_table(capsys, jobs_home, job_id):
    rc, out, _ = run(capsys, "evaluate", job_id[:12], "--json")
    assert rc == 0
    summary = json.loads(out)
    ds = open_dataset("digits", home=jobs_home)
    assert summary["job"] == job_id and summary["split"] == "test"
    assert summary["images"] == len(ds.split("test"))
    cm = np.asarray(summary["confusion"])
    assert cm.sum() == summary["images"]
    assert np.trace(cm) / cm.sum() == pytest.approx(summary["accuracy"])
    # Stored for the dashboard, like the evaluation task's result.
    [stored] = jobs.job_evaluations(job_id)
    assert stored["accuracy"] == summary["accuracy"] and stored["split"] == "test"

    rc, out, _ = run(capsys, "evaluate", job_id, "--split", "val", "--checkpoint", "last.pt")
    assert rc == 0
    assert f"job {job_id} · last.pt (epoch 2) on the val split" in out
    val = load_evaluation(jobs.job_dir(job_id), "last.pt", "val").summary
    assert f"top-1 accuracy  {val['accuracy']:.2%}" in out
    assert "confusion matrix (rows: true class, columns: predicted)" in out
    lines = out.splitlines()
    header = lines.index("confusion matrix (rows: true class, columns: predicted)")
    rows = [[int(v) for v in line.split()[1:]] for line in lines[header + 2:header + 12]]
    assert rows == val["confusion"]
    per_class = [line for line in lines if line.startswith("7 ")][0].split()
    m7 = val["per_class"][7]
    assert per_class == ["7", f"{m7['precision']:.3f}", f"{m7['recall']:.3f}",
                         f"{m7['f1']:.3f}", str(m7["support"])]
    assert len(jobs.job_evaluations(job_id)) == 2


def test_classify_folders_matches_evaluation(capsys, tmp_path, jobs_home, job_id):
    assert run(capsys, "evaluate", job_id, "--json")[0] == 0
    ev = load_evaluation(jobs.job_dir(job_id), "best.pt", "test")
    ds = open_dataset("digits", home=jobs_home)
    chosen = ev.indexes[:40]
    write_images(ds, chosen, tmp_path / "imgs")
    (tmp_path / "imgs" / "notes.txt").write_text("skipped: not an image")
    out_csv = tmp_path / "results.csv"
    rc, out, _ = run(capsys, "classify", job_id, str(tmp_path / "imgs"), "--labels", "folders",
                     "--csv", str(out_csv), "--json")
    assert rc == 0
    result = json.loads(out)
    assert result["images"] == 40 and result["errors"] == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 40
    # The PNGs are the dataset's own pixels: the same predictions as the evaluation's.
    predicted = {int(Path(r["file"]).stem[3:]): r["predicted"] for r in rows}
    expected = {int(i): ds.classes[p] for i, p in zip(ev.indexes[:40], ev.predicted[:40],
                                                      strict=True)}
    assert predicted == expected
    correct = np.mean([r["correct"] == "true" for r in rows])
    assert result["labelled"]["accuracy"] == pytest.approx(correct)
    assert np.asarray(result["labelled"]["confusion"]).sum() == 40


def test_classify_csv_labels_readable(capsys, tmp_path, jobs_home, job_id):
    ds = open_dataset("digits", home=jobs_home)
    paths = write_images(ds, ds.split("test")[:5], tmp_path / "imgs")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n" + "".join(f"{p.name},{p.parent.name}\n" for p in paths[:4]))
    rc, out, _ = run(capsys, "classify", job_id, *map(str, paths), "--labels", str(labels))
    assert rc == 0
    lines = out.splitlines()
    assert sum(line.startswith("img") for line in lines) == 5
    assert sum(line.endswith(("✓", "✗")) for line in lines) == 4  # the fifth has no label
    assert "5 images classified" in out and "1 without a label" in out
    assert "on the 4 labelled images:" in out


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STUDIO_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


def test_errors_are_one_line(capsys, tmp_path, jobs_home, job_id):
    p = cli(jobs_home, "evaluate", "nosuchjob")
    assert p.returncode == 2 and p.stderr.strip() == "error: no job 'nosuchjob'"
    for args, message in [
        (("evaluate", job_id, "--checkpoint", "nope.pt"), "has no checkpoint 'nope.pt'"),
        (("classify", job_id, str(tmp_path / "missing.zip")), "no such file or folder"),
        (("classify", job_id, str(tmp_path), "--labels", "nolabels.csv"),
         "--labels must be 'folders' or a CSV file"),
        (("classify", "nosuchjob", str(tmp_path)), "no job 'nosuchjob'"),
    ]:
        rc, out, err = run(capsys, *args)
        assert rc == 2 and out == "", args
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    task = jobs.submit_task("engine.evaluate", {}, parent=job_id, start_scheduler=False)
    rc, _, err = run(capsys, "evaluate", task)
    assert rc == 2 and "task job, not a training job" in err
    assert not list(io.StringIO(err))[1:]
