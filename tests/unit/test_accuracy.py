"""Accuracy the issue promises: LeNet on the MNIST sample split and on the offline sample."""

from __future__ import annotations

from engine.training import TrainConfig, train


def test_lenet_mnist_sample_reaches_97_5(mnist_lenet):
    """mnist-8k/2k split: first 8,000 images train (10% of them validate), last 2,000 held out,
    5 epochs (the fixture's run)."""
    _, result = mnist_lenet
    assert result.epochs_completed == 5
    assert result.held_out["split"] == "test"
    assert result.held_out["accuracy"] >= 0.975, result.held_out


def test_lenet_offline_sample_reaches_97(digits_home, tmp_path):
    cfg = TrainConfig(dataset="digits", network="lenet", epochs=15, lr=0.01, seed=0)
    result = train(cfg, tmp_path / "lenet-digits", home=digits_home)
    assert result.held_out["split"] == "test"
    assert result.held_out["accuracy"] >= 0.97, result.held_out
