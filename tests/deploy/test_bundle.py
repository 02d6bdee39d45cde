"""Bundles: made from a run, read back by `python -m trt infer` in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.datasets import open_dataset
from engine.inference.predictor import Predictor
from trt.bundle import Bundle, make_bundle

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle(mnist_lenet, mnist_sample_home, tmp_path_factory):
    run_dir, _ = mnist_lenet
    out = tmp_path_factory.mktemp("bundle") / "lenet.zip"
    return out, make_bundle(run_dir, out, home=mnist_sample_home)


@pytest.fixture(scope="module")
def digit_pngs(mnist_sample_home, tmp_path_factory):
    """Six real held-out MNIST digits saved as PNG files, with their labels."""
    ds = open_dataset("mnist-sample", home=mnist_sample_home)
    folder = tmp_path_factory.mktemp("pngs")
    paths, labels = [], []
    for i in ds.split("test")[:6]:
        path = folder / f"test-{i}.png"
        Image.fromarray(np.asarray(ds.images[i])[:, :, 0]).save(path)
        paths.append(path)
        labels.append(ds.classes[int(ds.labels[i])])
    return paths, labels


def test_bundle_holds_model_labels_contract_and_readme(bundle, mnist_lenet):
    path, report = bundle
    names = set(zipfile.ZipFile(path).namelist())
    assert {"model.onnx", "labels.json", "preprocess.json", "metadata.json",
            "README.md"} <= names
    z = zipfile.ZipFile(path)
    predictor = Predictor(mnist_lenet[0])
    assert json.loads(z.read("labels.json")) == predictor.classes
    assert json.loads(z.read("preprocess.json")) == predictor.contract.to_dict()
    readme = z.read("README.md").decode()
    assert "onnxruntime" in readme and "preprocess.json" in readme
    assert report["export_check"]["top1_agreement"] == 1.0


def test_infer_cli_uses_onnxruntime_without_gpu(bundle, digit_pngs):
    path, _ = bundle
    pngs, labels = digit_pngs
    proc = subprocess.run([sys.executable, "-m", "trt", "infer", str(path),
                           *map(str, pngs), "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["backend"] == "onnxruntime-cpu"
    assert out["tensorrt_not_used"]  # the reason: no GPU here, or no engine in the bundle
    got = [r["label"] for r in out["results"]]
    assert got == labels
    assert all(0 < r["confidence"] <= 1 for r in out["results"])


def test_bundle_matches_predictor_on_a_dark_on_light_photo(bundle, digit_pngs, mnist_lenet,
                                                           tmp_path):
    """Inverted ink with --digit framing: the bundle prepares images as the engine does."""
    path, _ = bundle
    png = digit_pngs[0][0]
    inverted = tmp_path / "inverted.png"
    big = Image.open(png).resize((112, 112))
    Image.fromarray(255 - np.asarray(big)).save(inverted)
    opened = Bundle(path, prefer_tensorrt=False)
    predictor = Predictor(mnist_lenet[0])
    for digit in (False, True):
        want = predictor.predict([str(inverted)], digit=digit)[0]
        got = opened.classify([str(inverted)], digit=digit)[0]
        assert np.array_equal(opened.prepare(str(inverted), digit=digit), want.input)
        assert got["label"] == want.label
        assert got["confidence"] == pytest.approx(want.confidence, abs=1e-4)


def test_infer_cli_user_errors_are_one_line(tmp_path):
    not_a_bundle = tmp_path / "x.zip"
    not_a_bundle.write_text("nope")
    proc = subprocess.run([sys.executable, "-m", "trt", "infer", str(not_a_bundle), "a.png"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1


def test_bundle_with_engine_says_why_tensorrt_was_not_used(bundle, mnist_lenet,
                                                           mnist_sample_home, tmp_path):
    import torch

    from trt.builder import build_engine
    from trt.library import tensorrt_available

    if not tensorrt_available():
        pytest.skip("no TensorRT library to build an engine with")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: tests/gpu covers the TensorRT path")
    path, _ = bundle
    assert Bundle(path).fallback_reason == "the bundle has no TensorRT engine"
    assert Bundle(path, prefer_tensorrt=False).fallback_reason == "ONNX Runtime was asked for"
    run_dir = mnist_lenet[0]
    engine = tmp_path / "model.engine"
    build_engine(run_dir / "exports" / "model.onnx", engine, max_batch=8)
    with_engine = tmp_path / "with-engine.zip"
    make_bundle(run_dir, with_engine, engines=[engine], home=mnist_sample_home)
    opened = Bundle(with_engine)
    assert opened.backend == "onnxruntime-cpu"
    assert "needs an NVIDIA GPU" in opened.fallback_reason
