"""Everything needed to reproduce a training run, as one serialisable dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.training.start import start_settings_problem

SOLVERS = ("sgd", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "adadelta")
LR_POLICIES = (
    "fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid", "cosine", "onecycle",
)
PRECISIONS = ("fp32", "bf16", "fp16")


class ConfigError(ValueError):
    """A training setting that cannot work, with the reason."""


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
    device: str = "auto"  # auto, cpu, cuda, cuda:N
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
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        need(self.epochs >= 1, f"epochs must be at least 1, not {self.epochs}")
        need(self.batch_size >= 1, f"batch size must be at least 1, not {self.batch_size}")
        need(self.solver in SOLVERS, f"unknown solver {self.solver!r}; choose from {SOLVERS}")
        need(self.lr_policy in LR_POLICIES,
             f"unknown learning-rate policy {self.lr_policy!r}; choose from {LR_POLICIES}")
        need(self.lr > 0, f"learning rate must be positive, not {self.lr}")
        need(self.weight_decay >= 0, "weight decay cannot be negative")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1), not {self.momentum}")
        need(self.step_size > 0, "step size must be positive")
        need(self.warmup_epochs >= 0, "warm-up cannot be negative")
        need(self.val_interval >= 1, "validation interval must be at least 1 epoch")
        need(self.checkpoint_interval >= 1, "checkpoint interval must be at least 1 epoch")
        need(self.early_stopping >= 0, "early-stopping patience cannot be negative")
        need(self.precision in PRECISIONS,
             f"unknown precision {self.precision!r}; choose from {PRECISIONS}")
        a = self.augment
        need(0 <= a.invert <= 1, "inversion probability must be in [0, 1]")
        need(min(a.rotation, a.shift, a.shear, a.zoom, a.noise) >= 0,
             "augmentation ranges cannot be negative")
        need(a.zoom < 1, "zoom must be below 1 (a fraction)")
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
        return cls(**d)
