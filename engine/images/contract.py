"""The preprocessing contract: the one definition of how an image becomes a network's input.

A dataset writes its contract into its manifest ("preprocess"); checkpoints, ONNX exports and
bundles carry it. Contract.prepare() turns any image (file, bytes, Pillow image, array, canvas
drawing, photo) into the uint8 H x W x C picture the network sees; Contract.normalize() (numpy,
for ONNX Runtime and TensorRT) and Contract.torch_normalizer() (torch, for training and the
PyTorch predictor) turn prepared uint8 batches into the float NCHW tensor, with the same float32
operations in the same order, so every backend gets bit-identical inputs.

torch is imported only by torch_normalizer(): bundles and ONNX Runtime need numpy and Pillow only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from engine.images.framing import apply_polarity, normalize_digit, to_gray
from engine.images.loading import CHANNELS, RESIZE_MODES, fit_image, load_image

if TYPE_CHECKING:
    import torch

ImageLike = str | os.PathLike | bytes | np.ndarray | Image.Image

# What the training images look like: "white-on-black" (light ink on dark, as MNIST) lets
# inputs be turned that way (polarity 'auto' / 'invert'); "as-is" keeps every input unchanged.
POLARITIES: tuple[str, ...] = ("white-on-black", "as-is")
# How digits were framed in the training data: "mnist" (ink box fitted into 20x20, centred by
# centre of mass in 28x28) makes prepare() frame digit inputs the same way by default.
FRAMINGS: tuple[str, ...] = ("none", "mnist")


class ContractError(ValueError):
    """A contract that cannot describe a network input; the message names the field."""


@dataclass(frozen=True)
class Contract:
    channels: int
    height: int
    width: int
    resize_mode: str = "squash"
    polarity: str = "as-is"
    framing: str = "none"
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())
    scale: float = 255.0
    # Temperature scaling (Guo et al. 2017): probabilities are softmax(logits / temperature).
    # 1.0 = uncalibrated; fitted on the validation split by engine.evaluation.calibration.
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.channels not in CHANNELS:
            raise ContractError(f"contract channels must be 1 or 3, not {self.channels!r}")
        if not all(isinstance(s, int) and s > 0 for s in (self.height, self.width)):
            raise ContractError(f"contract size must be positive integers, not "
                                f"{self.height!r} x {self.width!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ContractError(f"contract resize_mode must be one of {', '.join(RESIZE_MODES)}")
        if self.polarity not in POLARITIES:
            raise ContractError(f"contract polarity must be one of {', '.join(POLARITIES)}")
        if self.framing not in FRAMINGS:
            raise ContractError(f"contract framing must be one of {', '.join(FRAMINGS)}")
        # Missing statistics mean "no standardization": mean 0 and std 1 per channel.
        object.__setattr__(self, "mean", _per_channel(self.mean, 0.0, self.channels, "mean"))
        object.__setattr__(self, "std", _per_channel(self.std, 1.0, self.channels, "std"))
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ContractError(f"contract scale must be a positive number, not {self.scale!r}")
        try:
            t = float(self.temperature)
        except (TypeError, ValueError):
            t = float("nan")
        if isinstance(self.temperature, bool) or not (np.isfinite(t) and t > 0):
            raise ContractError("contract temperature must be a positive number, not "
                                f"{self.temperature!r}")
        object.__setattr__(self, "temperature", t)

    # --- the stored form -------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: dict[str, Any], input_shape: Sequence[int] | None = None
                  ) -> Contract:
        """A contract from a manifest's, checkpoint's, export's or bundle's "preprocess" dict.
        Older dicts without the size take it from input_shape (C, H, W)."""
        if not isinstance(d, dict):
            raise ContractError(f"a preprocessing contract is a mapping, not {type(d).__name__}")
        c, h, w = input_shape if input_shape is not None else (None, None, None)
        try:
            return cls(channels=int(d.get("channels", c)), height=int(d.get("height", h)),
                       width=int(d.get("width", w)),
                       resize_mode=str(d.get("resize_mode", "squash")),
                       polarity=str(d.get("polarity") or "as-is"),
                       framing=str(d.get("framing") or "none"),
                       mean=tuple(float(v) for v in d.get("mean") or ()),
                       std=tuple(float(v) for v in d.get("std") or ()),
                       scale=float(d.get("scale") or 255.0),
                       temperature=1.0 if d.get("temperature") is None
                       else d["temperature"])  # checked, and made a float, by __post_init__
        except (TypeError, ValueError) as e:
            if isinstance(e, ContractError):
                raise
            raise ContractError(f"the preprocessing contract is malformed: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    def probabilities(self, logits: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Class probabilities from N x classes logits: the one place every backend turns
        scores into confidences; calibrated=False gives the raw softmax (temperature 1)."""
        return softmax(logits, self.temperature if calibrated else 1.0)

    @property
    def calibrated(self) -> bool:
        """Whether a temperature was fitted (probabilities differ from the raw softmax)."""
        return self.temperature != 1.0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """C, H, W of one network input."""
        return self.channels, self.height, self.width

    # --- preparing images ------------------------------------------------------------------

    def prepare(self, image: ImageLike, digit: bool | None = None, polarity: str = "auto"
                ) -> np.ndarray:
        """The uint8 H x W x C image the network will see (writable).

        digit frames the ink like MNIST (canvas drawings, photos of digits); None follows the
        contract's framing. polarity turns dark-on-light inputs into the light-on-dark a
        white-on-black model was trained on ('auto' decides by the background, 'invert' always,
        'as-is' never); models trained on other data always see inputs as they are."""
        if digit is None:
            digit = self.framing == "mnist"
        if not isinstance(image, (np.ndarray, Image.Image)):
            image = load_image(image)
        polarity = self.effective_polarity(polarity)
        if digit:
            image = Image.fromarray(normalize_digit(image, polarity=polarity))
        elif polarity != "as-is" and self.channels == 1:
            gray = apply_polarity(to_gray(image), polarity)
            image = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8))
        seen = fit_image(as_pil(image), self.height, self.width, self.channels, self.resize_mode)
        return np.array(seen)  # writable: torch.from_numpy warns on read-only buffers

    def effective_polarity(self, polarity: str) -> str:
        """The polarity an input really gets: networks not trained white-on-black see every
        image as it is, whatever was asked."""
        return polarity if self.polarity == "white-on-black" else "as-is"

    def prepare_batch(self, images: Sequence[ImageLike], digit: bool | None = None,
                      polarity: str = "auto") -> np.ndarray:
        """prepare() over images, stacked into a uint8 N x H x W x C batch."""
        return np.stack([self.prepare(im, digit=digit, polarity=polarity) for im in images])

    # --- normalizing prepared batches -------------------------------------------------------

    def normalize(self, batch_nhwc: np.ndarray) -> np.ndarray:
        """float32 N x C x H x W network input from prepared uint8 N x H x W x C images:
        x / scale, then (x - mean) / std per channel."""
        x = np.ascontiguousarray(batch_nhwc).astype(np.float32).transpose(0, 3, 1, 2)
        mean, std = self._stats()
        return np.ascontiguousarray((x / np.float32(self.scale) - mean.reshape(1, -1, 1, 1))
                                    / std.reshape(1, -1, 1, 1))

    def torch_normalizer(self, device: torch.device | str = "cpu") -> TorchNormalizer:
        """The same normalization on torch tensors, split in two steps so augmentation can run
        on the unit-scaled batch in between (training)."""
        return TorchNormalizer(self, device)

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.maximum(np.asarray(self.std, dtype=np.float32), np.float32(1e-6))
        return mean, std


