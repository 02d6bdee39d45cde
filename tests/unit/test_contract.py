"""The preprocessing contract: one definition, and every path to a network input agrees with it.

The same images go through training-time batches (the trainer's Split and normalizer), the
PyTorch Predictor, the ONNX Runtime backend and an exported bundle; the tensors must be identical,
not merely close.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from engine.datasets import open_dataset
from engine.images.contract import Contract, ContractError
from engine.inference.classify import prepare
from engine.inference.predictor import Predictor
from engine.training import TrainConfig, train
from engine.training.data import Split
from trt.backends import OnnxBackend
from trt.bundle import Bundle, make_bundle


@pytest.fixture(scope="module")
def trained(digits_home, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("contract") / "run"
    train(TrainConfig(dataset="digits", network="lenet", epochs=1, seed=0), run_dir,
          home=digits_home)
    bundle = make_bundle(run_dir, run_dir / "bundle.zip", home=digits_home)
    return run_dir, bundle["bundle"]


def _photo(seed: int) -> bytes:
    """A dark-on-light 'photo' of a stroke, as a user would upload (PNG bytes)."""
    rng = np.random.default_rng(seed)
    a = np.full((60, 45), 210, np.uint8) + rng.integers(0, 20, (60, 45), dtype=np.uint8)
    a[10:50, 20:26] = 40
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def test_dataset_images_normalize_identically_everywhere(trained, digits_home):
    run_dir, bundle_zip = trained
    ds = open_dataset("digits", home=digits_home)
    index = ds.split("val")[:32]
    images = np.asarray(ds.images[np.sort(index)])

    # Training: the trainer's Split on the CPU and the dataset's normalizer.
    split = Split(ds.images, ds.labels, np.sort(index), torch.device("cpu"))
    (xb, _), = split.batches(torch.arange(len(index)), batch_size=len(index))
    training = ds.contract.torch_normalizer("cpu")(xb).numpy()

    predictor = Predictor(run_dir / "best.pt")
    onnx = OnnxBackend(run_dir / "best.pt")
    bundle = Bundle(bundle_zip, prefer_tensorrt=False)
    assert predictor.contract == onnx.contract == bundle.contract == ds.contract
    through_predictor = predictor.tensor(images).numpy()
    through_onnx = onnx.contract.normalize(images)
    through_bundle = bundle.contract.normalize(images)
    for got in (through_predictor, through_onnx, through_bundle):
        assert got.dtype == np.float32 and np.array_equal(got, training)


@pytest.mark.parametrize("digit", [True, False])
def test_uploads_are_prepared_identically_everywhere(trained, digit):
    run_dir, bundle_zip = trained
    predictor = Predictor(run_dir / "best.pt")
    onnx = OnnxBackend(run_dir / "best.pt")
    bundle = Bundle(bundle_zip, prefer_tensorrt=False)
    for seed in range(3):
        photo = _photo(seed)
        want = predictor.prepare(photo, digit=digit)
        assert want.shape == (28, 28, 1) and want.dtype == np.uint8
        assert np.array_equal(prepare(onnx, photo, digit=digit), want)
        assert np.array_equal(bundle.prepare(photo, digit=digit), want)
    # The bundle's answer is the predictor's, from the same prepared input.
    probs = predictor.probabilities(want[None])[0]
    [answer] = bundle.classify([photo], digit=digit)
    assert answer["label"] == predictor.classes[int(probs.argmax())]
    assert answer["confidence"] == pytest.approx(float(probs.max()), abs=1e-5)


def test_calibrated_probabilities_agree_everywhere(trained, digits_home, tmp_path):
    """A fitted temperature travels in the contract: PyTorch, ONNX Runtime (an export made
    before calibrating included) and a bundle made after give the same calibrated
    probabilities, and all can still give the raw ones."""
    import shutil

    from engine.evaluation.calibration import set_temperature

    run_dir = tmp_path / "run"
    shutil.copytree(trained[0], run_dir)
    set_temperature(run_dir / "best.pt", 2.5)
    onnx = OnnxBackend(run_dir / "best.pt")  # its export was made at T = 1, before this
    assert '"temperature": 1.0' in next((run_dir / "exports").glob("*.json")).read_text()
    bundle_zip = make_bundle(run_dir, tmp_path / "bundle.zip", home=digits_home)["bundle"]
    ds = open_dataset("digits", home=digits_home)
    images = np.asarray(ds.images[np.sort(ds.split("val")[:64])])

    predictor = Predictor(run_dir / "best.pt")
    bundle = Bundle(bundle_zip, prefer_tensorrt=False)
    assert predictor.contract.temperature == onnx.contract.temperature \
        == bundle.contract.temperature == 2.5
    want = predictor.probabilities(images)
    raw = predictor.probabilities(images, calibrated=False)
    assert np.abs(want - raw).max() > 1e-2  # the temperature really changes them
    for got in (onnx.probabilities(images), bundle.probabilities(images)):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    for got in (onnx.probabilities(images, calibrated=False),
                bundle.probabilities(images, calibrated=False)):
        np.testing.assert_allclose(got, raw, atol=1e-5, rtol=0)
    answer = bundle.classify([images[0]], digit=False)[0]
    assert answer["confidence"] == pytest.approx(float(want[0].max()), abs=1e-5)


def test_contract_round_trips_and_fills_defaults():
    c = Contract.from_dict({"channels": 3, "height": 32, "width": 32, "mean": [0.5]})
    assert c.mean == (0.5, 0.5, 0.5) and c.std == (1.0, 1.0, 1.0) and c.scale == 255.0
    assert Contract.from_dict(c.to_dict()) == c
    old = Contract.from_dict({"mean": [0.1], "std": [0.3], "polarity": "white-on-black"},
                             input_shape=(1, 28, 28))
    assert old.input_shape == (1, 28, 28) and old.framing == "none"


@pytest.mark.parametrize("bad, field", [
    ({"channels": 2, "height": 28, "width": 28}, "channels"),
    ({"channels": 1, "height": 0, "width": 28}, "size"),
    ({"channels": 1, "height": 28, "width": 28, "resize_mode": "zoom"}, "resize_mode"),
    ({"channels": 1, "height": 28, "width": 28, "polarity": "upside-down"}, "polarity"),
    ({"channels": 1, "height": 28, "width": 28, "std": [float("nan")]}, "std"),
    ({"channels": 3, "height": 28, "width": 28, "mean": [0.1, 0.2]}, "mean"),
    ({"channels": 1, "height": 28, "width": 28, "temperature": 0}, "temperature"),
    ({"channels": "one", "height": 28, "width": 28}, "malformed"),
    ([1, 28, 28], "mapping"),
])
def test_bad_contracts_are_refused_with_the_field_named(bad, field):
    with pytest.raises(ContractError, match=field):
        Contract.from_dict(bad)


def test_normalization_follows_scale_mean_and_std():
    c = Contract(1, 2, 2, mean=(0.5,), std=(0.25,), scale=100.0)
    x = np.array([[[[0], [50]], [[100], [200]]]], dtype=np.uint8)
    want = (np.array([0, 50, 100, 200], np.float32) / 100 - 0.5) / 0.25
    assert np.array_equal(c.normalize(x).ravel(), want)
    assert np.array_equal(c.torch_normalizer().from_nhwc(x).numpy().ravel(), want)
