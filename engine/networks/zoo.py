"""The built-in networks, each written as an ordinary spec (what a user could type).

Callers get deep copies, so the dashboard can offer "start from lenet and edit" safely.
"""

from __future__ import annotations

import copy

MNIST = {"channels": 1, "height": 28, "width": 28}
CIFAR = {"channels": 3, "height": 32, "width": 32}
IMAGENET = {"channels": 3, "height": 224, "width": 224}


def _conv(out: int, kernel: int, **extra) -> dict:
    return {"type": "conv", "out": out, "kernel": kernel, **extra}


def _bn_relu() -> list[dict]:
    return [{"type": "batchnorm"}, {"type": "relu"}]


def _lenet(conv1: int, conv2: int, relu_after_pool1: bool) -> list[dict]:
    pool1 = [{"type": "maxpool", "kernel": 2}] + ([{"type": "relu"}] if relu_after_pool1 else [])
    return [_conv(conv1, 5), *pool1, _conv(conv2, 5), {"type": "maxpool", "kernel": 2},
            {"type": "flatten"}, {"type": "linear", "out": 500}, {"type": "relu"},
            {"type": "linear", "out": "classes"}]


def _residuals(*blocks: tuple[int, int]) -> list[dict]:
    return [{"type": "residual", "out": out, **({"stride": s} if s != 1 else {})}
            for out, s in blocks]


_ZOO: dict[str, dict] = {
    "lenet": {
        "description": "LeNet as DIGITS defines it (conv 20, pool, conv 50, pool, fc 500, "
                       "relu, fc classes); the classic MNIST network",
        "input": MNIST,
        "layers": _lenet(20, 50, relu_after_pool1=False),
    },
    "lenet-wide": {
        "description": "The lab's widened LeNet: conv1 75 and conv2 100 filters, with a ReLU "
                       "after pool1",
        "input": MNIST,
        "layers": _lenet(75, 100, relu_after_pool1=True),
    },
    "lenet-real": {
        "description": "For real-world digits: the lab's widened LeNet (conv 75, relu after "
                       "pool1, conv 100) with batch norm after each convolution and dropout "
                       "before the classifier; steadier under augmentation and one-cycle rates",
        "input": MNIST,
        "layers": [_conv(75, 5), {"type": "batchnorm"}, {"type": "maxpool", "kernel": 2},
                   {"type": "relu"}, _conv(100, 5), {"type": "batchnorm"},
                   {"type": "maxpool", "kernel": 2}, {"type": "relu"}, {"type": "flatten"},
                   {"type": "dropout", "p": 0.3}, {"type": "linear", "out": 500},
                   {"type": "relu"}, {"type": "dropout", "p": 0.3},
                   {"type": "linear", "out": "classes"}],
    },
    "mlp": {
        "description": "Multi-layer perceptron (512-256) on raw pixels; a no-convolution "
                       "baseline",
        "input": MNIST,
        "layers": [{"type": "flatten"}, {"type": "linear", "out": 512}, {"type": "relu"},
                   {"type": "dropout", "p": 0.2}, {"type": "linear", "out": 256},
                   {"type": "relu"}, {"type": "linear", "out": "classes"}],
    },
    "small-cnn": {
        "description": "Small VGG-style CNN with batch norm (32-32-64 filters); fast and "
                       "accurate on small grey or colour images",
        "input": MNIST,
        "layers": [_conv(32, 3, padding=1), *_bn_relu(), _conv(32, 3, padding=1), *_bn_relu(),
                   {"type": "maxpool", "kernel": 2}, _conv(64, 3, padding=1), *_bn_relu(),
                   {"type": "maxpool", "kernel": 2}, {"type": "flatten"},
                   {"type": "dropout", "p": 0.25}, {"type": "linear", "out": 128},
                   {"type": "relu"}, {"type": "linear", "out": "classes"}],
    },
    "resnet-small": {
        "description": "Small ResNet (16-32-64 channels, 6 residual blocks) for 32x32 colour "
                       "images such as CIFAR-10",
        "input": CIFAR,
        "layers": [_conv(16, 3, padding=1, bias=False), *_bn_relu(),
                   *_residuals((16, 1), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1)),
                   {"type": "adaptiveavgpool", "size": 1}, {"type": "flatten"},
                   {"type": "linear", "out": "classes"}],
    },
    "resnet18": {
        "description": "torchvision ResNet-18 (random initialisation) for larger colour "
                       "images; also runs on small or grey images",
        "input": IMAGENET,
        "layers": [{"type": "torchvision", "name": "resnet18"}],
    },
}


def zoo_names() -> list[str]:
    """Names of the built-in networks, in the order a menu should show them."""
    return list(_ZOO)


def zoo_spec(name: str) -> dict:
    """A fresh copy of a built-in network's spec (safe to edit)."""
    if name not in _ZOO:
        raise ValueError(f"unknown network {name!r}; choose one of: {', '.join(_ZOO)}")
    return {"name": name, **copy.deepcopy(_ZOO[name])}


def zoo_info() -> list[dict]:
    """Name, description and recommended input of every built-in network, for menus."""
    return [{"name": name, "description": entry["description"],
             "input": dict(entry["input"])} for name, entry in _ZOO.items()]
