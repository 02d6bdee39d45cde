"""Evaluation metrics against scikit-learn, the galleries, and classify-many with bounded
memory."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import precision_recall_fscore_support, top_k_accuracy_score

from engine.evaluation.evaluate import (
    evaluate_checkpoint,
    load_evaluation,
    most_confused,
    pair_count,
    summarize,
)
from engine.inference.classify_many import classify_many
from testkit.mnist import read_idx_gz


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=500).astype(np.float32)
    labels = rng.integers(0, 10, 500)
    labels[:200] = probs[:200].argmax(1)  # some right, most wrong
    classes = [str(i) for i in range(10)]
    s = summarize(probs, labels, classes)
    pred = probs.argmax(1)
    assert np.array_equal(np.array(s["confusion"]), sk_confusion(labels, pred, labels=range(10)))
    p, r, f, support = precision_recall_fscore_support(labels, pred, labels=range(10),
                                                       zero_division=0)
    assert [m["precision"] for m in s["per_class"]] == pytest.approx(p)
    assert [m["recall"] for m in s["per_class"]] == pytest.approx(r)
    assert [m["f1"] for m in s["per_class"]] == pytest.approx(f)
    assert [m["support"] for m in s["per_class"]] == support.tolist()
    assert s["accuracy"] == pytest.approx((pred == labels).mean())
    assert s["top5"] == pytest.approx(top_k_accuracy_score(labels, probs, k=5,
                                                           labels=range(10)))
    assert s["macro_f1"] == pytest.approx(f.mean())


@pytest.fixture(scope="module")
def evaluated(mnist_lenet, mnist_sample_home):
    run_dir, _ = mnist_lenet
    summary = evaluate_checkpoint(run_dir, home=mnist_sample_home)
    return run_dir, summary


def test_confusion_matrix_of_trained_model(evaluated, mnist_lenet):
    run_dir, s = evaluated
    cm = np.array(s["confusion"])
    assert s["split"] == "test" and s["images"] == 2000 and cm.sum() == 2000
    assert np.trace(cm) / 2000 == pytest.approx(s["accuracy"])
    # The same figure the trainer reported for its best checkpoint on the held-out split.
    assert s["accuracy"] == pytest.approx(mnist_lenet[1].held_out["accuracy"], abs=1e-6)
    assert s["accuracy"] >= 0.975 and cm.shape == (10, 10)
    assert (cm.sum(1) == [m["support"] for m in s["per_class"]]).all()


def test_galleries(evaluated, mnist_files):
    run_dir, s = evaluated
    ev = load_evaluation(run_dir)
    assert ev is not None and ev.summary["split"] == "test"
    images, labels = (read_idx_gz(p) for p in mnist_files)
    mistakes = ev.confident_mistakes(10)
    assert len(mistakes) == min(10, 2000 - np.trace(np.array(s["confusion"])))
    confidences = [m["confidence"] for m in mistakes]
    assert confidences == sorted(confidences, reverse=True)
    for m in mistakes:
        assert labels[m["index"]] == m["true"] != m["predicted"]
        assert 8000 <= m["index"] < 10000  # indexes into the dataset, the held-out part
    top = ev.top_per_class(5)
    assert set(top) == set(range(10)) and all(len(v) == 5 for v in top.values())
    assert all(e["probability"] > 0.9 for v in top.values() for e in v)
    true, pred = mistakes[0]["true"], mistakes[0]["predicted"]
    pair = ev.pair(true, pred)
    assert mistakes[0]["index"] in pair
    assert all(labels[i] == true for i in pair)
    assert np.array(s["confusion"])[true, pred] == len(ev.pair(true, pred, limit=10_000))


def _zip_of_digits(path, images, labels, n):
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(images[i]).save(buf, format="PNG")
            zf.writestr(f"digits/{labels[i]}/img{i:05d}.png", buf.getvalue())
        zf.writestr("digits/README.txt", "not an image")
        zf.writestr("digits/3/broken.png", b"not a png")


def _classify_peak(run_dir, zip_path, csv_path) -> tuple[dict, int]:
    tracemalloc.start()
    try:
        result = classify_many(run_dir, [zip_path], labels="folders", out_csv=csv_path,
                               batch_size=128)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_classify_many_streams_with_bounded_memory(mnist_lenet, mnist_files, tmp_path):
    run_dir, _ = mnist_lenet
    images, labels = (read_idx_gz(p) for p in mnist_files)
    held_images, held_labels = images[8000:], labels[8000:]
    _zip_of_digits(tmp_path / "small.zip", held_images, held_labels, 200)
    _zip_of_digits(tmp_path / "big.zip", held_images, held_labels, 2000)
    small, small_peak = _classify_peak(run_dir, tmp_path / "small.zip", tmp_path / "s.csv")
    big, big_peak = _classify_peak(run_dir, tmp_path / "big.zip", tmp_path / "b.csv")
    assert big["images"] == 2000 and big["errors"] == 1  # the broken png, reported not fatal
    rows = (tmp_path / "b.csv").read_text().splitlines()
    assert len(rows) == 1 + 2000 + 1 and rows[0].startswith("file,label,predicted")
    assert big["labelled"]["accuracy"] >= 0.97
    assert np.array(big["labelled"]["confusion"]).sum() == 2000
    # Ten times the images, about the same peak: the data streams through in batches.
    print(f"peak traced memory: 200 images {small_peak / 1e6:.1f} MB, "
          f"2000 images {big_peak / 1e6:.1f} MB")
    assert big_peak < 1.5 * small_peak + 2_000_000


def test_classify_many_with_csv_labels(mnist_lenet, mnist_files, tmp_path):
    run_dir, _ = mnist_lenet
    images, labels = (read_idx_gz(p) for p in mnist_files)
    folder = tmp_path / "imgs"
    folder.mkdir()
    lines = ["file,label"]
    for i in range(9000, 9100):
        Image.fromarray(images[i]).save(folder / f"{i}.png")
        lines.append(f"{i}.png,{labels[i]}")
    (tmp_path / "labels.csv").write_text("\n".join(lines))
    result = classify_many(run_dir, [folder], labels=str(tmp_path / "labels.csv"))
    assert result["images"] == 100 and result["unlabelled"] == 0
    # A label joined to the wrong file would score near chance (10%); this LeNet scores 94-98
    # on these 100 (it varies with the CPU the fixture trained on), 97.8% on validation.
    assert result["labelled"]["accuracy"] >= 0.90
    unlabelled = classify_many(run_dir, [folder])
    assert "labelled" not in unlabelled and "9000.png" in unlabelled["csv"]
    # The accuracy is the share of files whose prediction is the label the CSV gives them.
    rows = list(csv.DictReader(io.StringIO(unlabelled["csv"])))
    truth = {f"{i}.png": str(labels[i]) for i in range(9000, 9100)}
    hits = sum(truth[Path(r["file"]).name] == r["predicted"] for r in rows)
    assert len(rows) == 100 and result["labelled"]["accuracy"] == pytest.approx(hits / 100)
    with pytest.raises(FileNotFoundError):
        classify_many(run_dir, [tmp_path / "missing.zip"])


@pytest.mark.parametrize("classes", [12, 120])
def test_pair_counts_and_the_most_confused_pair_with_and_without_a_matrix(classes):
    """Above 100 classes a summary keeps the top confusions instead of the matrix; the pair
    counts and the most confused pair read the same from either."""
    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, 3000)
    pred = np.where(rng.random(3000) < 0.7, labels, rng.integers(0, classes, 3000))
    pred[labels == 5] = 7  # one pair stands out
    probs = np.full((3000, classes), 0.1 / classes, np.float32)
    probs[np.arange(3000), pred] = 0.9
    s = summarize(probs, labels, [f"c{i}" for i in range(classes)])
    assert (s["confusion"] is None) == (classes > 100)
    cm = sk_confusion(labels, pred, labels=range(classes))
    assert most_confused(s) == (5, 7)
    for t, p in [(5, 7), (3, 3), (0, 0), (5, 5)]:
        assert pair_count(s, t, p) == cm[t, p]
    if classes > 100:  # a rare pair outside the top list is unknown, never a wrong number
        kept = {(t, p) for t, p, _ in s["top_confusions"]}
        rare = next((t, p) for t in range(classes) for p in range(classes)
                    if t != p and (t, p) not in kept)
        assert pair_count(s, *rare) is None


def _store(run_dir, n: int) -> None:
    base = run_dir / "evaluations"
    base.mkdir(parents=True, exist_ok=True)
    probs = np.full((n, 2), 0.5, dtype=np.float32)
    np.savez_compressed(base / "best-test.npz", indexes=np.arange(n), labels=np.zeros(n, int),
                        probs=probs)
    (base / "best-test.json").write_text(json.dumps({"images": n, "split": "test"}))


def test_stored_evaluation_is_read_once_per_version(tmp_path):
    """The Job page asks for the evaluation on every rerun: the same files give the same
    (read-only) object; new files give the new evaluation; gone files give None."""
    _store(tmp_path, 3)
    first = load_evaluation(tmp_path, "best.pt", "test")
    assert load_evaluation(tmp_path, "best.pt", "test") is first
    assert first.summary["images"] == 3 and len(first.probs) == 3
    with pytest.raises(ValueError):
        first.probs[0, 0] = 1.0  # shared between sessions: nobody may change it
    _store(tmp_path, 5)  # evaluated again
    again = load_evaluation(tmp_path, "best.pt", "test")
    assert again is not first and again.summary["images"] == 5 and len(again.labels) == 5
    for p in (tmp_path / "evaluations").iterdir():
        p.unlink()
    assert load_evaluation(tmp_path, "best.pt", "test") is None
