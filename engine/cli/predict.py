"""`python -m engine predict`: classify image files with a trained checkpoint, through the same
front door as the Classify page (engine.service.classify). A batch never aborts on one image:
each image gets its answer, or its one-line reason naming the file, and the command exits
non-zero only when nothing could be classified."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.cli.common import CliError, print_result


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify images with a trained checkpoint")
    p.add_argument("checkpoint", help="a checkpoint .pt file or a run directory")
    p.add_argument("images", nargs="+")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--digit", action=argparse.BooleanOptionalAction, default=None,
                   help="frame the ink like MNIST first (drawings, photos of digits); "
                        "default: as the model's contract says")
    p.add_argument("--polarity", default="auto", choices=["auto", "invert", "as-is"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)


def cmd_predict(a: argparse.Namespace) -> Any:
    """Each image's answer, or its one-line reason (on stderr, naming the file); the command
    fails only when none of the images could be classified."""
    from engine.inference.backends import TorchBackend
    from engine.service.classify import classify_files

    backend = TorchBackend(a.checkpoint, device=a.device)
    rows, failed = [], 0
    for answer in classify_files(backend, a.images, digit=a.digit, polarity=a.polarity,
                                 top_k=a.top_k):
        rows.append(answer.to_dict())
        if answer.prediction is None:
            failed += 1
            if not a.json and len(a.images) > 1:  # as they come: a long batch shows them
                print(f"{answer.name}: not classified: {answer.reason}", file=sys.stderr)
    if failed == len(rows):
        if a.json:
            print_result(rows, True)  # the reasons, machine-readable, before the error
        if len(rows) == 1:
            raise CliError(f"{rows[0]['image']}: {rows[0]['error']}")
        raise CliError(f"none of the {len(rows)} images could be classified"
                       + ("" if a.json else " (each one's reason is above)"))
    if failed and not a.json:
        print(f"{failed} of {len(rows)} images could not be classified (listed above); "
              f"{len(rows) - failed} were", file=sys.stderr)
    if a.json:
        return rows
    return "\n".join(f"{r['image']}: " + ", ".join(f"{t['class']} {t['probability']:.1%}"
                                                   for t in r["top"]) for r in rows
                     if r["error"] is None)
