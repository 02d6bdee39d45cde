"""The layer types a spec may use: parameters, shape arithmetic, parameter count, and module.

Shapes are propagated by plain arithmetic (no tensors), so checking a spec is instant and the
checks can give messages in the user's terms ("kernel 5 is larger than the 4x4 input") rather
than PyTorch's. Shapes exclude the batch axis: (C, H, W) for images, (N,) for flat vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from typing import Any

import torch
from torch import nn

from engine.networks import tvlayer
from engine.networks.errors import SpecError
from engine.networks.params import Param

Shape = tuple[int, ...]
Pair = tuple[int, int]

#: Layer types refused with a specific explanation rather than "unknown type".
REFUSED = {
    "softmax": "remove this layer: the network must end with raw class scores (logits). "
               "Training uses cross-entropy, which applies softmax itself, and predictions "
               "apply softmax to report confidences",
}
REFUSED["logsoftmax"] = REFUSED["log_softmax"] = REFUSED["softmax"]

#: Names from PyTorch, Keras and Caffe (DIGITS) -> our type; used only to suggest a fix.
ALIASES = {
    "convolution": "conv", "conv2d": "conv", "fc": "linear", "dense": "linear",
    "innerproduct": "linear", "fullyconnected": "linear", "pool": "maxpool",
    "pooling": "maxpool", "maxpool2d": "maxpool", "maxpooling2d": "maxpool",
    "avgpool2d": "avgpool", "averagepooling2d": "avgpool", "globalavgpool": "adaptiveavgpool",
    "globalaveragepooling2d": "adaptiveavgpool", "adaptiveavgpool2d": "adaptiveavgpool",
    "bn": "batchnorm", "batchnorm1d": "batchnorm", "batchnorm2d": "batchnorm",
    "batchnormalization": "batchnorm", "leakyrelu": "leakyrelu", "prelu": "leakyrelu",
    "swish": "silu", "block": "residual", "basicblock": "residual", "resblock": "residual",
}


@dataclass
class Layer:
    """One layer being checked: its clean arguments and the shape that flows into it."""

    index: int
    type: str
    args: dict[str, Any]
    in_shape: Shape
    num_classes: int

    def fail(self, message: str) -> SpecError:
        return SpecError(message, self.index, self.type)

    def image(self) -> tuple[int, int, int]:
        """(C, H, W) of the input, or a clear error if a flat vector arrives."""
        if len(self.in_shape) != 3:
            raise self.fail(f"needs an image input (channels x height x width), but gets a flat "
                            f"vector of {self.in_shape[0]} values; image layers must come "
                            "before flatten")
        c, h, w = self.in_shape
        return c, h, w

    def vector(self) -> int:
        """Length of a flat input; no auto-flatten, so the user sees where the image ends."""
        if len(self.in_shape) != 1:
            raise self.fail(f"needs a flat vector input, but gets a {fmt_shape(self.in_shape)} "
                            f"image; add a flatten layer before layer {self.index}")
        return self.in_shape[0]

    def out(self) -> int:
        """The 'out' argument with "classes" resolved to the dataset's class count."""
        value = self.args["out"]
        return self.num_classes if value == "classes" else value


@dataclass(frozen=True)
class Kind:
    """A layer type: its parameters, ``infer`` -> (output shape, params, description), and
    ``build`` -> the torch module (one module per spec layer, so indexes line up)."""

    params: dict[str, Param]
    infer: Callable[[Layer], tuple[Shape, int, str]]
    build: Callable[[Layer], nn.Module]


