"""Penultimate-layer embeddings (engine/evaluation/embedding.py) of a LeNet trained on the
offline digits: the features' width, a 2-D point per image, and photos landing off the data."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.decomposition import PCA

from engine.datasets import open_dataset
from engine.evaluation import embedding
from engine.inference.predictor import Predictor
from testkit.digit_images import digit_photo


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.ndim == 3 else image).save(buf, "PNG")
    return buf.getvalue()


def test_features_are_the_last_linear_input(lenet_run, digits_home):
    predictor = Predictor(lenet_run / "best.pt")
    head = embedding.last_linear(predictor.model)
    assert head.out_features == len(predictor.classes)
    ds = open_dataset("digits", home=digits_home)
    images = np.asarray(ds.images[ds.split("test")[:37]])
    feats, probs = embedding.embed_with_probs(predictor, images, batch_size=16)
    assert feats.shape == (37, head.in_features) == (37, 500)  # LeNet's ip1 width
    # the head applied to the features is the network's own output
    logits = head(torch.from_numpy(feats))
    np.testing.assert_allclose(torch.softmax(logits, 1).detach().numpy(), probs, atol=1e-5)
    np.testing.assert_allclose(probs, predictor.probabilities(images), atol=1e-5)
    np.testing.assert_allclose(embedding.embed(lenet_run / "best.pt", images), feats, atol=1e-5)
    with pytest.raises(ValueError, match=r"prepared N x 28 x 28 x 1"):
        embedding.embed(predictor, images[:, :10])


def test_project_is_pca_fitted_on_the_held_out_rows():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 8)).astype(np.float32)
    fit = np.arange(50) < 40
    xy = embedding.project(feats, fit)
    assert xy.shape == (50, 2)
    want = PCA(n_components=2, random_state=0).fit(feats[:40]).transform(feats)
    np.testing.assert_allclose(np.abs(xy), np.abs(want), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="method must be one of"):
        embedding.project(feats, method="tsne")
    with pytest.raises(ValueError, match="non-empty N x D"):
        embedding.project(np.zeros((0, 3)))
    if not embedding.umap_available():
        with pytest.raises(ValueError, match="umap-learn"):
            embedding.project(feats, method="umap")


def test_novelty_ranks_far_points_high():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(200, 4))
    far = embedding.novelty(ref, np.array([[0.0, 0, 0, 0], [40.0, 40, 40, 40]]))
    assert far[0] < 0.5 and far[1] == 1.0


def test_embedding_view_places_photos_off_the_digits(lenet_run, digits_home):
    ds = open_dataset("digits", home=digits_home)
    train = ds.split("train")
    probes = [  # training images drawn like the data, and photos shown without MNIST framing
        {"id": 1, "label": ds.classes[ds.labels[train[0]]], "image": png(ds.images[train[0]]),
         "digit": False, "polarity": "as-is"},
        {"id": 2, "label": ds.classes[ds.labels[train[1]]], "image": png(ds.images[train[1]]),
         "digit": False, "polarity": "as-is"},
        {"id": 3, "label": "3", "image": digit_photo(3), "digit": False, "polarity": "as-is"},
        {"id": 4, "label": "7", "image": digit_photo(7), "digit": False, "polarity": "as-is"},
        {"id": 5, "label": "1", "image": png(np.zeros((28, 28), np.uint8)), "digit": True,
         "polarity": "auto"},  # blank: nothing to frame, left out
    ]
    view = embedding.embedding_view(lenet_run / "best.pt", "test", probes, limit=120,
                                    home=digits_home)
    held = [p for p in view.points if p["kind"] == "test image"]
    assert len(held) == 120 and view.width == 500 and view.skipped_probes == 1
    got = view.probe_points()
    assert [p["id"] for p in got] == ["probe #1", "probe #2", "probe #3", "probe #4"]
    assert all(np.isfinite([p["x"], p["y"]]).all() for p in view.points)
    assert all(p["image"].startswith("data:image/png;base64,") for p in view.points)
    assert {p["label"] for p in held} <= set(ds.classes)
    # the photos are farther from the test images than nearly all of them; the digits are not
    assert got[2]["novelty"] > 0.9 and got[3]["novelty"] > 0.9, [p["novelty"] for p in got]
    assert got[0]["novelty"] < 0.9 and got[1]["novelty"] < 0.9, [p["novelty"] for p in got]
    with pytest.raises(ValueError, match="at least 2"):
        embedding.embedding_view(lenet_run / "best.pt", limit=1, home=digits_home)
