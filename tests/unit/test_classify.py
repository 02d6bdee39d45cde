"""engine.inference.classify: the backend registry, classifying drawings and uploads, and what
the network sees inside (feature maps, filters, statistics, saliency)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.images import pictures
from engine.images.framing import EmptyDrawing
from engine.inference import backends, inside
from engine.inference import classify as cl
from testkit.drawings import draw_one


def test_registry(lenet_run):
    assert "pytorch-cpu" in backends.available_backends()
    backend = backends.get_backend("pytorch-cpu", lenet_run)
    assert isinstance(backend, backends.Backend) and backend.name == "pytorch-cpu"
    assert backends.get_backend("pytorch-cpu", lenet_run / "best.pt") is backend  # cached
    with pytest.raises(KeyError, match="unknown backend"):
        backends.get_backend("nope", lenet_run)

    class Fake:
        name, classes, contract = "fake", backend.classes, backend.contract

        def __init__(self, checkpoint, bias=0):
            self.bias = bias

        def probabilities(self, batch):
            p = np.zeros((len(batch), len(self.classes)), np.float32)
            p[:, self.bias] = 1
            return p

    backends.register_backend("fake", Fake, "Fake runtime", bias=3)
    try:
        assert backends.available_backends()["fake"] == "Fake runtime"
        result = cl.classify(backends.get_backend("fake", lenet_run), draw_one())
        assert result.label == backend.classes[3] and result.confidence == 1.0
    finally:
        backends._REGISTRY.pop("fake")


@pytest.mark.parametrize("style,polarity", [("MNIST", "as-is"), ("paper", "invert"),
                                            ("paper", "auto")])
def test_classify_drawing(lenet_run, style, polarity):
    backend = backends.get_backend("pytorch-cpu", lenet_run)
    result = cl.classify(backend, draw_one(style), top_k=5, polarity=polarity)
    assert result.input.shape == (28, 28, 1) and result.input.dtype == np.uint8
    assert result.input[14, 14, 0] > 200 and result.input[0, 0, 0] == 0  # white ink on black
    assert len(result.top) == 5 and result.top[0][1] >= result.top[1][1]
    assert np.isclose(result.probabilities.sum(), 1, atol=1e-4)
    assert result.label == "1"


def test_empty_canvas(lenet_run):
    backend = backends.get_backend("pytorch-cpu", lenet_run)
    blank = np.zeros((280, 280, 4), np.uint8)
    blank[..., 3] = 255
    with pytest.raises(EmptyDrawing, match="draw something"):
        cl.classify(backend, blank)
    results = cl.classify_batch(backend, [blank, draw_one()])
    assert results[0] is None and results[1].label == "1"


def test_classify_upload_bytes(lenet_run):
    buf = io.BytesIO()
    Image.fromarray(draw_one("paper")).convert("RGB").save(buf, format="JPEG")
    backend = backends.get_backend("pytorch-cpu", lenet_run)
    assert cl.classify(backend, buf.getvalue()).label == "1"


def test_inside_the_model(lenet_run):
    backend = backends.get_backend("pytorch-cpu", lenet_run)
    seen = cl.classify(backend, draw_one()).input
    view = inside.look_inside(backend, seen)
    (n1, m1), (n2, m2) = view.feature_maps
    assert n1.endswith("conv") and m1.shape == (20, 24, 24) and m2.shape == (50, 8, 8)
    assert view.filters.shape == (20, 5, 5)
    assert view.filters.min() == 0 and view.filters.max() == 1
    assert len(view.stats) == len(backend.predictor.model)
    last = view.stats[-1]
    assert last.shape == (10,) and last.min <= last.mean <= last.max
    relu = next(s for s in view.stats if s.name.endswith("relu"))
    assert relu.min >= 0 and 0 <= relu.zero_fraction <= 1
    assert view.saliency.shape == (28, 28)
    assert view.saliency.max() == 1 and view.saliency.min() >= 0
    # The gradient lives on the ink, not on the far corners.
    assert view.saliency[8:20, 10:18].mean() > view.saliency[:4, :4].mean()


def test_pictures():
    maps = np.random.default_rng(0).random((7, 4, 4)).astype(np.float32)
    g = inside.grid(maps, cols=3, cell=8, pad=1)
    assert g.dtype == np.uint8 and g.shape == (3 * 9 + 1, 3 * 9 + 1)
    big = pictures.enlarge(np.zeros((28, 28, 1), np.uint8), 196)
    assert big.shape == (196, 196)
    over = inside.saliency_overlay(np.zeros((28, 28, 1), np.uint8), np.ones((28, 28)), 56)
    assert over.shape == (56, 56, 3) and over[..., 0].max() == 255


def test_look_inside_needs_torch(lenet_run):
    class Other:
        pass

    with pytest.raises(TypeError, match="PyTorch"):
        inside.look_inside(Other(), np.zeros((28, 28, 1), np.uint8))
