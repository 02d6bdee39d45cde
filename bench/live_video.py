"""Live video on Classify: the server's work per camera frame (a 640x480 photo of a digit on
paper, as Chromium's camera sends it): clean the page, frame the digit like MNIST, classify it
with LeNet on the CPU and draw the answer on the frame (LiveClassifier.frame).

Prints median and p90 over --runs frames, with two baselines measured in the same run: the
same frame taken as a picture (JPEG bytes through classify_uploads, the Camera tab's picture
path) and the bare network forward; and the frames a second one core sustains against the
page's rate (one frame classified every 0.2 s). Writes bench/results/live_video.json.

    .venv/bin/python bench/live_video.py [--runs 50] [--checkpoint path/to/best.pt]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from canvas_latency import lenet_checkpoint, timed  # bench/ is on the path when run directly
from PIL import Image, ImageDraw, ImageFont

from engine.inference import backends, live
from engine.inference import uploads as up

ROOT = Path(__file__).resolve().parent.parent


def camera_frame(digit: int = 7, width: int = 640, height: int = 480) -> np.ndarray:
    """Dark ink on unevenly lit paper with sensor noise, RGB."""
    rng = np.random.default_rng(digit)
    paper = np.linspace(190, 235, width)[None, :].repeat(height, 0)
    paper = paper + rng.normal(0, 5, (height, width))
    im = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).convert("RGB")
    font = ImageFont.load_default(size=height * 2 // 3)
    ImageDraw.Draw(im).text((width // 2, height // 2), str(digit), fill=(35, 35, 45), font=font,
                            anchor="mm", stroke_width=6, stroke_fill=(35, 35, 45))
    return np.asarray(im)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--checkpoint", type=Path)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # the dashboard's own inference runs on one thread
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint or lenet_checkpoint(Path(tmp))
        backend = backends.get_backend("pytorch-cpu", ckpt)
        frame = camera_frame()
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=90)
        jpeg = buf.getvalue()
        classifier = live.LiveClassifier(backend, digit=True, polarity="auto", every_s=0.0)
        [item] = up.classify_uploads(backend, [("frame.jpg", jpeg)], True, "auto")
        seen = item.result.input
        stages = {
            "live frame (frame, classify, draw the answer)": lambda: classifier.frame(frame),
            "baseline: the same as a picture (JPEG upload)":
                lambda: up.classify_uploads(backend, [("frame.jpg", jpeg)], True, "auto"),
            "baseline: forward only (LeNet, batch 1)": lambda: backend.probabilities(seen[None]),
        }
        rows = {name: timed(fn, args.runs) for name, fn in stages.items()}
        label = classifier.latest().item.result.label
    live_ms = float(np.median(rows["live frame (frame, classify, draw the answer)"]))
    picture_ms = float(np.median(rows["baseline: the same as a picture (JPEG upload)"]))
    print(f"{'stage':48} {'median ms':>10} {'p90 ms':>8}")
    for name, t in rows.items():
        print(f"{name:48} {np.median(t):10.2f} {np.percentile(t, 90):8.2f}")
    per_s, wanted = 1000.0 / live_ms, 1.0 / 0.2
    print(f"live / picture: {live_ms / picture_ms:.2f}x; one core sustains {per_s:.0f} frames/s "
          f"against the page's {wanted:.0f}/s ({per_s / wanted:.1f}x headroom); answer: {label}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(a busy machine inflates these numbers)")
    result = {
        "runs": args.runs, "device": "cpu", "threads": 1, "frame": "640x480 RGB",
        "load_average_1min": os.getloadavg()[0], "torch": torch.__version__,
        "answer": label, "frames_per_s_one_core": per_s, "page_rate_per_s": wanted,
        "ratio_live_vs_picture": live_ms / picture_ms,
        "stages": {name: {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90))}
                   for name, t in rows.items()},
    }
    out = ROOT / "bench" / "results" / "live_video.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
