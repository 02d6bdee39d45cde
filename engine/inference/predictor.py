"""Classifying images with a trained checkpoint and the preprocessing contract stored in it."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from engine.images.contract import Contract, ImageLike, as_pil
from engine.inference.results import Prediction, predictions
from engine.networks import build_network
from engine.training.checkpoint import CheckpointError, check_model_state, load_checkpoint

__all__ = ["ImageLike", "Prediction", "Predictor", "image_bytes_png", "resolve_checkpoint"]


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
    """A network rebuilt from a checkpoint: its spec, weights, classes and contract."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu") -> None:
        self.path = resolve_checkpoint(checkpoint)
        ckpt = load_checkpoint(self.path, device)
        check_model_state(self.path, ckpt)
        try:
            self.classes: list[str] = [str(c) for c in ckpt["classes"]]
            self.input_shape = tuple(int(d) for d in ckpt["input_shape"])  # C, H, W
            self.contract = Contract.from_dict(ckpt["preprocess"], self.input_shape)
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
        self.normalizer = self.contract.torch_normalizer(self.device)

    def prepare(self, image: ImageLike, digit: bool | None = None, polarity: str = "auto"
                ) -> np.ndarray:
        """The uint8 H x W x C image the network will see (see Contract.prepare)."""
        return self.contract.prepare(image, digit=digit, polarity=polarity)

    def tensor(self, batch_nhwc: np.ndarray) -> torch.Tensor:
        """The normalized network input for prepared uint8 images, on the device."""
        return self.normalizer.from_nhwc(batch_nhwc)

    @torch.no_grad()
    def logits(self, batch_nhwc: np.ndarray) -> np.ndarray:
        """Raw class scores (float32 N x classes) for prepared uint8 images (N x H x W x C)."""
        return self.model(self.tensor(batch_nhwc)).float().cpu().numpy()

    def probabilities(self, batch_nhwc: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Class probabilities for prepared uint8 images (N x H x W x C), through the
        contract's temperature unless calibrated is False (the raw softmax)."""
        return self.contract.probabilities(self.logits(batch_nhwc), calibrated)

    def predict(self, images: list[ImageLike] | ImageLike, top_k: int = 5,
                digit: bool | None = None, polarity: str = "auto") -> list[Prediction]:
        if not isinstance(images, list):
            images = [images]
        prepared = self.contract.prepare_batch(images, digit=digit, polarity=polarity)
        return predictions(self.probabilities(prepared), self.classes, prepared, top_k)


def image_bytes_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image (for showing what the network sees)."""
    buf = io.BytesIO()
    as_pil(array).save(buf, format="PNG")
    return buf.getvalue()
