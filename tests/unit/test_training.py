"""The trainer: solvers, policies, augmentation, checkpoints, resume, determinism, divergence."""

from __future__ import annotations

import math

import pytest
import torch

from engine.training import (
    LR_POLICIES,
    SOLVERS,
    AugmentConfig,
    ConfigError,
    RecordingSink,
    TrainConfig,
    TrainingDiverged,
    list_checkpoints,
    load_checkpoint,
    lr_factor,
    lr_schedule,
    train,
)
from engine.training import trainer as trainer_module
from engine.training.augment import augment_batch

TIMING = ("images_per_s", "epoch_time")


def _strip(history):
    return [{k: v for k, v in m.items() if k not in TIMING} for m in history]


def run(home, tmp_path, name="run", sink=None, should_stop=None, resume=False, **kw):
    cfg = TrainConfig(dataset="digits", **{"epochs": 2, "lr": 0.01, **kw})
    return train(cfg, tmp_path / name, sink=sink, should_stop=should_stop, resume=resume,
                 home=home)


# One epoch of the MLP on the offline digits is enough to tell learning from not learning
# (chance is 10%) and keeps 16 trainings to a few seconds each.
SOLVER_LR = {"sgd": 0.05, "nesterov": 0.05, "adam": 3e-3, "adamw": 3e-3, "rmsprop": 1e-3,
             "adagrad": 0.05, "adadelta": 1.0}


@pytest.mark.parametrize("solver", SOLVERS)
def test_each_solver_learns(digits_home, tmp_path, solver):
    momentum = 0.0 if solver == "rmsprop" else 0.9
    r = run(digits_home, tmp_path, network="mlp", epochs=1, batch_size=32, solver=solver,
            lr=SOLVER_LR[solver], momentum=momentum)
    assert r.status == "done" and r.epochs_completed == 1
    last = r.history[-1]
    assert math.isfinite(last["train_loss"]) and math.isfinite(last["val_loss"])
    assert last["val_accuracy"] > 0.6, f"{solver} reached only {last['val_accuracy']:.2f}"
    assert last["val_loss"] < math.log(10)  # below the loss of guessing uniformly


def test_policy_formulas():
    base = dict(dataset="d", epochs=10, lr=0.1)
    assert lr_factor(TrainConfig(**base, lr_policy="fixed"), 7.3) == 1.0
    step = TrainConfig(**base, lr_policy="step", step_size=3, gamma=0.5)
    assert lr_factor(step, 2.9) == 1.0 and lr_factor(step, 3.0) == 0.5
    assert lr_factor(step, 6.5) == 0.25
    ms = TrainConfig(**base, lr_policy="multistep", milestones=[2, 5], gamma=0.1)
    assert [lr_factor(ms, t) for t in (1, 2, 4, 5, 9)] == pytest.approx([1, .1, .1, .01, .01])
    exp = TrainConfig(**base, lr_policy="exp", gamma=0.9)
    assert lr_factor(exp, 2) == pytest.approx(0.81)
    inv = TrainConfig(**base, lr_policy="inv", gamma=0.5, power=2)
    assert lr_factor(inv, 2) == pytest.approx(0.25)
    poly = TrainConfig(**base, lr_policy="poly", power=2)
    assert lr_factor(poly, 5) == pytest.approx(0.25) and lr_factor(poly, 10) == 0
    sig = TrainConfig(**base, lr_policy="sigmoid", gamma=-1.0, step_size=5)
    assert lr_factor(sig, 5) == pytest.approx(0.5) and lr_factor(sig, 0) > 0.99
    cos = TrainConfig(**base, lr_policy="cosine")
    assert lr_factor(cos, 0) == 1 and lr_factor(cos, 5) == pytest.approx(0.5)
    assert lr_factor(cos, 10) == pytest.approx(0, abs=1e-12)
    one = TrainConfig(**base, lr_policy="onecycle")
    assert lr_factor(one, 0) == pytest.approx(1 / 25) and lr_factor(one, 3) == pytest.approx(1)
    assert lr_factor(one, 10) == pytest.approx(1e-4)
    warm = TrainConfig(**base, lr_policy="fixed", warmup_epochs=2)
    assert lr_factor(warm, 0) == 0 and lr_factor(warm, 1) == 0.5 and lr_factor(warm, 2) == 1


def test_schedule_preview_matches_training(digits_home, tmp_path):
    for policy in LR_POLICIES:
        cfg = TrainConfig(dataset="d", epochs=4, lr=0.1, lr_policy=policy, step_size=2,
                          gamma=0.5 if policy != "sigmoid" else -1.0, milestones=[1, 3])
        points = lr_schedule(cfg, points_per_epoch=4)
        assert len(points) == 17 and points[0][0] == 0 and points[-1][0] == 4
        assert all(lr >= 0 for _, lr in points)
    r = run(digits_home, tmp_path, epochs=3, lr_policy="step", step_size=1, gamma=0.5)
    # The rate of an epoch's last step: epoch + (steps-1)/steps in the schedule.
    assert [m["lr"] for m in r.history] == pytest.approx([0.01, 0.005, 0.0025])