def fmt_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def fmt_pair(pair: Pair) -> str:
    """'5' for a square (5, 5), '5x3' otherwise: how users write kernels."""
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _window(layer: Layer, size: Pair, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """Output (H, W) of a sliding window (conv or pool), checking it fits the input."""
    padded = (size[0] + 2 * padding[0], size[1] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        extra = f" ({fmt_shape(padded)} with padding {fmt_pair(padding)})" if any(padding) else ""
        raise layer.fail(f"kernel {fmt_pair(kernel)} is larger than the {fmt_shape(size)} "
                         f"input{extra}")
    return ((padded[0] - kernel[0]) // stride[0] + 1, (padded[1] - kernel[1]) // stride[1] + 1)


def _conv_desc(name: str, out: int | None, kernel: Pair, stride: Pair, padding: Pair) -> str:
    parts = [name] + ([str(out)] if out is not None else [])
    parts += [f"{kernel[0]}x{kernel[1]}", f"s{fmt_pair(stride)}"]
    if any(padding):
        parts.append(f"p{fmt_pair(padding)}")
    return " ".join(parts)


# --- conv --------------------------------------------------------------------------------

def _conv_infer(layer: Layer) -> tuple[Shape, int, str]:
    c, h, w = layer.image()
    a, out = layer.args, layer.out()
    if c % a["groups"] or out % a["groups"]:
        raise layer.fail(f"groups {a['groups']} must divide both the {c} input channels and "
                         f"the {out} output channels")
    oh, ow = _window(layer, (h, w), a["kernel"], a["stride"], a["padding"])
    params = out * (c // a["groups"]) * a["kernel"][0] * a["kernel"][1] + (out if a["bias"] else 0)
    desc = _conv_desc("conv", out, a["kernel"], a["stride"], a["padding"])
    if a["groups"] > 1:
        desc += f" g{a['groups']}"
    return (out, oh, ow), params, desc


def _conv_build(layer: Layer) -> nn.Module:
    a = layer.args
    return nn.Conv2d(layer.in_shape[0], layer.out(), a["kernel"], a["stride"], a["padding"],
                     groups=a["groups"], bias=a["bias"])


CONV = Kind(
    params={"out": Param("out"), "kernel": Param("pair"), "stride": Param("pair", (1, 1)),
            "padding": Param("pair", (0, 0), minimum=0), "groups": Param("int", 1),
            "bias": Param("bool", True)},
    infer=_conv_infer, build=_conv_build)


# --- pooling -----------------------------------------------------------------------------

def _pool_args(layer: Layer) -> tuple[Pair, Pair, Pair]:
    a = layer.args
    kernel, padding = a["kernel"], a["padding"]
    stride = a["stride"] or kernel
    if 2 * padding[0] > kernel[0] or 2 * padding[1] > kernel[1]:
        raise layer.fail(f"padding {fmt_pair(padding)} must be at most half the kernel "
                         f"{fmt_pair(kernel)}")
    return kernel, stride, padding


def _pool_infer(layer: Layer) -> tuple[Shape, int, str]:
    c, h, w = layer.image()
    kernel, stride, padding = _pool_args(layer)
    oh, ow = _window(layer, (h, w), kernel, stride, padding)
    return (c, oh, ow), 0, _conv_desc(layer.type, None, kernel, stride, padding)


def _maxpool_build(layer: Layer) -> nn.Module:
    return nn.MaxPool2d(*_pool_args(layer))


def _avgpool_build(layer: Layer) -> nn.Module:
    return nn.AvgPool2d(*_pool_args(layer))


_POOL_PARAMS = {"kernel": Param("pair"), "stride": Param("pair", None),
                "padding": Param("pair", (0, 0), minimum=0)}
MAXPOOL = Kind(params=_POOL_PARAMS, infer=_pool_infer, build=_maxpool_build)
AVGPOOL = Kind(params=_POOL_PARAMS, infer=_pool_infer, build=_avgpool_build)


def _adaptive_infer(layer: Layer) -> tuple[Shape, int, str]:
    c, _, _ = layer.image()
    size = layer.args["size"]
    return (c, *size), 0, f"adaptiveavgpool {size[0]}x{size[1]}"


ADAPTIVEAVGPOOL = Kind(params={"size": Param("pair", (1, 1))}, infer=_adaptive_infer,
                       build=lambda layer: nn.AdaptiveAvgPool2d(layer.args["size"]))


# --- element-wise layers -----------------------------------------------------------------

def _same(desc: Callable[[Layer], str]) -> Callable[[Layer], tuple[Shape, int, str]]:
    """infer for layers that keep the shape and have no parameters."""
    return lambda layer: (layer.in_shape, 0, desc(layer))


def _plain(name: str, module: type[nn.Module]) -> Kind:
    return Kind(params={}, infer=_same(lambda _: name), build=lambda _: module())


def _dropout2d_infer(layer: Layer) -> tuple[Shape, int, str]:
    layer.image()
    return layer.in_shape, 0, f"dropout2d {layer.args['p']:g}"


RELU = _plain("relu", nn.ReLU)
TANH = _plain("tanh", nn.Tanh)
SIGMOID = _plain("sigmoid", nn.Sigmoid)
GELU = _plain("gelu", nn.GELU)
SILU = _plain("silu", nn.SiLU)
LEAKYRELU = Kind(params={"slope": Param("float", 0.01)},
                 infer=_same(lambda layer: f"leakyrelu {layer.args['slope']:g}"),
                 build=lambda layer: nn.LeakyReLU(layer.args["slope"]))
ELU = Kind(params={"alpha": Param("float", 1.0)},
           infer=_same(lambda layer: f"elu {layer.args['alpha']:g}"),
           build=lambda layer: nn.ELU(layer.args["alpha"]))
DROPOUT = Kind(params={"p": Param("prob", 0.5)},
               infer=_same(lambda layer: f"dropout {layer.args['p']:g}"),
               build=lambda layer: nn.Dropout(layer.args["p"]))
DROPOUT2D = Kind(params={"p": Param("prob", 0.5)}, infer=_dropout2d_infer,
                 build=lambda layer: nn.Dropout2d(layer.args["p"]))


# --- normalisation -----------------------------------------------------------------------

def _batchnorm_infer(layer: Layer) -> tuple[Shape, int, str]:
    dims = "2d" if len(layer.in_shape) == 3 else "1d"
    return layer.in_shape, 2 * layer.in_shape[0], f"batchnorm{dims}"


def _batchnorm_build(layer: Layer) -> nn.Module:
    norm = nn.BatchNorm2d if len(layer.in_shape) == 3 else nn.BatchNorm1d
    return norm(layer.in_shape[0])


def _layernorm_infer(layer: Layer) -> tuple[Shape, int, str]:
    if len(layer.in_shape) == 3:
        return layer.in_shape, 2 * layer.in_shape[0], "layernorm (over C,H,W)"
    return layer.in_shape, 2 * layer.in_shape[0], "layernorm"


def _layernorm_build(layer: Layer) -> nn.Module:
    # On images: GroupNorm with one group normalises over (C, H, W) like LayerNorm, but with
    # per-channel scale and shift, so it does not tie the model to one image size.
    if len(layer.in_shape) == 3:
        return nn.GroupNorm(1, layer.in_shape[0])
    return nn.LayerNorm(layer.in_shape[0])


BATCHNORM = Kind(params={}, infer=_batchnorm_infer, build=_batchnorm_build)
LAYERNORM = Kind(params={}, infer=_layernorm_infer, build=_layernorm_build)


# --- flatten and linear ------------------------------------------------------------------

FLATTEN = Kind(params={}, infer=lambda layer: ((prod(layer.in_shape),), 0, "flatten"),
               build=lambda _: nn.Flatten())


def _linear_infer(layer: Layer) -> tuple[Shape, int, str]:
    n, out = layer.vector(), layer.out()
    desc = f"linear {out}" + (" (classes)" if layer.args["out"] == "classes" else "")
    return (out,), n * out + (out if layer.args["bias"] else 0), desc


LINEAR = Kind(params={"out": Param("out"), "bias": Param("bool", True)}, infer=_linear_infer,
              build=lambda layer: nn.Linear(layer.in_shape[0], layer.out(), layer.args["bias"]))


# --- residual block ----------------------------------------------------------------------

class ResidualBlock(nn.Module):
    """ResNet basic block: 3x3 conv-bn-relu-conv-bn plus a shortcut, then ReLU.

    The shortcut is the identity, or a 1x1 conv + bn projection when the stride or the
    channel count changes (ResNet "option B").
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


def _residual_infer(layer: Layer) -> tuple[Shape, int, str]:
    c, h, w = layer.image()
    out, stride = layer.out(), layer.args["stride"]
    params = 9 * c * out + 9 * out * out + 4 * out
    desc = f"residual {out} s{stride}"
    if stride != 1 or c != out:
        params += c * out + 2 * out
        desc += " (projection)"
    return (out, (h - 1) // stride + 1, (w - 1) // stride + 1), params, desc


RESIDUAL = Kind(params={"out": Param("out"), "stride": Param("int", 1)}, infer=_residual_infer,
                build=lambda layer: ResidualBlock(layer.in_shape[0], layer.out(),
                                                  layer.args["stride"]))


# --- torchvision -------------------------------------------------------------------------

def _torchvision_infer(layer: Layer) -> tuple[Shape, int, str]:
    c, h, w = layer.image()
    name = layer.args["name"]
    try:
        params = tvlayer.probe(name, c, h, w, layer.num_classes)
    except tvlayer.ProbeError as exc:
        raise layer.fail(str(exc)) from None
    desc = f"torchvision {name}" + ("" if c == 3 else f" ({c}-channel input)")
    return (layer.num_classes,), params, desc


TORCHVISION = Kind(
    params={"name": Param("choice", choices=tvlayer.MODELS)}, infer=_torchvision_infer,
    build=lambda layer: tvlayer.build(layer.args["name"], layer.in_shape[0], layer.num_classes))


KINDS: dict[str, Kind] = {
    "conv": CONV, "maxpool": MAXPOOL, "avgpool": AVGPOOL, "adaptiveavgpool": ADAPTIVEAVGPOOL,
    "relu": RELU, "leakyrelu": LEAKYRELU, "tanh": TANH, "sigmoid": SIGMOID, "gelu": GELU,
    "elu": ELU, "silu": SILU, "dropout": DROPOUT, "dropout2d": DROPOUT2D,
    "batchnorm": BATCHNORM, "layernorm": LAYERNORM, "flatten": FLATTEN, "linear": LINEAR,
    "residual": RESIDUAL, "torchvision": TORCHVISION,
}
