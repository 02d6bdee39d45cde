"""Bring your own model: an ONNX classifier made elsewhere (fixed batch, its own tensor names),
imported with its labels and preprocessing, through variants, engine build, bundle and server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

from engine.datasets import open_dataset
from engine.inference.predictor import Predictor
from testkit import trained_digits
from trt.bundle import Bundle, make_bundle
from trt.byo import contract, import_onnx, import_upload, read_labels
from trt.serve import ServedModel, create_app

digits_run = trained_digits.digits_run
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def foreign(digits_run, tmp_path_factory):
    """The run's network exported by hand as someone else would: batch fixed at 1, input
    'pixels', output 'scores'; with a labels file and a folder of labelled PNGs."""
    predictor = Predictor(digits_run)
    folder = tmp_path_factory.mktemp("foreign")
    onnx_path = folder / "their-model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(predictor.model.eval(), (torch.zeros(1, 1, 28, 28),), str(onnx_path),
                          input_names=["pixels"], output_names=["scores"], opset_version=17,
                          dynamo=False)
    (folder / "labels.txt").write_text("\n".join(predictor.classes) + "\n")
    return folder, onnx_path, predictor


@pytest.fixture(scope="module")
def calibration(foreign, digits_home):
    folder, _, predictor = foreign
    ds = open_dataset("digits", home=digits_home)
    images, labels = [], []
    for i in ds.split("test")[:120]:
        name = ds.classes[int(ds.labels[i])]
        path = folder / "calib" / name / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(ds.images[i])[:, :, 0]).save(path)
        images.append(np.asarray(ds.images[i]))
        labels.append(int(ds.labels[i]))
    return folder / "calib", np.stack(images), np.asarray(labels)


def test_byo_onnx_through_variants_build_bundle_and_server(foreign, calibration, tmp_path):
    folder, onnx_path, predictor = foreign
    calib, images, labels = calibration
    pp = predictor.contract.to_dict()
    assert onnx.load(str(onnx_path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    out = tmp_path / "imported"
    report = import_onnx(onnx_path, out, read_labels(folder / "labels.txt"),
                         contract(28, 28, 1, pp["mean"], pp["std"], polarity=pp["polarity"]),
                         calibration_folder=calib)
    assert report["input"]["name"] == "pixels" and report["output"]["name"] == "scores"
    assert report["check"]["images"] == 64 and report["check"]["top1_agreement"] == 1.0
    assert report["check"]["max_abs_diff"] < 1e-4  # the batch axis does not mix images
    assert json.loads((out / "byo.json").read_text())["batch_axis_made_dynamic"] is True

    bundle = make_bundle(out, out / "exports" / "bundle.zip", variants=["fp32", "fp16", "int8"])
    variants = bundle["variants"]
    want = (predictor.probabilities(images).argmax(1) == labels).mean()
    assert variants["fp32"]["accuracy"] == pytest.approx(want)  # scored on the labelled folder
    assert variants["fp16"]["accuracy"] == pytest.approx(want, abs=0.02)
    assert variants["int8"]["accuracy"] > 0.5
    opened = Bundle(out / "exports" / "bundle.zip", prefer_tensorrt=False)
    got = [r["label"] for r in opened.classify([a[:, :, 0] for a in images[:10]])]
    assert got == [p.label for p in predictor.predict([a[:, :, 0] for a in images[:10]])]

    served = ServedModel(out / "exports" / "bundle.zip", backend="onnxruntime")
    assert served.name == "imported" and served.input_name == "pixels"
    with TestClient(create_app(served)) as c:
        meta = c.get("/v2/models/imported").json()
        assert meta["inputs"][0]["name"] == "pixels" and meta["outputs"][0]["name"] == "scores"
        png = (calib / predictor.classes[labels[0]]).glob("*.png").__next__().read_bytes()
        r = c.post("/classify", content=png, headers={"content-type": "image/png"})
        assert r.status_code == 200 and r.json()["results"][0]["label"] == got[0]


def test_byo_engine_build(foreign, calibration, tmp_path):
    from trt.builder import build_engine
    from trt.library import tensorrt_available

    if not tensorrt_available():
        pytest.skip("no TensorRT library to build an engine with")
    folder, onnx_path, predictor = foreign
    out = tmp_path / "imported"
    pp = predictor.contract.to_dict()
    import_onnx(onnx_path, out, predictor.classes,
                contract(28, 28, 1, pp["mean"], pp["std"], polarity=pp["polarity"]),
                calibration_folder=calibration[0])
    meta = build_engine(out / "exports" / "model.onnx", out / "exports" / "engines" /
                        "fp32.engine", max_batch=16)
    assert meta["inputs"][0]["name"] == "pixels" and meta["inputs"][0]["shape"][0] == -1
    bundle = make_bundle(out, tmp_path / "with-engine.zip",
                         engines=[out / "exports" / "engines" / "fp32.engine"])
    assert "engines/fp32.engine" in bundle["files"]


def test_byo_mistakes_are_one_line_errors(foreign, tmp_path):
    folder, onnx_path, predictor = foreign
    pp = contract(32, 32, 1, 0.5, 0.5)  # the model takes 28x28
    with pytest.raises(ValueError, match="input is 1x1x28x28"):
        import_onnx(onnx_path, tmp_path / "a", predictor.classes, pp)
    with pytest.raises(ValueError, match=r"must be \[batch, 3\]"):
        import_onnx(onnx_path, tmp_path / "b", ["x", "y", "z"], contract(28, 28, 1, 0, 1))
    with pytest.raises(ValueError, match="mean and std need 3"):
        contract(28, 28, 3, [0.5], [0.5])
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        import_onnx(bad, tmp_path / "c", predictor.classes, contract(28, 28, 1, 0, 1))
    proc = subprocess.run([sys.executable, "-m", "trt", "import", str(onnx_path), "--labels",
                           str(folder / "labels.txt"), "--out", str(tmp_path / "d"), "--size",
                           "28"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --size")


def test_byo_cli_import_and_bundle(foreign, calibration, tmp_path):
    folder, onnx_path, predictor = foreign
    pp = predictor.contract.to_dict()
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "trt", "import", str(onnx_path), "--labels",
                           str(folder / "labels.txt"), "--out", str(out), "--mean",
                           str(pp["mean"][0]), "--std", str(pp["std"][0]), "--polarity",
                           pp["polarity"], "--calibration", str(calibration[0]), "--bundle",
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["check"]["top1_agreement"] == 1.0
    assert (out / "exports" / "bundle.zip").exists()
    infer = subprocess.run([sys.executable, "-m", "trt", "infer", str(out / "exports" /
                            "bundle.zip"), *map(str, sorted(calibration[0].rglob("*.png"))[:3]),
                            "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert infer.returncode == 0, infer.stderr
    assert len(json.loads(infer.stdout)["results"]) == 3


def test_import_upload_with_a_zip_of_calibration_images(foreign, calibration, tmp_path):
    import io
    import zipfile

    from trt.byo import imports_dir, list_imports

    folder, onnx_path, predictor = foreign
    calib = calibration[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(calib.rglob("*.png"))[:40]:
            z.write(p, f"calib/{p.parent.name}/{p.name}")
        z.writestr("../escape.png", b"x")  # a path leaving the folder is ignored
        z.writestr("notes.txt", "not an image")
    home = tmp_path / "workspace"
    pp = predictor.contract.to_dict()
    r = import_upload("their-lenet", onnx_path.read_bytes(), "\n".join(predictor.classes),
                      contract(28, 28, 1, pp["mean"], pp["std"], polarity=pp["polarity"]),
                      calibration_zip=buf.getvalue(), home=home)
    root = imports_dir(home) / "their-lenet"
    assert list_imports(home) == [root]
    assert len(list((root / "calibration").rglob("*.png"))) == 40
    assert not (tmp_path / "escape.png").exists() and not (imports_dir(home) /
                                                           "escape.png").exists()
    assert r["check"]["images"] == 40 and r["check"]["top1_agreement"] == 1.0
    with pytest.raises(ValueError, match="name may hold"):
        import_upload("../x", b"", "a\nb", contract(28, 28, 1, 0, 1), home=home)
    with pytest.raises(ValueError, match="must be a .zip"):
        import_upload("y", onnx_path.read_bytes(), "\n".join(predictor.classes),
                      contract(28, 28, 1, 0, 1), calibration_zip=b"nope", home=home)


def test_damage_and_profile_cli_on_an_imported_model(foreign, calibration, tmp_path):
    folder, onnx_path, predictor = foreign
    pp = predictor.contract.to_dict()
    out = tmp_path / "imp"
    import_onnx(onnx_path, out, predictor.classes,
                contract(28, 28, 1, pp["mean"], pp["std"], polarity=pp["polarity"]),
                calibration_folder=calibration[0])
    proc = subprocess.run([sys.executable, "-m", "trt", "damage", str(out), "--precisions",
                           "fp32,fp16", "--batches", "1,4", "--seconds", "0.05", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert set(r["variants"]) == {"fp32", "fp16"}
    assert sum(row["best"] for row in r["accuracy_latency"]) == 2  # one per batch size
    assert (out / "exports" / "damage.json").exists()
    served = ServedModel(out, backend="onnxruntime")  # the folder: its bundle is made
    assert served.name == "imp" and (out / "exports" / "bundle.zip").exists()
    with pytest.raises(ValueError, match="imported ONNX model, with no PyTorch checkpoint"):
        ServedModel(out, backend="pytorch")  # nothing for PyTorch to run (the Deploy page
    # offers no pytorch backend for it)
    prof = subprocess.run([sys.executable, "-m", "trt", "profile", str(out / "exports" /
                           "model.onnx"), "--runs", "3"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert prof.returncode == 0, prof.stderr
    assert prof.stdout.splitlines()[0].startswith("operator") and "Conv" in prof.stdout
    assert re.search(r"graph optimization level '(extended|all)'", prof.stdout.splitlines()[-1])