@pytest.mark.parametrize("policy", LR_POLICIES)
def test_each_policy_trains(digits_home, tmp_path, policy):
    r = run(digits_home, tmp_path, network="mlp", epochs=1, batch_size=32, lr=0.05,
            lr_policy=policy, step_size=1, milestones=[0.5],
            gamma=0.5 if policy != "sigmoid" else -1.0, warmup_epochs=0.25)
    assert r.status == "done"
    assert all(math.isfinite(m["train_loss"]) for m in r.history)
    assert r.history[-1]["val_accuracy"] > 0.3


def test_checkpoints_and_metrics(digits_home, tmp_path):
    sink = RecordingSink()
    r = run(digits_home, tmp_path, sink=sink, epochs=3, checkpoint_interval=2, val_interval=2)
    run_dir = tmp_path / "run"
    names = sorted(p.name for p in list_checkpoints(run_dir))
    assert names == ["best.pt", "epoch-0002.pt", "epoch-0003.pt"]
    assert (run_dir / "last.pt").exists() and (run_dir / "config.json").exists()
    assert "epoch 3" in (run_dir / "log.txt").read_text()
    ckpt = load_checkpoint(run_dir / "checkpoints" / "epoch-0002.pt")
    assert ckpt["epoch"] == 2 and set(ckpt["rng"]) >= {"torch", "generator"}
    assert ckpt["classes"] == [str(i) for i in range(10)]
    assert "optimizer" in ckpt and ckpt["preprocess"]["height"] == 28
    # Validation on epochs 2 and 3 (the last) only; per-epoch metrics all present.
    assert ["val_accuracy" in m for m in r.history] == [False, True, True]
    m = r.history[-1]
    for key in ("train_loss", "val_loss", "val_accuracy", "val_top5", "lr", "images_per_s",
                "epoch_time", "val_per_class_accuracy"):
        assert key in m, key
    assert len(m["val_per_class_accuracy"]) == 10
    assert m["val_top5"] >= m["val_accuracy"]
    assert sink.epochs == r.history and sink.result["status"] == "done"
    assert sink.started["train_images"] > 1000
    assert r.held_out["split"] == "test" and r.held_out["accuracy"] > 0.8


def test_progress_is_rate_bounded(digits_home, tmp_path):
    """Reports are at least PROGRESS_INTERVAL_S apart whatever the machine's speed (a busy CPU
    makes epochs longer, never reports denser), and each epoch's end is always reported."""
    import time

    from engine.training.trainer import PROGRESS_INTERVAL_S

    class TimedSink(RecordingSink):
        def on_progress(self, p):
            super().on_progress({**p, "at": time.perf_counter()})

    sink = TimedSink()
    run(digits_home, tmp_path, sink=sink, epochs=2, batch_size=8)
    by_epoch = {}
    for p in sink.progress:
        by_epoch.setdefault(p["epoch"], []).append(p)
    steps = math.ceil(sink.started["train_images"] / 8)
    assert len(by_epoch) == 2
    for reports in by_epoch.values():
        assert reports[-1]["step"] == steps  # the epoch's end is always reported
        assert len(reports) < steps  # not one per step
        gaps = [b["at"] - a["at"] for a, b in zip(reports[:-2], reports[1:-1], strict=True)]
        assert all(g >= PROGRESS_INTERVAL_S * 0.9 for g in gaps), gaps
        assert all(r["eta_s"] >= 0 and r["images_per_s"] > 0 for r in reports)


def test_same_seed_same_metrics(digits_home, tmp_path):
    kw = dict(epochs=2, augment=AugmentConfig(rotation=10, shift=0.1, noise=0.05))
    a = run(digits_home, tmp_path, "a", **kw)
    b = run(digits_home, tmp_path, "b", **kw)
    c = run(digits_home, tmp_path, "c", seed=1, **kw)
    assert _strip(a.history) == _strip(b.history)
    assert _strip(a.history) != _strip(c.history)


@pytest.mark.parametrize("stop_at_step", [None, 7])
def test_resume_equals_uninterrupted(digits_home, tmp_path, stop_at_step):
    """2 epochs then resume 2 (or a stop mid-epoch) equals 4 epochs straight, on the CPU."""
    kw = dict(epochs=4, lr_policy="step", step_size=1, gamma=0.7,
              augment=AugmentConfig(rotation=10, invert=0.2))
    full = run(digits_home, tmp_path, "full", **kw)

    calls = {"n": 0}
    steps_per_epoch = math.ceil(full_train_images(digits_home) / 64)
    stop_after = 2 * steps_per_epoch if stop_at_step is None else steps_per_epoch + stop_at_step

    def should_stop():
        calls["n"] += 1
        return calls["n"] >= stop_after

    first = run(digits_home, tmp_path, "split", should_stop=should_stop, **kw)
    assert first.status == "stopped"
    assert first.epochs_completed == (2 if stop_at_step is None else 1)
    second = run(digits_home, tmp_path, "split", resume=True, **kw)
    assert second.status == "done" and second.epochs_completed == 4
    assert _strip(second.history) == _strip(full.history)


