"""Classifying images with a trained checkpoint and the preprocessing contract stored in it."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.images.framing import apply_polarity, normalize_digit, to_gray
from engine.images.loading import fit_image, load_image
from engine.networks import build_network
from engine.training.checkpoint import CheckpointError, check_model_state, load_checkpoint

ImageLike = str | os.PathLike | bytes | np.ndarray | Image.Image


@dataclass
class Prediction:
    top: list[tuple[str, float]]  # (class, probability), most likely first
    probabilities: np.ndarray  # one per class
    input: np.ndarray  # what the network saw: uint8 H x W x C, before normalization

    @property
    def label(self) -> str:
        return self.top[0][0]

    @property
    def confidence(self) -> float:
        return self.top[0][1]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence,
                "top": [{"class": c, "probability": p} for c, p in self.top]}


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory (its best checkpoint, else its last)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).exists():
                return path / name
        raise FileNotFoundError(f"{path} holds no checkpoint (best.pt or last.pt)")
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


class Predictor:
    """A network rebuilt from a checkpoint: its spec, weights, classes and preprocessing."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu") -> None:
        self.path = resolve_checkpoint(checkpoint)
        ckpt = load_checkpoint(self.path, device)
        check_model_state(self.path, ckpt)
        try:
            self.classes: list[str] = [str(c) for c in ckpt["classes"]]
            self.preprocess: dict[str, Any] = dict(ckpt["preprocess"])
            self.input_shape = tuple(int(d) for d in ckpt["input_shape"])  # C, H, W
            self.spec = ckpt["spec"]
            self.config = dict(ckpt.get("config", {}))
            self.dataset_ref = dict(ckpt.get("dataset") or {})  # id, name, sha256 trained on
            self.epoch = int(ckpt.get("epoch", 0))
            self.device = torch.device(device)
            self.model = build_network(self.spec, self.input_shape, len(self.classes))
            self.model.load_state_dict(ckpt["model"])
        except (TypeError, ValueError, RuntimeError, KeyError, AttributeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise CheckpointError(f"checkpoint {self.path.name} does not describe a usable "
                                  f"model: {first}") from None
        self.model.to(self.device).eval()
        c = self.input_shape[0]
        mean = np.asarray(self.preprocess.get("mean") or [0.0] * c, dtype=np.float32)
        std = np.asarray(self.preprocess.get("std") or [1.0] * c, dtype=np.float32)
        self._mean = torch.from_numpy(mean).view(1, -1, 1, 1).to(self.device)
        self._std = torch.from_numpy(std).clamp_min(1e-6).view(1, -1, 1, 1).to(self.device)

    # --- preprocessing -----------------------------------------------------------------------

    def prepare(self, image: ImageLike, digit: bool = False, polarity: str = "auto"
                ) -> np.ndarray:
        """The uint8 H x W x C image the network will see.

        digit=True frames the ink like MNIST (canvas drawings, photos of digits); polarity
        turns dark-on-light images into the light-on-dark a white-on-black model was trained
        on ('auto' decides by the background; models trained otherwise keep 'as-is')."""
        c, h, w = self.input_shape
        if not isinstance(image, (np.ndarray, Image.Image)):
            image = load_image(image)
        if self.preprocess.get("polarity") != "white-on-black":
            polarity = "as-is"
        if digit:
            framed = normalize_digit(image, polarity=polarity)
            image = Image.fromarray(framed)
        elif polarity != "as-is":
            gray_like = c == 1
            arr = to_gray(image) if gray_like else np.asarray(_as_pil(image).convert("RGB"))
            if gray_like:
                arr = apply_polarity(arr, polarity)
                image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        return fit_image(_as_pil(image), h, w, c, self.preprocess.get("resize_mode", "squash"))

    def _tensor(self, batch_nhwc: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(batch_nhwc)).permute(0, 3, 1, 2)
        x = x.to(self.device).float().div_(255.0)
        return (x - self._mean) / self._std

    # --- prediction --------------------------------------------------------------------------

    @torch.no_grad()
    def probabilities(self, batch_nhwc: np.ndarray) -> np.ndarray:
        """Class probabilities for prepared uint8 images (N x H x W x C)."""
        return torch.softmax(self.model(self._tensor(batch_nhwc)), dim=1).cpu().numpy()

    def predict(self, images: list[ImageLike] | ImageLike, top_k: int = 5, digit: bool = False,
                polarity: str = "auto") -> list[Prediction]:
        if not isinstance(images, list):
            images = [images]
        prepared = np.stack([self.prepare(im, digit=digit, polarity=polarity) for im in images])
        probs = self.probabilities(prepared)
        k = min(top_k, len(self.classes))
        out = []
        for p, seen in zip(probs, prepared, strict=True):
            idx = np.argsort(-p)[:k]
            out.append(Prediction([(self.classes[i], float(p[i])) for i in idx], p, seen))
        return out


def _as_pil(image: np.ndarray | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return Image.fromarray(a)


def image_bytes_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image (for showing what the network sees)."""
    buf = io.BytesIO()
    _as_pil(array).save(buf, format="PNG")
    return buf.getvalue()