class TorchNormalizer:
    """Contract.normalize() in torch, on a device: to_unit (x / scale), then standardize."""

    def __init__(self, contract: Contract, device: torch.device | str) -> None:
        import torch

        mean, std = contract._stats()
        self.scale = float(np.float32(contract.scale))
        self.mean = torch.from_numpy(mean).view(1, -1, 1, 1).to(device)
        self.std = torch.from_numpy(std).view(1, -1, 1, 1).to(device)

    def to_unit(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return x_uint8.float().div_(self.scale)

    def standardize(self, x_unit: torch.Tensor) -> torch.Tensor:
        return (x_unit - self.mean) / self.std

    def __call__(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """float N x C x H x W from uint8 N x C x H x W."""
        return self.standardize(self.to_unit(x_uint8))

    def from_nhwc(self, batch_nhwc: np.ndarray) -> torch.Tensor:
        """The network input for a prepared uint8 N x H x W x C numpy batch."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch_nhwc)).permute(0, 3, 1, 2)
        return self(x.to(self.mean.device))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise float32 softmax of N x classes logits / temperature, computed in float64 so
    numpy, ONNX Runtime and TensorRT outputs agree with PyTorch's to rounding."""
    z = np.asarray(logits, np.float64) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def as_pil(image: np.ndarray | Image.Image) -> Image.Image:
    """A Pillow image from an array (clipped to uint8) or a Pillow image."""
    if isinstance(image, Image.Image):
        return image
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return Image.fromarray(a)


def _per_channel(values: Sequence[float], default: float, channels: int, name: str
                 ) -> tuple[float, ...]:
    values = tuple(float(v) for v in values) or (default,) * channels
    if len(values) == 1 and channels > 1:
        values = values * channels
    if len(values) != channels or not all(np.isfinite(values)):
        raise ContractError(f"contract {name} needs {channels} finite value(s), got {values}")
    return values
