"""Accuracy on photo-like digits with framing off, with the old framing and with the new one.

Trains LeNet and the lab's wide LeNet on MNIST t10k images 0..7999 (or reuses checkpoints), then
classifies (a) the photo set of bench/photo_digits.py (photos of images 8000..9999) and (b)
MNIST's own held-out images 8000..9999, each prepared three ways:

- off: the whole image resized to 28x28 (polarity auto: light backgrounds inverted);
- old: the framing this project had before issue 14 (crop to everything that is not pure
  background, fit 20x20, centre by mass), copied below as the baseline;
- new: engine/images/framing.py (clean the page, then crop to the ink and frame).

A row "new, as-is" shows the lab's lesson: the same photos, framed but not inverted, as a model
trained without inverted images really sees dark ink on light paper.
Target: new >= old + 15 points on the photos for LeNet; new >= old on MNIST held-out.

    .venv/bin/python bench/photo_accuracy.py [--count 500] [--epochs 5] [--wide-epochs 3]
        [--lenet RUN_OR_CKPT] [--wide RUN_OR_CKPT]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

from photo_digits import HELD_OUT, held_out_photos  # noqa: E402

from engine.datasets.sources.idx import read_pair  # noqa: E402
from engine.images.framing import EmptyDrawing, normalize_digit, to_gray  # noqa: E402
from engine.state.workspace import atomic_write_json  # noqa: E402
from testkit.mnist import (  # noqa: E402
    MNIST_IMAGES,
    MNIST_LABELS,
    make_mnist_sample,
    train_sample_run,
)

TARGET_POINTS = 15.0


# --- the baseline: the framing before issue 14, verbatim in behaviour ------------------------

def old_normalize_digit(image, polarity: str = "auto", size: int = 28, box: int = 20
                        ) -> np.ndarray:
    gray = to_gray(image)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if polarity == "invert" or (polarity == "auto" and float(np.median(border)) > 127):
        gray = 255.0 - gray
    gray = gray - np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]]))
    gray = np.clip(gray, 0, 255)
    peak = float(gray.max())
    if peak < 16:
        raise EmptyDrawing()
    rows = np.flatnonzero((gray > peak * 0.2).any(1))
    cols = np.flatnonzero((gray > peak * 0.2).any(0))
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = box / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    fitted = Image.fromarray(crop.astype(np.float32), mode="F").resize(
        (new_w, new_h), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR)
    fitted = np.clip(np.asarray(fitted), 0, None)
    fitted = fitted * (255.0 / max(float(fitted.max()), 1e-6))
    total = fitted.sum()
    ys, xs = np.indices(fitted.shape)
    cy, cx = (ys * fitted).sum() / total, (xs * fitted).sum() / total
    top = int(np.clip(round(size / 2 - cy), 0, size - new_h))
    left = int(np.clip(round(size / 2 - cx), 0, size - new_w))
    out = np.zeros((size, size), dtype=np.float32)
    out[top:top + new_h, left:left + new_w] = fitted
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --- preparing and scoring -------------------------------------------------------------------

def prepared(predictor, images: list, how: str) -> np.ndarray:
    """N x 28 x 28 x 1 uint8 inputs, prepared `how` (an empty frame where no ink is found)."""
    out = []
    for im in images:
        try:
            if how == "off":
                x = predictor.prepare(im, digit=False, polarity="auto")[:, :, 0]
            elif how == "old":
                x = old_normalize_digit(im)
            elif how == "new":
                x = normalize_digit(im)
            elif how == "new, as-is":
                x = normalize_digit(im, polarity="as-is")
            else:
                raise ValueError(how)
        except EmptyDrawing:
            x = np.zeros((28, 28), np.uint8)
        out.append(x)
    return np.stack(out)[..., None]


def accuracy(predictor, batch: np.ndarray, labels: np.ndarray) -> float:
    probs = predictor.probabilities(batch)
    names = np.array(predictor.classes)
    return float(np.mean(names[probs.argmax(1)] == labels.astype(str)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--wide-epochs", type=int, default=3)
    ap.add_argument("--lenet", type=Path, help="reuse this run or checkpoint")
    ap.add_argument("--wide", type=Path, help="reuse this run or checkpoint")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "photo_accuracy.json")
    args = ap.parse_args()
    import torch

    from engine.inference.predictor import Predictor

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    photos = held_out_photos(args.count)
    photo_images = [p.image() for p in photos]
    photo_labels = np.array([p.label for p in photos])
    images, labels = read_pair(MNIST_IMAGES, MNIST_LABELS)
    mnist_images, mnist_labels = list(images[HELD_OUT]), labels[HELD_OUT]
    ways = ["off", "old", "new", "new, as-is"]
    results: dict = {"photos": len(photos), "mnist_held_out": len(mnist_labels), "models": {}}
    with tempfile.TemporaryDirectory(prefix="photo-accuracy-") as tmp:
        tmp = Path(tmp)
        home = make_mnist_sample(tmp) if not (args.lenet and args.wide) else None
        runs = {"lenet": args.lenet or train_sample_run(home, "lenet", args.epochs,
                                                        tmp / "lenet"),
                "lenet-wide": args.wide or train_sample_run(home, "lenet-wide", args.wide_epochs,
                                                     tmp / "wide")}
        for name, run in runs.items():
            predictor = Predictor(run)
            row = {}
            for how in ways:
                row[f"photos, {how}"] = accuracy(
                    predictor, prepared(predictor, photo_images, how), photo_labels)
                if how != "new, as-is":
                    row[f"MNIST, {how}"] = accuracy(
                        predictor, prepared(predictor, mnist_images, how), mnist_labels)
            results["models"][name] = row
    print(f"\n{len(photos)} photo-like digits, {len(mnist_labels)} MNIST held-out images "
          "(accuracy, %)\n")
    cols = [f"photos, {w}" for w in ways] + [f"MNIST, {w}" for w in ways[:3]]
    print("| model | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, row in results["models"].items():
        print(f"| {name} | " + " | ".join(f"{100 * row[c]:.1f}" for c in cols) + " |")
    lenet = results["models"]["lenet"]
    gain = 100 * (lenet["photos, new"] - lenet["photos, old"])
    mnist_ok = all(r["MNIST, new"] >= r["MNIST, old"] for r in results["models"].values())
    results["lenet_photo_gain_points"] = gain
    results["targets_met"] = {"photo_gain": gain >= TARGET_POINTS, "mnist_not_worse": mnist_ok}
    print(f"\nLeNet on photos: new framing {gain:+.1f} points over the old "
          f"(target >= +{TARGET_POINTS:.0f}): {'met' if gain >= TARGET_POINTS else 'NOT met'}; "
          f"MNIST held-out never worse: {'met' if mnist_ok else 'NOT met'}")
    atomic_write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
