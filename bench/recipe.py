"""The "Recommended for real-world digits" recipe against plain LeNet, in one run:
held-out accuracy on the MNIST 8k/2k split (images 0..7999 of ../shared/data/mnist-t10k train,
10% of them validate; 8000..9999 are held out) and training time on this machine, and, with
--photos, accuracy on a set of photo-like digits (a folder or zip; labels from class folders or
names like 7_photo.jpg), framed like MNIST with automatic polarity.

    python bench/recipe.py [--lenet-epochs 5] [--recipe-epochs 10] [--photos DIR_OR_ZIP]

Writes bench/results/recipe.json. Figures on a shared CPU vary with its load: compare the two
rows of one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

from engine.evaluation.probe_import import label_from_name  # noqa: E402
from engine.images.framing import EmptyDrawing  # noqa: E402
from engine.images.loading import ImageError, load_image  # noqa: E402
from engine.inference.classify_many import IMAGE_SUFFIXES, iter_items  # noqa: E402
from engine.inference.predictor import Predictor, resolve_checkpoint  # noqa: E402
from engine.training import TrainConfig, train  # noqa: E402
from engine.training.presets import preset_config  # noqa: E402
from testkit.mnist import MNIST_IMAGES, make_mnist_sample  # noqa: E402

PRESET = "real-world-digits"


def photo_accuracy(checkpoint: str | Path, images: Sequence, labels: Sequence[str],
                   digit: bool = True, polarity: str = "auto") -> dict[str, float | int]:
    """Accuracy of a trained run (its folder or a checkpoint) on images (arrays, PIL images or
    encoded bytes) with their true labels; an image with nothing to classify counts as wrong.
    The hook for the photo-like test set: pass its images and labels."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    predictor = Predictor(resolve_checkpoint(checkpoint))
    right = empty = 0
    for image, label in zip(images, labels, strict=True):
        try:
            seen = predictor.prepare(load_image(image) if isinstance(image, bytes) else image,
                                     digit=digit, polarity=polarity)
        except EmptyDrawing:
            empty += 1
            continue
        probs = predictor.probabilities(seen[None])[0]
        right += predictor.classes[int(np.argmax(probs))] == str(label)
    return {"images": len(images), "correct": int(right), "empty": empty,
            "accuracy": right / len(images) if len(images) else 0.0}


def read_photos(path: str | Path) -> tuple[list[bytes], list[str]]:
    """Images and labels of a folder or zip (class folders, or names like 7_photo.jpg)."""
    images, labels = [], []
    for item in iter_items([path]):
        if Path(item.name).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        label = label_from_name(item.name, [str(d) for d in range(10)], item.folder)
        if label is None:
            raise ImageError(f"{item.name}: no label in its folder or name")
        images.append(item.read())
        labels.append(label)
    return images, labels


def _run(name: str, cfg: TrainConfig, home: Path, runs: Path) -> dict:
    start = time.perf_counter()
    result = train(cfg, runs / name, home=home)
    seconds = time.perf_counter() - start
    print(f"{name}: {cfg.epochs} epochs in {seconds:.1f} s, held-out accuracy "
          f"{result.held_out['accuracy']:.2%}", flush=True)
    return {"name": name, "network": cfg.network, "epochs": cfg.epochs, "seconds": seconds,
            "held_out_accuracy": result.held_out["accuracy"], "split": result.held_out["split"],
            "run_dir": str(runs / name)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lenet-epochs", type=int, default=5)
    parser.add_argument("--recipe-epochs", type=int, default=None,
                        help="default: the preset's own")
    parser.add_argument("--photos", help="a folder or zip of photo-like digits")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "recipe.json"))
    args = parser.parse_args()
    if not MNIST_IMAGES.exists():
        sys.exit(f"MNIST files not found: {MNIST_IMAGES}")
    photos = read_photos(args.photos) if args.photos else None
    with tempfile.TemporaryDirectory() as tmp:
        home = make_mnist_sample(Path(tmp))
        runs = Path(tmp) / "runs"
        lenet = TrainConfig(dataset="mnist-sample", network="lenet", epochs=args.lenet_epochs,
                            lr=0.01, seed=0, device="cpu")
        extra = {"epochs": args.recipe_epochs} if args.recipe_epochs else {}
        recipe = preset_config(PRESET, "mnist-sample", seed=0, device="cpu", **extra)
        rows = [_run("lenet", lenet, home, runs), _run(PRESET, recipe, home, runs)]
        for row in rows:
            if photos:
                row["photos"] = photo_accuracy(row["run_dir"], *photos)
            del row["run_dir"]
    base = rows[0]
    print(f"{'run':<20} {'epochs':>6} {'held-out':>9} {'time s':>8} {'time ratio':>10}"
          + ("  photos" if photos else ""))
    for row in rows:
        print(f"{row['name']:<20} {row['epochs']:>6} {row['held_out_accuracy']:>9.2%} "
              f"{row['seconds']:>8.1f} {row['seconds'] / base['seconds']:>9.2f}x"
              + (f"  {row['photos']['accuracy']:.2%}" if photos else ""))
    out = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
           "cpus": torch.get_num_threads(), "torch": torch.__version__,
           "data": "MNIST t10k 0..7999 train (10% validation), 8000..9999 held out",
           "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
