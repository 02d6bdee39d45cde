"""Everything needed to reproduce a training run, as one serialisable dataclass."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.devices import parse_devices
from engine.training.start import start_settings_problem

SOLVERS = ("sgd", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "adadelta")
LR_POLICIES = (
    "fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid", "cosine", "onecycle",
)
PRECISIONS = ("fp32", "bf16", "fp16")


class ConfigError(ValueError):
    """A training setting that cannot work, with the reason."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _float(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
           high_open: bool = False) -> None:
    """A finite number in [low, high] (open where asked), or ConfigError naming the option."""
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value)
          and (value > low if low_open else value >= low)
          and (value < high if high_open else value <= high))
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ConfigError(f"{name} must be a finite number in {left}{low:g}, {high:g}{right}, "
                          f"not {_short(value)}")


def _int(name: str, value: Any, low: int, high: int, unit: str = "") -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise ConfigError(f"{name} must be a whole number from {low:,}{unit} to {high:,}, "
                          f"not {_short(value)}")


@dataclass
class AugmentConfig:
    """Online augmentation (the Keras ImageDataGenerator set the lab shows)."""

    rotation: float = 0.0  # max degrees either way
    shift: float = 0.0  # max fraction of width/height
    shear: float = 0.0  # max degrees
    zoom: float = 0.0  # max fraction in or out
    hflip: bool = False
    vflip: bool = False
    invert: float = 0.0  # probability of inverting an image
    noise: float = 0.0  # std of gaussian noise on 0..1 pixels

    @property
    def active(self) -> bool:
        return any(
            (self.rotation, self.shift, self.shear, self.zoom, self.hflip, self.vflip,
             self.invert, self.noise)
        )


@dataclass
class TrainConfig:
    dataset: str
    network: str | dict[str, Any] = "lenet"  # zoo name or a network spec
    epochs: int = 10
    batch_size: int = 64
    solver: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_policy: str = "fixed"
    step_size: float = 10.0  # epochs (step, sigmoid centre)
    gamma: float = 0.1  # step, multistep, exp, inv, sigmoid
    milestones: list[float] = field(default_factory=list)  # epochs (multistep)
    power: float = 1.0  # inv, poly
    warmup_epochs: float = 0.0
    seed: int = 0
    val_interval: int = 1  # epochs between validation passes
    checkpoint_interval: int = 1  # epochs between kept checkpoints
    early_stopping: int = 0  # patience in validation passes; 0 = off
    device: str = "auto"  # auto, cpu, cuda, cuda:N; several: cuda:0,1 or cpu:N (processes)
    devices: int = 1  # devices one job trains on, data-parallel (DDP ranks); 1 = one process
    precision: str = "fp32"
    compile: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    name: str = ""
    # Where the weights start (engine/training/init.py): "" random, JOB[:best|last|EPOCH],
    # a weights file's path, or torchvision[:WEIGHTS].
    init_from: str = ""
    freeze: str = ""  # "", the first N layers with weights, or "all-but-head"
    pretrained_lr_factor: float = 1.0  # learning rate of the pretrained layers, as a fraction

    def validate(self) -> TrainConfig:
        """Every option checked for type and range (floats also finite); a ConfigError names
        the first option that cannot work."""
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        need(isinstance(self.dataset, str) and 0 < len(self.dataset) <= 200,
             f"dataset must be a dataset name or id, not {_short(self.dataset)}")
        _int("epochs", self.epochs, 1, 100_000)
        _int("batch size", self.batch_size, 1, 1_000_000)
        need(self.solver in SOLVERS, f"unknown solver {_short(self.solver)}; choose from "
                                     f"{SOLVERS}")
        need(self.lr_policy in LR_POLICIES,
             f"unknown learning-rate policy {_short(self.lr_policy)}; choose from {LR_POLICIES}")
        _float("learning rate", self.lr, 0, 1e12, low_open=True)  # too high diverges: said so
        _float("momentum", self.momentum, 0, 1, high_open=True)
        _float("weight decay", self.weight_decay, 0, 1e3)
        _float("step size", self.step_size, 0, 1e6, low_open=True)
        if self.lr_policy == "sigmoid":  # DIGITS' sigmoid: a negative gamma makes it decay
            _float("gamma", self.gamma, -1e3, 1e3)
        else:
            _float("gamma", self.gamma, 0, 1e3, low_open=True)
        _float("power", self.power, 0, 1e3)
        _float("warm-up epochs", self.warmup_epochs, 0, 1e6)
        need(isinstance(self.milestones, (list, tuple)) and len(self.milestones) <= 1000,
             f"milestones must be a list of epochs, not {_short(self.milestones)}")
        for m in self.milestones:
            _float("each milestone", m, 0, 1e6)
        _int("seed", self.seed, 0, 2**63 - 1)
        _int("validation interval", self.val_interval, 1, 100_000, unit=" epoch")
        _int("checkpoint interval", self.checkpoint_interval, 1, 100_000, unit=" epoch")
        _int("early-stopping patience", self.early_stopping, 0, 100_000)
        need(isinstance(self.device, str) and len(self.device) <= 64,
             f"device must be auto, cpu, cuda or cuda:N, not {_short(self.device)}")
        _int("devices", self.devices, 1, 1024)
        try:
            parse_devices(self.device, self.devices)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        need(self.precision in PRECISIONS,
             f"unknown precision {_short(self.precision)}; choose from {PRECISIONS}")
        need(isinstance(self.compile, bool), f"compile must be true or false, not "
                                             f"{_short(self.compile)}")
        need(isinstance(self.name, str) and len(self.name) <= 200,
             f"name must be text of at most 200 characters, not {_short(self.name)}")
        a = self.augment
        need(isinstance(a, AugmentConfig), "augment must be a mapping of augmentation settings")
        _float("augmentation rotation", a.rotation, 0, 180)
        _float("augmentation shift", a.shift, 0, 1)
        _float("augmentation shear", a.shear, 0, 89)
        _float("augmentation zoom", a.zoom, 0, 1, high_open=True)
        _float("inversion probability", a.invert, 0, 1)
        _float("augmentation noise", a.noise, 0, 10)
        for flag in ("hflip", "vflip"):
            need(isinstance(getattr(a, flag), bool),
                 f"augmentation {flag} must be true or false, not {_short(getattr(a, flag))}")
        problem = start_settings_problem(self.init_from, self.freeze, self.pretrained_lr_factor)
        need(problem is None, problem or "")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}")
        d = dict(d)
        aug = d.get("augment") or {}
        if isinstance(aug, dict):
            aug_known = {f.name for f in dataclasses.fields(AugmentConfig)}
            bad = set(aug) - aug_known
            if bad:
                raise ConfigError(f"unknown augmentation settings: {', '.join(sorted(bad))}")
            d["augment"] = AugmentConfig(**aug)
        elif aug is not None:
            raise ConfigError(f"augment must be a mapping, not {_short(aug)}")
        return cls(**d)
