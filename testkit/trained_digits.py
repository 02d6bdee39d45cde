"""A small trained run shared by the serving, Triton and damage tests: LeNet, 2 epochs on the
offline 'digits' sample (seconds on a CPU), with its ONNX export and bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def train_digits_run(home: Path, run_dir: Path, epochs: int = 2) -> Path:
    from engine.training import TrainConfig, train

    train(TrainConfig(dataset="digits", network="lenet", epochs=epochs, seed=0), run_dir,
          home=home)
    return run_dir


@pytest.fixture(scope="module")
def digits_run(digits_home, tmp_path_factory) -> Path:
    return train_digits_run(digits_home, tmp_path_factory.mktemp("runs") / "lenet-digits")


@pytest.fixture(scope="module")
def digits_bundle(digits_run, digits_home) -> Path:
    from trt.bundle import make_bundle

    out = digits_run / "exports" / "bundle.zip"
    make_bundle(digits_run, out, home=digits_home)
    return out


@pytest.fixture(scope="module")
def digit_images(digits_home) -> tuple[list[np.ndarray], list[str]]:
    """Eight held-out images of the dataset (uint8 H x W) and their labels."""
    from engine.datasets import open_dataset

    ds = open_dataset("digits", home=digits_home)
    index = ds.split("test")[:8]
    return ([np.asarray(ds.images[i])[:, :, 0] for i in index],
            [ds.classes[int(ds.labels[i])] for i in index])