def full_train_images(home) -> int:
    from engine.datasets import open_dataset

    return len(open_dataset("digits", home=home).split("train"))


def test_resume_with_more_epochs(digits_home, tmp_path):
    two = run(digits_home, tmp_path, "x", epochs=2)
    four = run(digits_home, tmp_path, "x", epochs=4, resume=True)
    straight = run(digits_home, tmp_path, "y", epochs=4)
    assert two.epochs_completed == 2 and four.epochs_completed == 4
    assert _strip(four.history) == _strip(straight.history)


def test_divergence_stops_with_advice(digits_home, tmp_path):
    sink = RecordingSink()
    with pytest.raises(TrainingDiverged, match="too high; try"):
        run(digits_home, tmp_path, sink=sink, lr=1e8, epochs=2)
    assert sink.result["status"] == "failed" and sink.result["reason"] == "diverged"
    assert "diverged" in (tmp_path / "run" / "log.txt").read_text()


def test_early_stopping(digits_home, tmp_path, monkeypatch):
    real = trainer_module.evaluate
    losses = iter([1.0, 0.9, 1.1, 1.2, 1.3, 1.4])

    def worsening(*a, **kw):
        out = real(*a, **kw)
        if kw.get("prefix") == "val_":
            out["val_loss"] = next(losses)
        return out

    monkeypatch.setattr(trainer_module, "evaluate", worsening)
    r = run(digits_home, tmp_path, epochs=6, early_stopping=2)
    assert r.status == "early_stopped" and r.epochs_completed == 4
    # Best is kept by validation accuracy (then loss), whatever epoch that was.
    assert r.best == max(r.history, key=lambda m: (m["val_accuracy"], -m["val_loss"]))


def test_augmentation_ops():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(4, 1, 28, 28)
    x[:, :, 2:20, 10:16] = 1.0  # a bar, off-centre so every flip shows
    assert augment_batch(x, AugmentConfig(), gen) is x
    inv = augment_batch(x, AugmentConfig(invert=1.0), gen)
    assert torch.equal(inv, 1 - x)
    rot = augment_batch(x, AugmentConfig(rotation=90), gen)
    assert rot.shape == x.shape and not torch.allclose(rot, x)
    shifted = augment_batch(x, AugmentConfig(shift=0.3), gen)
    assert not torch.allclose(shifted, x)
    flipped = augment_batch(x[:1].expand(64, -1, -1, -1), AugmentConfig(hflip=True), gen)
    assert float(flipped.sum()) == pytest.approx(64 * float(x[0].sum()), rel=1e-3)
    noisy = augment_batch(x, AugmentConfig(noise=0.1), gen)
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy, x)
    for cfg in (AugmentConfig(shear=20), AugmentConfig(zoom=0.3), AugmentConfig(vflip=True)):
        out = augment_batch(x.repeat(8, 1, 1, 1), cfg, gen)
        assert out.shape == (32, 1, 28, 28) and not torch.allclose(out, x.repeat(8, 1, 1, 1))
    a = augment_batch(x, AugmentConfig(rotation=30, noise=0.1),
                      torch.Generator().manual_seed(5))
    b = augment_batch(x, AugmentConfig(rotation=30, noise=0.1),
                      torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_invalid_settings_are_refused(digits_home, tmp_path):
    with pytest.raises(ConfigError, match="solver"):
        TrainConfig(dataset="d", solver="magic").validate()
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(dataset="d", epochs=0).validate()
    with pytest.raises(ConfigError, match="unknown training settings: colour"):
        TrainConfig.from_dict({"dataset": "d", "colour": 1})
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no NVIDIA GPU"):
            run(digits_home, tmp_path, device="cuda")
        with pytest.raises(ConfigError, match="needs a CUDA device"):
            run(digits_home, tmp_path, precision="bf16")


def test_config_round_trip():
    cfg = TrainConfig(dataset="d", network={"layers": [{"type": "flatten"}]},
                      augment=AugmentConfig(rotation=5), milestones=[1.0, 2.0])
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_torch_compile(digits_home, tmp_path):
    r = run(digits_home, tmp_path, network="mlp", epochs=1, compile=True)
    assert r.status == "done" and r.history[-1]["val_accuracy"] > 0.5
    # Weights are saved without the compiled wrapper's prefix, so any predictor can load them.
    keys = load_checkpoint(tmp_path / "run" / "best.pt")["model"].keys()
    assert not any(k.startswith("_orig_mod") for k in keys)
