"""Where images land in a network's feature space: the penultimate layer, projected to 2-D.

The features are the input of the network's last Linear layer (what the classifier head
separates), caught with a forward hook so every network of the zoo, spec or torchvision, works
unchanged. Held-out images of the dataset and a probe board's real-world photos go through the
same checkpoint; PCA (or UMAP where `umap` is installed) is fitted on the held-out images only,
so the probes are placed in the dataset's map rather than bending it. The lab's lesson shows:
photos that are not like MNIST land away from the digit clusters, which `novelty` measures as
the distance to their nearest held-out neighbours, ranked among the held-out images' own.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from engine.images.framing import EmptyDrawing
from engine.images.pictures import enlarge
from engine.inference.predictor import Predictor

METHODS = ("pca", "umap")
THUMB_PX = 56  # tooltip thumbnails: small PNGs, since every point carries one
NEIGHBOURS = 5


def umap_available() -> bool:
    """Whether the optional umap-learn package can be imported here."""
    try:
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


def last_linear(model: nn.Module) -> nn.Linear:
    """The network's last Linear layer (its classifier); ValueError when it has none."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("this network has no Linear layer, so no penultimate features to show")
    return linears[-1]


def _predictor(checkpoint: str | os.PathLike | Predictor, device: str) -> Predictor:
    return checkpoint if isinstance(checkpoint, Predictor) else Predictor(checkpoint, device)


