"""`python -m engine train`; the training options, generated from TrainConfig.

Every field of TrainConfig (and of its AugmentConfig, as --aug-NAME) is an option with default
None, so only what the user typed overrides the defaults, or a saved config on --resume; a new
setting in TrainConfig is a new option here and in `jobs submit` with nothing else to write.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

from tqdm import tqdm

from engine.cli.common import CliError
from engine.cli.networks import load_network_arg
from engine.state.runs import new_job_id, read_run_config
from engine.state.workspace import studio_home
from engine.text import parse_numbers
from engine.training import AugmentConfig, TrainConfig
from engine.training.config import Option, option
from engine.training.sink import MetricsSink

# Options that take a comma-separated list in `jobs submit` (a sweep: one job per combination).
SWEEPABLE = ("lr", "batch_size")


def option_help(opt: Option, prefix: str = "") -> str:
    """An option's --help line, from its metadata: what it is, what it takes, its default
    (argparse lists the choices itself)."""
    taken = ""
    if opt.range is not None:
        taken = ("each " if opt.each else "") + ("" if opt.whole else "in ") \
            + opt.range.text(opt.whole)
        taken += "".join(f"; with --{opt.by.replace('_', '-')} {value}: {r.text(opt.whole)}"
                         for value, r in opt.ranges.items())
    default = f"(default {opt.default})" if opt.default not in (None, "") else ""
    return " ".join(filter(None, ["augmentation:" if prefix else "",
                                  "; ".join(filter(None, [opt.help, taken])), default]))


def add_train_options(parser: argparse.ArgumentParser, sweep: bool = False) -> None:
    """One option per TrainConfig field (default None), its help and choices from the field's
    metadata; with sweep, SWEEPABLE ones take lists."""

    for f, prefix in [*((f, "") for f in dataclasses.fields(TrainConfig) if f.name != "augment"),
                      *((f, "aug_") for f in dataclasses.fields(AugmentConfig))]:
        opt = option(("augment." if prefix else "") + f.name)
        dest = prefix + f.name
        flag = "--" + dest.replace("_", "-")
        helptext = option_help(opt, prefix)
        kind = typing.get_type_hints(AugmentConfig if prefix else TrainConfig)[f.name]
        if kind is bool:
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                                default=None, help=helptext)
        elif sweep and f.name in SWEEPABLE:
            parser.add_argument(flag, dest=dest, default=None,
                                help=f"{helptext}; comma-separated for a sweep")
        elif kind in (int, float, str):
            parser.add_argument(flag, dest=dest, type=kind, default=None, help=helptext,
                                choices=opt.choices or None)
        else:  # network (name or spec file), milestones (a list): parsed by config_from_args
            parser.add_argument(flag, dest=dest, default=None, help=helptext)


def given_options(a: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig settings the user typed, as a (nested) dict of overrides."""

    out: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        if f.name != "augment" and getattr(a, f.name, None) is not None:
            out[f.name] = getattr(a, f.name)
    augment = {f.name: getattr(a, "aug_" + f.name) for f in dataclasses.fields(AugmentConfig)
               if getattr(a, "aug_" + f.name, None) is not None}
    if augment:
        out["augment"] = augment
    if "network" in out:
        out["network"] = load_network_arg(out["network"])
    if "milestones" in out:
        try:
            out["milestones"] = parse_numbers(out["milestones"], float, "--milestones")
        except ValueError as e:
            raise CliError(str(e)) from None
    return out


def config_from_args(a: argparse.Namespace, base: dict[str, Any] | None = None) -> Any:
    """A validated TrainConfig: `base` (a saved config's dict, else the defaults) with the
    options the user gave on top."""

    given = given_options(a)
    merged = dict(base or {})
    merged.update({k: v for k, v in given.items() if k != "augment"})
    if "augment" in given:
        merged["augment"] = {**(merged.get("augment") or {}), **given["augment"]}
    if not merged.get("dataset"):
        raise CliError("--dataset is required (see `python -m engine datasets list`)")
    return TrainConfig.from_dict(merged).validate()


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a network in the foreground")
    add_train_options(t)
    t.add_argument("--out", help="run directory (default: workspace/jobs/<new id>)")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a stopped run from its last checkpoint (its saved settings; "
                        "--epochs may extend it)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_train)


def cmd_train(a: argparse.Namespace) -> dict:
    from engine.training.distributed import run_training

    if a.resume:
        run_dir = Path(a.resume)
        saved = read_run_config(run_dir)
        changed = sorted(set(given_options(a)) - {"epochs", "device", "devices"})
        if changed:
            raise CliError("--resume continues the run with its saved settings; only --epochs "
                           f"may change (not --{changed[0].replace('_', '-')}), and --device "
                           "or --devices to continue on other devices")
        cfg = TrainConfig.from_dict(saved)
        if a.epochs is not None:
            cfg.epochs = max(cfg.epochs, a.epochs)
        if a.device is not None or a.devices is not None:  # a checkpoint resumes on any count
            cfg.device = a.device if a.device is not None else cfg.device.split(":")[0]
            cfg.devices = a.devices or 1
    else:
        cfg = config_from_args(a)
        run_dir = Path(a.out) if a.out else studio_home() / "jobs" / new_job_id()
    result = run_training(cfg, run_dir, setup=console_setup, resume=bool(a.resume))
    return result.to_dict()


def console_setup(rank: int) -> tuple[MetricsSink | None, None]:
    """The hooks of a foreground training's rank: rank 0 prints progress."""
    return (ConsoleSink() if rank == 0 else None), None


class ConsoleSink(MetricsSink):
    """A progress bar per epoch on stderr, and one line per epoch."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.epochs = 0

    def on_start(self, info: dict) -> None:
        self.epochs = info["epochs"]
        print(f"training on {info['device']}: {info['train_images']} images, "
              f"{info['parameters']:,} parameters", file=sys.stderr)

    def on_progress(self, p: dict) -> None:
        if self.bar is None:
            self.bar = tqdm(total=p["steps"], desc=f"epoch {p['epoch'] + 1}/{self.epochs}",
                            unit="step", file=sys.stderr, leave=False)
        self.bar.n = p["step"]
        self.bar.set_postfix(loss=f"{p['loss']:.4f}", img_s=f"{p['images_per_s']:.0f}")
        self.bar.refresh()

    def on_epoch(self, m: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        from engine.training.trainer import format_epoch

        tqdm.write(format_epoch(m), file=sys.stderr)

    def on_end(self, result: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
