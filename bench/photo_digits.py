"""Write the photo-like digit test set: JPEG photos of held-out MNIST digits written on paper
(grey paper, uneven light, grain, blur, rotation, odd sizes, JPEG quality 40-90).

Built from MNIST t10k images 8000..9999 (held out from the 0..7999 that the benchmarks train
on), by engine/images/photo_digits.py. Files are named `<label>_<nnnn>.jpg` (the label first,
as probe boards and classify-many read it) and labels.csv lists file, label and the digit's
known box (top, left, bottom, right) in the photo.

    .venv/bin/python bench/photo_digits.py OUT_DIR [--count 500] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from engine.datasets.sources.idx import read_pair  # noqa: E402
from engine.images.photo_digits import PhotoDigit, photo_set  # noqa: E402
from testkit.mnist import MNIST_IMAGES, MNIST_LABELS  # noqa: E402

HELD_OUT = slice(8000, 10000)


def held_out_photos(count: int = 500, seed: int = 0) -> list[PhotoDigit]:
    """The benchmark's photo set: `count` photos of MNIST t10k digits 8000..9999."""
    if not MNIST_IMAGES.exists():
        raise SystemExit(f"error: MNIST files not found in {MNIST_IMAGES.parent} "
                         "(set STUDIO_MNIST_DIR)")
    images, labels = read_pair(MNIST_IMAGES, MNIST_LABELS)
    return photo_set(images[HELD_OUT], labels[HELD_OUT], count, seed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    photos = held_out_photos(args.count, args.seed)
    with open(args.out / "labels.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", "label", "top", "left", "bottom", "right", "jpeg_quality"])
        for i, p in enumerate(photos):
            name = f"{p.label}_{i:04d}.jpg"
            (args.out / name).write_bytes(p.jpeg)
            out.writerow([name, p.label, *p.box, p.quality])
    print(f"{len(photos)} photos in {args.out} (labels.csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