@torch.no_grad()
def embed_with_probs(checkpoint: str | os.PathLike | Predictor, images: np.ndarray,
                     batch_size: int = 256, device: str = "cpu"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(features N x D, probabilities N x C) of prepared uint8 N x H x W x C images, in one
    pass: D is the in_features of the last Linear layer."""
    predictor = _predictor(checkpoint, device)
    images = np.asarray(images)
    expected = (predictor.contract.height, predictor.contract.width, predictor.contract.channels)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(f"images must be prepared N x {' x '.join(map(str, expected))} "
                         f"(Contract.prepare), not {images.shape}")
    head = last_linear(predictor.model)
    caught: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inputs, _out: caught.append(
        inputs[0].detach().flatten(1).float().cpu()))
    features = np.empty((len(images), head.in_features), np.float32)
    probs = np.empty((len(images), len(predictor.classes)), np.float32)
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            caught.clear()
            logits = predictor.model(predictor.tensor(batch))
            features[start:start + len(batch)] = caught[-1].numpy()
            probs[start:start + len(batch)] = torch.softmax(logits, 1).cpu().numpy()
    finally:
        hook.remove()
    return features, probs


def embed(checkpoint: str | os.PathLike | Predictor, images: np.ndarray,
          batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    """Penultimate-layer features (N x in_features of the last Linear) of prepared images."""
    return embed_with_probs(checkpoint, images, batch_size, device)[0]


def project(features: np.ndarray, fit: np.ndarray | None = None, method: str = "pca",
            seed: int = 0) -> np.ndarray:
    """2-D coordinates (N x 2) of features, the projection fitted on the rows where `fit` is
    True (all rows when None) and applied to every row."""
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(f"features must be a non-empty N x D array, not {features.shape}")
    fit = np.ones(len(features), bool) if fit is None else np.asarray(fit, bool)
    if fit.shape != (len(features),) or not fit.any():
        raise ValueError("fit must be one flag per feature row, some of them True")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    base = features[fit]
    if method == "umap":
        if not umap_available():
            raise ValueError("UMAP needs the umap-learn package (pip install umap-learn); "
                             "use pca")
        import umap

        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, max(2, len(base) - 1)),
                            random_state=seed)
    else:
        from sklearn.decomposition import PCA

        if len(base) < 2 or features.shape[1] < 2:
            raise ValueError("PCA to 2-D needs at least 2 fitted rows of 2 features")
        reducer = PCA(n_components=2, random_state=seed)
    reducer.fit(base)
    return np.asarray(reducer.transform(features), np.float32)


def novelty(reference: np.ndarray, queries: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """For each query row, the share (0..1) of reference rows whose own mean distance to their
    k nearest other reference rows is smaller than the query's to its k nearest: near 1 means
    farther from the data than almost every held-out image (Sun et al., 2022, deep kNN)."""
    from sklearn.neighbors import NearestNeighbors

    reference = np.asarray(reference, np.float32)
    queries = np.asarray(queries, np.float32)
    if len(queries) == 0:
        return np.zeros(0)
    k = max(1, min(k, len(reference) - 1))
    nn_ = NearestNeighbors(n_neighbors=k + 1).fit(reference)
    own = nn_.kneighbors(reference)[0][:, 1:].mean(1)  # skip each point itself
    theirs = nn_.kneighbors(queries, n_neighbors=k)[0].mean(1)
    return np.searchsorted(np.sort(own), theirs, side="left") / len(own)


def thumbnail(image: np.ndarray, size: int = THUMB_PX) -> str:
    """A PNG data URL of an image enlarged to about `size` px (a chart tooltip shows it)."""
    buf = io.BytesIO()
    Image.fromarray(enlarge(image, size)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class EmbeddingView:
    """Points of one checkpoint's embedding: held-out images, then probes."""

    method: str
    width: int  # the penultimate features' width
    split: str
    points: list[dict[str, Any]] = field(default_factory=list)
    skipped_probes: int = 0  # blank images: nothing to embed

    def probe_points(self) -> list[dict[str, Any]]:
        return [p for p in self.points if p["kind"] == "probe"]


def prepare_probes(predictor: Predictor, probes: list[dict[str, Any]]
                   ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Probe board images under the checkpoint's contract (with each probe's polarity and
    framing), and the probes kept: blank ones are left out."""
    seen, kept = [], []
    for p in probes:
        try:
            seen.append(predictor.prepare(Image.open(io.BytesIO(p["image"])),
                                          digit=p["digit"], polarity=p["polarity"]))
        except EmptyDrawing:
            continue
        kept.append(p)
    c = predictor.contract
    empty = np.zeros((0, c.height, c.width, c.channels), np.uint8)
    return (np.stack(seen) if seen else empty), kept


def embedding_view(checkpoint: str | os.PathLike, split: str | None = None,
                   probes: list[dict[str, Any]] | None = None, limit: int = 600,
                   method: str = "pca", home: str | os.PathLike | None = None,
                   device: str = "cpu", seed: int = 0) -> EmbeddingView:
    """Embed up to `limit` held-out images of the checkpoint's dataset (`split`: test, else
    val) and the given probes (list_probes rows), project them, and return one point per
    image with its class, prediction, thumbnail and, for probes, novelty."""
    from engine.evaluation.evaluate import trained_dataset

    if limit < 2:
        raise ValueError("an embedding needs at least 2 held-out images")
    predictor = Predictor(Path(checkpoint), device)
    ds = trained_dataset(predictor, home)
    split = split or ("test" if len(ds.split("test")) else "val")
    index = np.asarray(ds.split(split))
    if len(index) < 2:
        raise ValueError(f"dataset {ds.name!r} has fewer than 2 {split} images to embed")
    if len(index) > limit:  # a fixed sample, so reruns draw the same map
        index = np.sort(np.random.default_rng(seed).choice(index, limit, replace=False))
    held = np.asarray(ds.images[index])
    labels = np.asarray(ds.labels)[index]
    probe_images, kept = prepare_probes(predictor, probes or [])
    feats, probs = embed_with_probs(predictor, np.concatenate([held, probe_images]))
    fit = np.arange(len(feats)) < len(held)
    xy = project(feats, fit, method, seed)
    far = novelty(feats[fit], feats[~fit])
    classes = predictor.classes
    view = EmbeddingView(method, feats.shape[1], split,
                         skipped_probes=len(probes or []) - len(kept))
    for i, image in enumerate(np.concatenate([held, probe_images])):
        top = int(probs[i].argmax())
        probe = kept[i - len(held)] if i >= len(held) else None
        view.points.append({
            "kind": "probe" if probe else f"{split} image",
            "id": f"probe #{probe['id']}" if probe else f"#{int(index[i])}",
            "label": probe["label"] if probe else classes[int(labels[i])],
            "predicted": classes[top], "confidence": float(probs[i, top]),
            "x": float(xy[i, 0]), "y": float(xy[i, 1]),
            "novelty": float(far[i - len(held)]) if probe else None,
            "image": thumbnail(image)})
    return view
