"""Everything needed to reproduce a training run, as one serialisable dataclass.

Each option's range, choices and help live once, in its field's metadata (`setting`, read back
with `option`): TrainConfig.validate() enforces them, the CLI builds its options and help from
them (engine/cli/train.py) and the New model form its inputs (dashboard/views/train_forms.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field
from typing import Any

from engine.devices import parse_devices
from engine.training.start import start_settings_problem

SOLVERS = ("sgd", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "adadelta")
LR_POLICIES = (
    "fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid", "cosine", "onecycle",
)
PRECISIONS = ("fp32", "bf16", "fp16")
# A browser's number holds whole numbers exactly only up to 2**53 - 1 (Streamlit refuses larger
# bounds), so a form cannot offer more of a whole-number option than this.
BROWSER_MAX_INT = 2**53 - 1


class ConfigError(ValueError):
    """A training setting that cannot work, with the reason."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Range:
    """Where a number may lie: from low to high, each end included unless it is open."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: Any, whole: bool = False) -> bool:
        """A finite number (a whole one if asked) inside the range."""
        if whole and not isinstance(value, int) or not _is_number(value):
            return False
        return (math.isfinite(value)
                and (value > self.low if self.low_open else value >= self.low)
                and (value < self.high if self.high_open else value <= self.high))

    def closed(self, whole: bool = False) -> tuple[float, float]:
        """The range as inclusive bounds (a form's widget has no open end): an open end moves
        in to the nearest number the range holds."""
        step_in = (lambda v, to: v + (1 if to > v else -1)) if whole else math.nextafter
        low = step_in(self.low, math.inf) if self.low_open else self.low
        high = step_in(self.high, -math.inf) if self.high_open else self.high
        return low, high

    def text(self, whole: bool = False) -> str:
        """'from 1 to 100,000' for whole numbers, else '(0, 1000]'."""
        if whole and not (self.low_open or self.high_open):
            return f"from {self.low:,} to {self.high:,}"
        return (f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")


@dataclass(frozen=True)
class Option:
    """One training option as every reader sees it: validate(), the CLI and the form."""

    label: str  # how messages name the option
    help: str = ""  # the CLI's help text (the form's label says it in its own words)
    default: Any = None
    range: Range | None = None
    whole: bool = False  # a whole number (int), else any finite float
    unit: str = ""  # after the low end in messages about whole numbers: "1 epoch to ..."
    choices: tuple[str, ...] = ()
    by: str = ""  # another option of the same config whose value can pick another range
    ranges: Mapping[str, Range] = field(default_factory=dict)  # its value -> that range
    each: str = ""  # a list: the range holds for each item, which messages call this
    max_items: int = 0
    form_high: float | None = None  # a form offers no more than this, for form_reason
    form_reason: str = ""
    message: str = ""  # the refusal, when not the usual one: a template of {range}, {value}

    def range_for(self, by_value: Any = None) -> Range | None:
        """The range that holds when the option named in `by` has `by_value`."""
        return self.ranges.get(by_value, self.range) if self.by else self.range

    def form_bounds(self, by_value: Any = None) -> tuple[float, float]:
        """The inclusive bounds a form's input takes: the range's, below form_high if set."""
        r = self.range_for(by_value)
        if r is None:
            raise ValueError(f"{self.label} has no range")
        low, high = r.closed(self.whole)
        if self.form_high is not None:
            high = min(high, self.form_high)
        return (int(low), int(high)) if self.whole else (float(low), float(high))

    def problem(self, value: Any, by_value: Any = None) -> str | None:
        """Why `value` cannot be this option's value, or None."""
        if self.choices:
            if value not in self.choices:
                return f"unknown {self.label} {_short(value)}; choose from {self.choices}"
            return None
        r = self.range_for(by_value)
        if r is None:
            return None
        if self.each:
            if not isinstance(value, (list, tuple)) or len(value) > self.max_items:
                return (f"{self.label} must be a list of at most {self.max_items:,} numbers, "
                        f"not {_short(value)}")
            return next((p for p in (self._refusal(v, r, self.each) for v in value) if p),
                        None)
        return self._refusal(value, r, self.label)

    def _refusal(self, value: Any, r: Range, label: str) -> str | None:
        if r.holds(value, self.whole):
            return None
        if self.message:
            return self.message.format(range=r.text(self.whole), value=_short(value))
        if self.whole:
            return (f"{label} must be a whole number from {r.low:,}{self.unit} to "
                    f"{r.high:,}, not {_short(value)}")
        return f"{label} must be a finite number in {r.text()}, not {_short(value)}"


def setting(default: Any = MISSING, *, factory: Any = MISSING, label: str = "",
            help: str = "", low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False, **option: Any) -> Any:
    """A config field whose Option (label, help, range, choices...) is its metadata."""
    whole = isinstance(default, int) and not isinstance(default, bool)
    if low is not None or high is not None:
        option["range"] = Range(low if low is not None else -math.inf,
                                high if high is not None else math.inf, low_open, high_open)
    meta = {"option": Option(label=label, help=help, whole=whole,
                             default=None if default is MISSING else default, **option)}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def option(name: str) -> Option:
    """The Option of a TrainConfig field, or of an augmentation setting as 'augment.NAME'."""
    cls, _, rest = name.partition(".")
    fields = {f.name: f for f in dataclasses.fields(AugmentConfig if rest else TrainConfig)}
    try:
        return fields[rest or cls].metadata["option"]
    except KeyError:
        raise KeyError(f"no training option {name!r}") from None


def options() -> dict[str, Option]:
    """Every option with its Option, in field order; augmentation ones as 'augment.NAME'."""
    out = {f.name: f.metadata["option"] for f in dataclasses.fields(TrainConfig)
           if "option" in f.metadata}
    out.update({f"augment.{f.name}": f.metadata["option"]
                for f in dataclasses.fields(AugmentConfig)})
    return out


def _check_options(config: Any) -> None:
    """Every range and choice in `config`'s field metadata, in field order."""
    for f in dataclasses.fields(config):
        opt = f.metadata.get("option")
        if opt is None:
            continue
        by_value = getattr(config, opt.by) if opt.by else None
        problem = opt.problem(getattr(config, f.name), by_value)
        if problem:
            raise ConfigError(problem)


@dataclass
class AugmentConfig:
    """Online augmentation (the Keras ImageDataGenerator set the lab shows)."""

    rotation: float = setting(0.0, label="augmentation rotation", help="max degrees either way",
                              low=0, high=180)
    shift: float = setting(0.0, label="augmentation shift", help="max fraction of width/height",
                           low=0, high=1)
    shear: float = setting(0.0, label="augmentation shear", help="max degrees", low=0, high=89)
    zoom: float = setting(0.0, label="augmentation zoom", help="max fraction in or out",
                          low=0, high=1, high_open=True)
    hflip: bool = setting(False, label="augmentation hflip", help="random horizontal flips")
    vflip: bool = setting(False, label="augmentation vflip", help="random vertical flips")
    invert: float = setting(0.0, label="inversion probability",
                            help="probability of inverting an image", low=0, high=1)
    noise: float = setting(0.0, label="augmentation noise",
                           help="std of gaussian noise on 0..1 pixels", low=0, high=10)

    @property
    def active(self) -> bool:
        return any(
            (self.rotation, self.shift, self.shear, self.zoom, self.hflip, self.vflip,
             self.invert, self.noise)
        )


@dataclass
class TrainConfig:
    dataset: str = setting(label="dataset", help="dataset name or id")
    network: str | dict[str, Any] = setting("lenet", label="network",
                                            help="zoo name or a JSON/YAML spec file")
    epochs: int = setting(10, label="epochs", low=1, high=100_000)
    batch_size: int = setting(64, label="batch size", low=1, high=1_000_000)
    solver: str = setting("sgd", label="solver", choices=SOLVERS)
    # Up to 1e12: a rate that high diverges, and training says so.
    lr: float = setting(0.01, label="learning rate", help="base learning rate", low=0,
                        low_open=True, high=1e12)
    momentum: float = setting(0.9, label="momentum", low=0, high=1, high_open=True)
    weight_decay: float = setting(0.0, label="weight decay", low=0, high=1e3)
    lr_policy: str = setting("fixed", label="learning-rate policy", choices=LR_POLICIES)
    step_size: float = setting(10.0, label="step size", help="epochs (step, sigmoid centre)",
                               low=0, low_open=True, high=1e6)
    # DIGITS' sigmoid: a negative gamma makes it decay; every other policy needs a positive one.
    gamma: float = setting(0.1, label="gamma", help="step, multistep, exp, inv, sigmoid",
                           low=0, low_open=True, high=1e3,
                           by="lr_policy", ranges={"sigmoid": Range(-1e3, 1e3)})
    milestones: list[float] = setting(factory=list, label="milestones",
                                      help="comma-separated epochs (multistep)",
                                      each="each milestone", max_items=1000, low=0, high=1e6)
    power: float = setting(1.0, label="power", help="inv, poly", low=0, high=1e3)
    warmup_epochs: float = setting(0.0, label="warm-up epochs", low=0, high=1e6)
    seed: int = setting(0, label="seed", low=0, high=2**63 - 1, form_high=BROWSER_MAX_INT,
                        form_reason="a browser's number holds whole numbers exactly only up "
                                    "to 2**53 - 1")
    val_interval: int = setting(1, label="validation interval", unit=" epoch",
                                help="epochs between validation passes", low=1, high=100_000)
    checkpoint_interval: int = setting(1, label="checkpoint interval", unit=" epoch",
                                       help="epochs between kept checkpoints",
                                       low=1, high=100_000)
    early_stopping: int = setting(0, label="early-stopping patience",
                                  help="patience in validation passes (0 = off)",
                                  low=0, high=100_000)
    device: str = setting("auto", label="device",
                          help="auto, cpu, cuda, cuda:N; several: cuda:0,1 or cpu:N "
                               "(N CPU processes)")
    devices: int = setting(1, label="devices", low=1, high=1024,
                           help="devices one job trains on in parallel (DDP ranks, one process "
                                "each)")
    precision: str = setting("fp32", label="precision", choices=PRECISIONS)
    compile: bool = setting(False, label="compile", help="torch.compile the model")
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    name: str = setting("", label="name", help="the job's name")
    # Where the weights start (engine/training/init.py): "" random, JOB[:best|last|EPOCH],
    # a weights file's path, or torchvision[:WEIGHTS].
    init_from: str = setting("", label="start",
                             help="start from JOB[:best|last|EPOCH], a weights file (.pt/.pth "
                                  "state dict or checkpoint) or torchvision[:WEIGHTS] "
                                  "(downloads)")
    freeze: str = setting("", label="freeze",
                          help="with --init-from: freeze the first N layers with weights, or "
                               "all-but-head")
    pretrained_lr_factor: float = setting(
        1.0, label="pretrained learning-rate factor",
        help="learning rate of the pretrained layers, as a fraction of --lr",
        low=0, low_open=True, high=1,
        message="the pretrained learning-rate factor must be in {range}, not {value} "
                "(to stop layers learning, freeze them)")

    def validate(self) -> TrainConfig:
        """Every option checked for type and range (floats also finite): the ranges and
        choices in the fields' metadata, then what those cannot say; a ConfigError names the
        first option that cannot work."""
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        need(isinstance(self.dataset, str) and 0 < len(self.dataset) <= 200,
             f"dataset must be a dataset name or id, not {_short(self.dataset)}")
        _check_options(self)
        need(isinstance(self.device, str) and len(self.device) <= 64,
             f"device must be auto, cpu, cuda or cuda:N, not {_short(self.device)}")
        try:
            parse_devices(self.device, self.devices)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        need(isinstance(self.compile, bool), f"compile must be true or false, not "
                                             f"{_short(self.compile)}")
        need(isinstance(self.name, str) and len(self.name) <= 200,
             f"name must be text of at most 200 characters, not {_short(self.name)}")
        a = self.augment
        need(isinstance(a, AugmentConfig), "augment must be a mapping of augmentation settings")
        _check_options(a)
        for flag in ("hflip", "vflip"):
            need(isinstance(getattr(a, flag), bool),
                 f"augmentation {flag} must be true or false, not {_short(getattr(a, flag))}")
        problem = start_settings_problem(self.init_from, self.freeze)
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
