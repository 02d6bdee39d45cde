"""A temperature-scaled model deployed: the bundle carries T in preprocess.json, the KServe
server's /classify reports the calibrated confidence the bundle does, and a bundle with a
bad temperature is refused in one line."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from engine.evaluation.calibration import set_temperature
from testkit import trained_digits
from trt.bundle import Bundle, make_bundle
from trt.serve import ServeConfig, ServedModel, create_app

digits_run = trained_digits.digits_run
digit_images = trained_digits.digit_images
T = 2.0


@pytest.fixture(scope="module")
def calibrated_bundle(digits_run, digits_home, tmp_path_factory):
    run = tmp_path_factory.mktemp("calibrated") / "run"
    shutil.copytree(digits_run, run)
    set_temperature(run / "best.pt", T)
    return make_bundle(run, run / "bundle.zip", home=digits_home)["bundle"]


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_server_reports_calibrated_confidence(calibrated_bundle, digit_images):
    images, _ = digit_images
    with zipfile.ZipFile(calibrated_bundle) as z:
        assert json.loads(z.read("preprocess.json"))["temperature"] == T
        assert "temperature" in z.read("README.md").decode()
    bundle = Bundle(calibrated_bundle, prefer_tensorrt=False)
    batch = bundle.contract.prepare_batch(images)
    calibrated, raw = bundle.probabilities(batch), bundle.probabilities(batch, calibrated=False)
    assert np.all(calibrated.max(1) < raw.max(1) + 1e-7)  # T > 1 softens every answer
    model = ServedModel(calibrated_bundle, backend="onnxruntime", name="lenet")
    assert model.metadata()["parameters"]["preprocess"]["temperature"] == T
    with TestClient(create_app(model, ServeConfig(max_batch=8, max_delay_ms=2))) as client:
        files = [("file", (f"d{i}.png", png(a), "image/png")) for i, a in enumerate(images)]
        r = client.post("/classify", files=files)
    assert r.status_code == 200, r.text
    got = [x["confidence"] for x in r.json()["results"]]
    np.testing.assert_allclose(got, calibrated.max(1), atol=1e-5, rtol=0)


def test_a_bundle_with_a_bad_temperature_is_refused(calibrated_bundle, tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(calibrated_bundle) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "preprocess.json":
                data = json.dumps({**json.loads(data), "temperature": -1}).encode()
            dst.writestr(item, data)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        Bundle(bad, prefer_tensorrt=False)
