"""ResNet-18 from a state-dict file versus from scratch (issue 17, item 5), on a small colour
dataset of generated shapes. No download exists here, so the file is made in the same run:
ResNet-18 (torchvision's) is trained briefly on one set of shapes and saved as a plain
torchvision state dict (the layout of a `resnet18-*.pth`); then a second, small set of other
shapes is trained from that file (`init_from`, its head replaced) and from random weights,
same seed, solver and learning rate. Reports held-out (test split) accuracy after 1, 2 and 5
epochs of each.

    .venv/bin/python bench/resnet_shapes.py [--pretrain-epochs 3] [--epochs 5] [--per-class 40]

Writes bench/results/resnet_shapes.json. Accuracy is the figure (seeded); time depends on the
machine's load.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from pathlib import Path

import torch
from fine_tune import AT_EPOCHS, held_out
from PIL import Image, ImageDraw

from engine.datasets import DatasetOptions, create_dataset, open_dataset
from engine.training import TrainConfig, load_checkpoint, train

ROOT = Path(__file__).resolve().parent.parent
PRETRAIN_SHAPES = ("circle", "square", "triangle", "diamond", "ring", "cross")
TARGET_SHAPES = ("bar", "ell", "tee", "arrow")  # none of them seen in pre-training
SIDE = 32


def _polygon(kind: str, cx: float, cy: float, r: float, turn: float) -> list[tuple[float, float]]:
    def rot(points):
        c, s = math.cos(turn), math.sin(turn)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]

    shapes = {
        "square": [(-r, -r), (r, -r), (r, r), (-r, r)],
        "triangle": [(0, -r), (r, r), (-r, r)],
        "diamond": [(0, -r), (r, 0), (0, r), (-r, 0)],
        "bar": [(-r, -r / 4), (r, -r / 4), (r, r / 4), (-r, r / 4)],
        "ell": [(-r, -r), (-r / 3, -r), (-r / 3, r / 3), (r, r / 3), (r, r), (-r, r)],
        "tee": [(-r, -r), (r, -r), (r, -r / 3), (r / 4, -r / 3), (r / 4, r), (-r / 4, r),
                (-r / 4, -r / 3), (-r, -r / 3)],
        "arrow": [(-r, -r / 4), (r / 4, -r / 4), (r / 4, -r), (r, 0), (r / 4, r), (r / 4, r / 4),
                  (-r, r / 4)],
    }
    return rot(shapes[kind])


def draw_shape(kind: str, rng: random.Random) -> Image.Image:
    """One shape in a random colour, size, place and turn on a random dark background."""
    bg = tuple(rng.randrange(0, 90) for _ in range(3))
    fg = tuple(rng.randrange(120, 256) for _ in range(3))
    img = Image.new("RGB", (SIDE, SIDE), bg)
    d = ImageDraw.Draw(img)
    r = rng.uniform(6, 12)
    cx, cy = rng.uniform(r + 1, SIDE - r - 1), rng.uniform(r + 1, SIDE - r - 1)
    turn = rng.uniform(0, 2 * math.pi)
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fg, width=3)
    elif kind == "cross":
        d.line([cx - r, cy - r, cx + r, cy + r], fill=fg, width=3)
        d.line([cx - r, cy + r, cx + r, cy - r], fill=fg, width=3)
    else:
        d.polygon(_polygon(kind, cx, cy, r, turn), fill=fg)
    return img


def write_shapes(root: Path, shapes: tuple[str, ...], per_class: int, seed: int) -> Path:
    rng = random.Random(seed)
    for kind in shapes:
        (root / kind).mkdir(parents=True)
        for i in range(per_class):
            draw_shape(kind, rng).save(root / kind / f"{i:04d}.png")
    return root


def torchvision_state_dict(checkpoint: Path, out: Path) -> Path:
    """The checkpoint's weights as torchvision's resnet18 names them (no spec prefix)."""
    state = load_checkpoint(checkpoint)["model"]
    plain = {k.split(".", 1)[1]: v for k, v in state.items()}
    torch.save(plain, out)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrain-epochs", type=int, default=3)
    p.add_argument("--pretrain-per-class", type=int, default=300)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--per-class", type=int, default=40, help="target images per class")
    p.add_argument("--lr", type=float, default=0.01)
    a = p.parse_args()
    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp(prefix="resnet-shapes-"))
    home = work / "workspace"
    t0 = time.perf_counter()
    colour = {"height": SIDE, "width": SIDE, "channels": 3}
    create_dataset("shapes-pretrain", "folder", {"path": str(write_shapes(
        work / "pre", PRETRAIN_SHAPES, a.pretrain_per_class, 1))},
        DatasetOptions(val_percent=10.0, **colour), home=home)
    create_dataset("shapes-target", "folder", {"path": str(write_shapes(
        work / "target", TARGET_SHAPES, a.per_class * 2, 2))},
        DatasetOptions(val_percent=10.0, test_percent=50.0, **colour), home=home)
    common = {"network": "resnet18", "lr": a.lr, "seed": 0, "device": "cpu", "batch_size": 32}
    pre = work / "pretrain"
    train(TrainConfig(dataset="shapes-pretrain", epochs=a.pretrain_epochs, **common), pre,
          home=home)
    weights = torchvision_state_dict(pre / "best.pt", work / "resnet18-shapes.pth")
    runs = {}
    for kind, extra in (("scratch", {}), ("from the file", {"init_from": str(weights)})):
        run = work / kind.replace(" ", "-")
        train(TrainConfig(dataset="shapes-target", epochs=a.epochs, **common, **extra), run,
              home=home)
        runs[kind] = {e: held_out(run, e, home, "shapes-target", "resnet18")
                      for e in AT_EPOCHS if e <= a.epochs}
    wall = time.perf_counter() - t0
    target = open_dataset("shapes-target", home=home)
    result = {"date": time.strftime("%Y-%m-%d"),
              "pretrain": f"ResNet-18 (torchvision), {len(PRETRAIN_SHAPES)} shapes x "
                          f"{a.pretrain_per_class} images 32x32 RGB, {a.pretrain_epochs} epochs,"
                          " saved as a plain torchvision state dict",
              "target": f"{len(TARGET_SHAPES)} other shapes: {len(target.split('train'))} "
                        f"train, {len(target.split('test'))} test images",
              "lr": a.lr, "held_out_accuracy": runs, "wall_s": wall,
              "torch_threads": torch.get_num_threads()}
    print(f"{'epochs':>7} {'scratch':>9} {'from the file':>14}")
    for e in runs["scratch"]:
        print(f"{e:>7} {runs['scratch'][e]:>9.4f} {runs['from the file'][e]:>14.4f}")
    print(f"wall {wall:.0f} s (time depends on the machine's load; accuracies are seeded)")
    out = ROOT / "bench" / "results" / "resnet_shapes.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
