"""Training presets: whole training configurations a user picks in one click.

"real-world-digits" is the recipe for digits photographed or drawn outside MNIST (paper,
uneven light, thick or thin pens, either polarity): the wider `lenet-real` network, random
affine augmentation (rotation, shift, shear, zoom), random inversion and a little noise, and a
one-cycle learning-rate schedule with Nesterov momentum. `bench/recipe.py` measures it against
plain LeNet.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from engine.training.config import TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    title: str  # what a button says
    description: str
    settings: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields (no dataset)


PRESETS: dict[str, Preset] = {
    "real-world-digits": Preset(
        name="real-world-digits",
        title="Recommended for real-world digits",
        description="Wider network (lenet-real: conv 75/100, batch norm, dropout), random "
                    "rotation ±12°, shift ±10%, shear ±8°, zoom ±12%, inversion half the time, "
                    "light noise; one-cycle schedule to 0.05 with Nesterov momentum, 10 epochs.",
        settings={
            "network": "lenet-real", "epochs": 10, "batch_size": 64, "solver": "nesterov",
            "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "lr_policy": "onecycle",
            "warmup_epochs": 0.0,
            "augment": {"rotation": 12.0, "shift": 0.1, "shear": 8.0, "zoom": 0.12,
                        "invert": 0.5, "noise": 0.03},
        }),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}; choose one of: "
                         f"{', '.join(PRESETS)}")
    return PRESETS[name]


def preset_config(name: str, dataset: str, **overrides: Any) -> TrainConfig:
    """A validated TrainConfig: the preset's settings on `dataset`, then `overrides`."""
    settings = copy.deepcopy(get_preset(name).settings)
    return TrainConfig.from_dict({"dataset": dataset, **settings, **overrides}).validate()


def apply_preset(base: dict[str, Any], name: str) -> dict[str, Any]:
    """A config dict (e.g. a form's defaults) with the preset's settings laid over it; the
    augmentation block is replaced whole, so no earlier setting leaks into the recipe."""
    out = copy.deepcopy(base)
    out.update(copy.deepcopy(get_preset(name).settings))
    return out
