"""`python -m engine`: datasets, networks, train, predict, evaluate, classify, jobs, scheduler,
accounts (login, users, backup, restore).

Every command prints a readable result; --json prints a machine-readable one on stdout.
Errors that a user can fix print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys

from engine.cli import (
    accounts,
    classroom,
    datasets,
    evaluate,
    jobs,
    lr_find,
    networks,
    predict,
    quotas,
    search,
    train,
)
from engine.cli.common import CliError, print_result
from engine.images.loading import ImageError
from engine.networks.errors import SpecError
from engine.training import ConfigError, TrainingDiverged


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine",
                                     description="Datasets, networks, training and jobs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (datasets, networks, train, lr_find, predict, evaluate, jobs, search, quotas,
                  classroom, accounts):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from engine.datasets import DatasetError
    from engine.images.framing import EmptyDrawing

    args = build_parser().parse_args(argv)
    try:
        print_result(args.func(args), getattr(args, "json", False))
    except (CliError, DatasetError, SpecError, ConfigError, ImageError, EmptyDrawing,
            FileNotFoundError, PermissionError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
