"""The 'torchvision' layer: a whitelisted torchvision classifier, always randomly initialised.

Models are built with ``torchvision.models.get_model(name, weights=None, num_classes=...)``;
nothing is downloaded. When the input does not have 3 channels the first convolution is
replaced by one with the right input channels. Checking a spec builds the model on the meta
device and runs a meta forward pass: no memory, no compute, yet it catches inputs too small
for the model (e.g. densenet121 on 28x28).
"""

from __future__ import annotations

import functools

import torch
from torch import nn

#: Classifiers that take an image and return one tensor of logits, in train and eval mode.
MODELS: tuple[str, ...] = (
    "resnet18", "resnet34", "resnet50",
    "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "efficientnet_b0", "efficientnet_b1",
    "shufflenet_v2_x1_0", "squeezenet1_1",
    "densenet121", "convnext_tiny", "vgg11_bn",
)
TORCHVISION_MODELS = MODELS  # as engine.networks exports it


class ProbeError(ValueError):
    """The model cannot run on the given input; the message says why in user terms."""


def _replace_first_conv(model: nn.Module, channels: int) -> None:
    """Swap the first Conv2d for one taking ``channels`` inputs, initialised as torchvision
    initialises its convolutions (Kaiming normal, fan-out)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            new = nn.Conv2d(channels, module.out_channels, module.kernel_size, module.stride,
                            module.padding, module.dilation, module.groups,
                            bias=module.bias is not None)
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
            if new.bias is not None:
                nn.init.zeros_(new.bias)
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name), attr, new)
            return
    raise ValueError("model has no Conv2d to adapt")  # pragma: no cover - whitelist has one


def build(name: str, channels: int, num_classes: int) -> nn.Module:
    """A fresh, randomly initialised model for ``channels``-channel images."""
    if name not in MODELS:
        raise ValueError(f"torchvision model {name!r} is not supported: {', '.join(MODELS)}")
    import torchvision  # imported here: LeNet and other spec networks never need it (~1 s)

    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    if channels != 3:
        _replace_first_conv(model, channels)
    return model


@functools.lru_cache(maxsize=64)
def probe(name: str, channels: int, height: int, width: int, num_classes: int) -> int:
    """Parameter count of the model for this input; raises ProbeError if it cannot run."""
    try:
        with torch.device("meta"):
            model = build(name, channels, num_classes)
    except NotImplementedError:  # a model whose constructor needs real numbers: build on CPU
        model = build(name, channels, num_classes)
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            out = model(torch.empty(1, channels, height, width, device=device))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProbeError(f"{name} cannot run on a {channels}x{height}x{width} input (too "
                         f"small for its downsampling?): {first}") from None
    if tuple(out.shape) != (1, num_classes):  # pragma: no cover - whitelist guarantees it
        raise ProbeError(f"{name} returned shape {tuple(out.shape)[1:]}, not {num_classes}")
    return sum(p.numel() for p in model.parameters())
