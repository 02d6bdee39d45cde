"""`python -m engine predict`: classify image files with a trained checkpoint, through the same
front door as the Classify page (engine.service.classify)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import CliError


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
    from engine.inference.backends import TorchBackend
    from engine.service.classify import classify_files

    backend = TorchBackend(a.checkpoint, device=a.device)
    results = []
    for answer in classify_files(backend, a.images, digit=a.digit, polarity=a.polarity,
                                 top_k=a.top_k):
        if answer.prediction is None:
            raise CliError(f"{answer.name}: {answer.reason}")
        results.append(answer.to_dict())
    if a.json:
        return results
    return "\n".join(f"{r['image']}: " + ", ".join(f"{t['class']} {t['probability']:.1%}"
                                                   for t in r["top"]) for r in results)
