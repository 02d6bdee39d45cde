"""The training loop: one function a reader can hold in their head.

train() runs a TrainConfig to the end, or until should_stop() says so (then it saves a
checkpoint at that step boundary and returns "stopped"); resume=True continues from the last
checkpoint with optimizer, scheduler and RNG state, so 2 + 2 epochs equal 4 on the CPU.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from engine.datasets import open_dataset
from engine.devices import parse_device, parse_devices
from engine.images.contract import TorchNormalizer
from engine.networks import build_network, count_parameters, parse_spec, zoo_spec
from engine.state.runs import CONFIG_FILE
from engine.state.workspace import atomic_write_json
from engine.training.augment import augment_batch
from engine.training.checkpoint import load_checkpoint, save_checkpoint
from engine.training.config import ConfigError, TrainConfig
from engine.training.data import Split
from engine.training.errors import TrainingDiverged
from engine.training.init import start_weights
from engine.training.ranks import Ranks, dist_backend
from engine.training.schedules import lr_factor
from engine.training.sink import MetricsSink

PROGRESS_INTERVAL_S = 0.5  # bounded rate of on_progress calls
WARMUP_STEPS = 3  # steps left out of the speed (and so the ETA): first-batch costs, caches
EVAL_BATCH = 1024


@dataclass
class TrainResult:
    status: str  # done | stopped | early_stopped
    epochs_completed: int
    history: list[dict[str, Any]]
    best: dict[str, Any] | None
    held_out: dict[str, Any] | None  # test split (or validation) metrics of the best weights
    run_dir: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "epochs_completed": self.epochs_completed,
                "best": self.best, "held_out": self.held_out, "run_dir": self.run_dir,
                "final": self.history[-1] if self.history else None, **self.extra}


def resolve_device(name: str) -> torch.device:
    try:
        canonical = parse_device(name)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if canonical == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if canonical == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but no NVIDIA GPU is available here")
    dev = torch.device(canonical)
    if dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} does not exist: this machine has "
                          f"{torch.cuda.device_count()} GPU(s)")
    return dev


def network_spec(network: str | dict) -> dict:
    return zoo_spec(network) if isinstance(network, str) else parse_spec(network)


def train(cfg: TrainConfig, run_dir: str | os.PathLike, sink: MetricsSink | None = None,
          should_stop: Callable[[], bool] | None = None, resume: bool = False,
          home: str | os.PathLike | None = None, ranks: Ranks | None = None) -> TrainResult:
    """Train in this process; with `ranks`, as one rank of a data-parallel run (see
    engine/training/distributed.py, whose run_training also starts the ranks)."""
    cfg.validate()
    if ranks is None and parse_devices(cfg.device, cfg.devices).count > 1:
        raise ConfigError(f"this run asks for {cfg.devices if cfg.devices > 1 else 'several'} "
                          "devices: start it with engine.training.distributed.run_training "
                          "(the CLI and the job queue do)")
    main = ranks is None or ranks.main
    sink = (sink or MetricsSink()) if main else MetricsSink()
    should_stop = should_stop or (lambda: False)
    run_dir = Path(run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    log_file = open(run_dir / "log.txt", "a", buffering=1) if main else None

    def log(msg: str) -> None:
        if log_file is None:  # ranks other than 0 write nothing
            return
        log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
        sink.on_log(msg)

    try:
        return _train(cfg, run_dir, sink, should_stop, resume, home, log, ranks)
    except TrainingDiverged as e:
        log(f"failed: {e}")
        sink.on_end({"status": "failed", "reason": "diverged", "message": str(e)})
        raise
    finally:
        if log_file is not None:
            log_file.close()


def _train(cfg, run_dir, sink, should_stop, resume, home, log, ranks=None) -> TrainResult:
    device = ranks.device if ranks is not None else resolve_device(cfg.device)
    ddp = ranks is not None and ranks.world > 1
    main = ranks is None or ranks.main
    if cfg.precision != "fp32" and device.type != "cuda":
        raise ConfigError("mixed precision (bf16/fp16) needs a CUDA device; use fp32 on the CPU")
    ds = open_dataset(cfg.dataset, home=home)
    spec = network_spec(cfg.network)
    input_shape = tuple(ds.shape)
    num_classes = ds.num_classes

    torch.manual_seed(cfg.seed)
    model = build_network(spec, input_shape, num_classes).to(device)
    # Convolutions run faster on NHWC memory (about 1.5x for LeNet on the CPU); the values
    # and the checkpoint's weights are the same either way.
    memory_format = torch.channels_last if any(
        isinstance(m, torch.nn.Conv2d) for m in model.modules()) else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    groups = start_weights(cfg, model, spec, list(ds.classes), run_dir, resume, home, log)
    optimizer = _make_optimizer(cfg, groups)
    gen = torch.Generator().manual_seed(cfg.seed)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
    step_model = model
    if ddp:  # gradients all-reduced in backward; checkpoints keep the unwrapped model
        from torch.nn.parallel import DistributedDataParallel

        step_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    step_model = torch.compile(step_model) if cfg.compile else step_model

    train_split = Split(ds.images, ds.labels, ds.split("train"), device)
    val_split = Split(ds.images, ds.labels, ds.split("val"), device)
    if len(train_split) == 0:
        raise ConfigError(f"dataset {ds.name!r} has no training images")
    norm = ds.contract.torch_normalizer(device)
    steps_per_epoch = math.ceil(len(train_split) / cfg.batch_size)

    meta = {"config": cfg.to_dict(), "spec": spec, "classes": list(ds.classes),
            "preprocess": ds.contract.to_dict(), "input_shape": list(input_shape),
            "dataset": {"id": ds.id, "name": ds.name,
                        "sha256": ds.manifest.get("sha256")}}
    # The learning-rate schedule is a pure function of (epoch, step), which the state holds.
    state = {"epoch": 0, "batch": 0, "perm": None, "loss_sum": 0.0, "seen": 0,
             "history": [], "best": None, "best_loss": None, "bad_passes": 0,
             "train_time": 0.0}
    if resume:
        state = _restore(run_dir, model, optimizer, scaler, gen, device, state)
        log(f"resumed at epoch {state['epoch']} step {state['batch']}")
    elif main:
        atomic_write_json(run_dir / CONFIG_FILE, cfg.to_dict())
    where = str(device)
    if ddp:
        where = f"{ranks.world} {device.type} ranks (DDP, {dist_backend(device)})"
        if ranks.rank:  # dropout masks of its own; rank 0 keeps the run's random stream
            torch.manual_seed(hash((cfg.seed, ranks.rank, state["epoch"], state["batch"]))
                              % 2**63)
    sink.on_start({"epochs": cfg.epochs, "steps_per_epoch": steps_per_epoch,
                   "train_images": len(train_split), "val_images": len(val_split),
                   "device": where, "parameters": count_parameters(model),
                   "start_epoch": state["epoch"], "classes": list(ds.classes)})
    log(f"training {len(train_split)} images on {where}, {cfg.epochs} epochs, "
        f"{steps_per_epoch} steps each")

    def save(path: Path) -> None:
        if not main:  # rank 0 alone writes checkpoints
            return
        save_checkpoint(path, {**meta, **_snapshot(model, optimizer, scaler, gen),
                               **state})

    status = "done"
    while state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        if state["perm"] is None:
            state["perm"] = torch.randperm(len(train_split), generator=gen)
        model.train()
        t0, last_report = time.perf_counter(), time.perf_counter()
        seen0, batch0 = state["seen"], state["batch"]
        warm: tuple[float, int] | None = None  # (time, images seen) once warmed up
        last_sum, last_seen = state["loss_sum"], state["seen"]  # for the loss per report
        # Summed in float64 on the device, read only at reports: no per-step sync.
        # (Across ranks, each sums its own part; rank 0 carries the total so far.)
        loss_acc = torch.tensor(state["loss_sum"] if main else 0.0, dtype=torch.float64,
                                device=device)
        stopped = False
        batch_iter = train_split.batches(state["perm"], cfg.batch_size, start=state["batch"])
        for xb, yb in batch_iter:
            step = state["batch"]
            for group in optimizer.param_groups:
                group["lr"] = (cfg.lr * group.get("lr_scale", 1.0)
                               * lr_factor(cfg, epoch + step / steps_per_epoch))
            n = len(yb)
            if ddp:
                # This rank's part of the global batch (augmented whole, so the random stream
                # is the single process's); the loss is scaled so that DDP's mean of the
                # ranks' gradients is the gradient of the global batch's mean loss.
                part = ranks.shard(n)
                x = (augment_batch(norm.to_unit(xb), cfg.augment, gen)[part]
                     if cfg.augment.active else norm.to_unit(xb[part]))
                yb = yb[part]
            else:
                x = augment_batch(norm.to_unit(xb), cfg.augment, gen)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = step_model(norm.standardize(x).contiguous(memory_format=memory_format))
                if ddp:
                    loss_sum = F.cross_entropy(logits, yb, reduction="sum")
                    loss = loss_sum * (ranks.world / n)
                else:
                    loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if ddp:
                loss_acc += loss_sum.detach().double()
            else:
                loss_acc += loss.detach().double() * len(yb)
            state["batch"] += 1
            state["seen"] += n
            now = time.perf_counter()
            if warm is None and state["batch"] - batch0 >= WARMUP_STEPS:
                _ = loss.item()  # wait for the device: the warm-up steps are really done
                now = time.perf_counter()
                warm = (now, state["seen"])
            due = now - last_report >= PROGRESS_INTERVAL_S or state["batch"] == steps_per_epoch
            if ddp:  # the ranks agree, at every step, on rank 0's clock and any stop request
                due, stop_now = ranks.any_flags([due and main, should_stop()])
                due = due or state["batch"] == steps_per_epoch
            if due:
                total = _check_finite(ranks.all_sum(loss_acc) if ddp else loss_acc, epoch,
                                      step, cfg)
                last_report = now
                rate = _speed(warm, now, state["seen"], state["history"])
                sink.on_progress({
                    "epoch": epoch, "step": state["batch"], "steps": steps_per_epoch,
                    # the mean loss of the steps since the last report: a curve inside epochs
                    "loss": (total - last_sum) / max(state["seen"] - last_seen, 1),
                    "images_per_s": rate or (state["seen"] - seen0) / max(now - t0, 1e-9),
                    "lr": optimizer.param_groups[0]["lr"],
                    "eta_s": None if rate is None
                    else _eta(cfg, state, steps_per_epoch, len(train_split), rate)})
                last_sum, last_seen = total, state["seen"]
            if stop_now if ddp else should_stop():
                stopped = True
                break
        state["loss_sum"] = _check_finite(ranks.all_sum(loss_acc) if ddp else loss_acc, epoch,
                                          state["batch"], cfg)
        state["train_time"] += time.perf_counter() - t0
        if stopped and state["batch"] < steps_per_epoch:
            save(run_dir / "last.pt")
            status = "stopped"
            log(f"stopped in epoch {epoch + 1} at step {state['batch']} / {steps_per_epoch} "
                f"({epoch} of {cfg.epochs} epochs complete); checkpoint saved")
            break

        metrics = _end_epoch(cfg, state, epoch, optimizer, model, val_split, norm, amp_dtype,
                             device, num_classes, ranks)
        state["history"].append(metrics)
        state.update(epoch=epoch + 1, batch=0, perm=None, loss_sum=0.0, seen=0, train_time=0.0)
        improved = _update_best(state, metrics)
        save(run_dir / "last.pt")
        if improved:
            save(run_dir / "best.pt")
        if (epoch + 1) % cfg.checkpoint_interval == 0 or epoch + 1 == cfg.epochs:
            save(run_dir / "checkpoints" / f"epoch-{epoch + 1:04d}.pt")
        sink.on_epoch(metrics)
        log(format_epoch(metrics))
        if stopped:
            status = "stopped"
            log(f"stopped after epoch {epoch + 1}; checkpoint saved")
            break
        if cfg.early_stopping and state["bad_passes"] >= cfg.early_stopping:
            status = "early_stopped"
            log(f"early stop: no validation improvement in {cfg.early_stopping} passes")
            break

    held_out = None
    if status != "stopped":
        held_out = _held_out(ds, run_dir, model, norm, amp_dtype, device, num_classes, ranks)
        if held_out:
            log(f"held-out ({held_out['split']}) accuracy {held_out['accuracy']:.4f}")
    result = TrainResult(status, state["epoch"], state["history"], state["best"], held_out,
                         str(run_dir))
    sink.on_end(result.to_dict())
    return result


def _make_optimizer(cfg: TrainConfig, groups: list[dict]) -> torch.optim.Optimizer:
    from engine.training.solvers import make_optimizer
    return make_optimizer(cfg, groups)


def _check_finite(loss_acc: torch.Tensor, epoch: int, step: int, cfg: TrainConfig) -> float:
    value = float(loss_acc)  # one device sync per report, not per step
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"the loss became {value} at epoch {epoch + 1}, step {step + 1}: training diverged. "
            f"The learning rate {cfg.lr:g} is probably too high; try {cfg.lr / 10:g} or lower.")
    return value


def _speed(warm: tuple[float, int] | None, now: float, seen: int,
           history: list[dict[str, Any]]) -> float | None:
    """Images per second measured after the warm-up steps; before that, the last epoch's
    speed; None on the first steps of a run (no ETA rather than a wrong one)."""
    if warm is not None and seen > warm[1] and now > warm[0]:
        return (seen - warm[1]) / (now - warm[0])
    if history and history[-1].get("images_per_s"):
        return float(history[-1]["images_per_s"])
    return None


def _eta(cfg, state, steps_per_epoch, n_train, rate) -> float:
    remaining = (cfg.epochs - state["epoch"]) * n_train - state["seen"]
    return max(0.0, remaining / max(rate, 1e-9))


def _end_epoch(cfg, state, epoch, optimizer, model, val_split, norm, amp_dtype, device,
               num_classes, ranks=None) -> dict[str, Any]:
    train_time = state["train_time"]
    metrics: dict[str, Any] = {
        "epoch": epoch + 1,
        "train_loss": state["loss_sum"] / max(state["seen"], 1),
        "lr": optimizer.param_groups[0]["lr"],
        "images_per_s": state["seen"] / max(train_time, 1e-9),
        "epoch_time": train_time,
    }
    if len(val_split) and ((epoch + 1) % cfg.val_interval == 0 or epoch + 1 == cfg.epochs):
        metrics.update(evaluate(model, val_split, norm, amp_dtype, device, num_classes,
                                prefix="val_", ranks=ranks))
    return metrics


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: Split, norm: TorchNormalizer, amp_dtype, device,
             num_classes: int, prefix: str = "", ranks: Ranks | None = None) -> dict[str, Any]:
    """Loss, top-1, top-5 (more than 5 classes) and per-class accuracy on a split; with
    several ranks each evaluates its part and the sums are reduced across them."""
    was_training = model.training
    model.eval()
    loss_sum, correct, correct5 = 0.0, 0, 0
    per_class_correct = torch.zeros(num_classes, dtype=torch.long, device=device)
    per_class_total = torch.zeros(num_classes, dtype=torch.long, device=device)
    order = torch.arange(len(split))
    shared = ranks is not None and ranks.world > 1
    if shared:
        order = order[ranks.shard(len(split))]
    for xb, yb in split.batches(order, EVAL_BATCH):
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(norm(xb)).float()
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        hit = logits.argmax(1) == yb
        correct += int(hit.sum())
        if num_classes > 5:
            correct5 += int((logits.topk(5, 1).indices == yb[:, None]).any(1).sum())
        per_class_total += torch.bincount(yb, minlength=num_classes)
        per_class_correct += torch.bincount(yb[hit], minlength=num_classes)
    model.train(was_training)
    if shared:
        c = num_classes
        packed = ranks.all_sum(torch.cat([
            torch.tensor([loss_sum, correct, correct5], dtype=torch.float64, device=device),
            per_class_correct.double(), per_class_total.double()]))
        loss_sum, correct, correct5 = float(packed[0]), int(packed[1]), int(packed[2])
        per_class_correct, per_class_total = packed[3:3 + c].long(), packed[3 + c:].long()
    n = max(len(split), 1)
    out = {f"{prefix}loss": loss_sum / n, f"{prefix}accuracy": correct / n,
           f"{prefix}per_class_accuracy": (per_class_correct.float()
                                           / per_class_total.clamp_min(1)).tolist()}
    if num_classes > 5:
        out[f"{prefix}top5"] = correct5 / n
    return out


def _update_best(state: dict, metrics: dict) -> bool:
    """Best by validation accuracy (then loss); with no validation pass, the latest epoch."""
    if "val_accuracy" not in metrics:
        if state["best"] is None or "val_accuracy" not in state["best"]:
            state["best"] = metrics
            return True
        return False
    best = state["best"]
    key = (metrics["val_accuracy"], -metrics["val_loss"])
    if best is None or "val_accuracy" not in best or key > (best["val_accuracy"],
                                                            -best["val_loss"]):
        state["best"] = metrics
    # Early stopping watches validation loss, as Keras does by default.
    if state.get("best_loss") is None or metrics["val_loss"] < state["best_loss"]:
        state["best_loss"] = metrics["val_loss"]
        state["bad_passes"] = 0
    else:
        state["bad_passes"] += 1
    return state["best"] is metrics


def _held_out(ds, run_dir, model, norm, amp_dtype, device, num_classes, ranks=None
              ) -> dict | None:
    split_name = "test" if len(ds.split("test")) else "val"
    split = Split(ds.images, ds.labels, ds.split(split_name), device)
    if not len(split):
        return None
    if ranks is not None and ranks.world > 1:
        ranks.barrier()  # rank 0 has written best.pt
    best = run_dir / "best.pt"
    if best.exists():
        model.load_state_dict(load_checkpoint(best, device)["model"])
    out = evaluate(model, split, norm, amp_dtype, device, num_classes, ranks=ranks)
    return {"split": split_name, **out}


def _snapshot(model, optimizer, scaler, gen) -> dict[str, Any]:
    rng = {"torch": torch.get_rng_state(), "generator": gen.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(), "rng": rng}


def restore_cuda_rng(states: list[torch.Tensor]) -> None:
    """Each GPU's saved random state, for the GPUs both machines have: a checkpoint saved on
    a machine with more GPUs resumes on one with fewer (set_rng_state_all would raise
    IndexError), and GPUs the saving machine lacked keep their own state."""
    for index, state in enumerate(states[:torch.cuda.device_count()]):
        torch.cuda.set_rng_state(state.cpu(), index)


def _restore(run_dir, model, optimizer, scaler, gen, device, state) -> dict:
    ckpt = load_checkpoint(Path(run_dir) / "last.pt", device)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["rng"]["torch"].cpu())
    gen.set_state(ckpt["rng"]["generator"].cpu())
    if "cuda" in ckpt["rng"] and torch.cuda.is_available():
        restore_cuda_rng(ckpt["rng"]["cuda"])
    restored = {k: ckpt[k] for k in state if k in ckpt}
    if restored.get("perm") is not None:
        restored["perm"] = restored["perm"].cpu()
    return {**state, **restored}


def format_epoch(m: dict[str, Any]) -> str:
    parts = [f"epoch {m['epoch']}", f"train_loss {m['train_loss']:.4f}"]
    if "val_loss" in m:
        parts += [f"val_loss {m['val_loss']:.4f}", f"val_acc {m['val_accuracy']:.4f}"]
    parts += [f"lr {m['lr']:.3g}", f"{m['images_per_s']:.0f} img/s", f"{m['epoch_time']:.1f}s"]
    return "  ".join(parts)


__all__ = ["TrainResult", "TrainingDiverged", "evaluate", "format_epoch", "network_spec",
           "resolve_device", "train"]
