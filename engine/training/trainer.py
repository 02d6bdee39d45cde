"""The training loop, in the shape of torchvision's reference script.

train() runs a TrainConfig to the end, or until should_stop() says so (then it saves a
checkpoint at that step boundary and returns "stopped"); resume=True continues from the last
checkpoint with optimizer, scheduler and RNG state, so 2 + 2 epochs equal 4 on the CPU.

_train is the loop a reader holds in their head: _setup builds a Run (model, optimizer,
data: fixed for the run), _start the TrainState (where the run is: what a checkpoint holds),
then each epoch is train_one_epoch, the validation pass (evaluate) and the checkpoints
(save_epoch, save). Data parallelism is the Ranks object's business (engine/training/
ranks.py): one process is rank 0 of 1, so the loop has no DDP branches.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
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
from engine.training.ranks import Ranks
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
    """The torchvision shape: set up, then per epoch train_one_epoch, the validation pass
    (evaluate) and the checkpoints (save); then the held-out split."""
    ranks = ranks or Ranks.single(resolve_device(cfg.device))
    run = _setup(cfg, run_dir, home, log, resume, ranks)
    state = _start(run, sink, log, resume)
    status = "done"
    while state.epoch < cfg.epochs:
        epoch = state.epoch
        stopped = train_one_epoch(run, state, sink, should_stop)
        if stopped and state.batch < run.steps_per_epoch:
            save(run, state, run_dir / "last.pt")
            status = "stopped"
            log(f"stopped in epoch {epoch + 1} at step {state.batch} / {run.steps_per_epoch} "
                f"({epoch} of {cfg.epochs} epochs complete); checkpoint saved")
            break

        metrics = _end_epoch(run, state)
        state.history.append(metrics)
        state.next_epoch()
        save_epoch(run, state, improved=_update_best(state, metrics))
        sink.on_epoch(metrics)
        log(format_epoch(metrics))
        if stopped:
            status = "stopped"
            log(f"stopped after epoch {epoch + 1}; checkpoint saved")
            break
        if cfg.early_stopping and state.bad_passes >= cfg.early_stopping:
            status = "early_stopped"
            log(f"early stop: no validation improvement in {cfg.early_stopping} passes")
            break

    held_out = None
    if status != "stopped":
        held_out = _held_out(run)
        if held_out:
            log(f"held-out ({held_out['split']}) accuracy {held_out['accuracy']:.4f}")
    result = TrainResult(status, state.epoch, state.history, state.best, held_out,
                         str(run_dir))
    sink.on_end(result.to_dict())
    return result


@dataclass
class TrainState:
    """Where a run is: what a checkpoint holds beside the weights (under these names) and
    resume restores. The learning-rate schedule is a pure function of (epoch, batch)."""

    epoch: int = 0  # epochs complete
    batch: int = 0  # steps done in this epoch
    perm: torch.Tensor | None = None  # this epoch's order of the training images
    loss_sum: float = 0.0  # the summed per-image training loss of this epoch so far
    seen: int = 0  # training images of this epoch so far
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per epoch
    best: dict[str, Any] | None = None  # the best epoch's row
    best_loss: float | None = None  # the lowest validation loss (early stopping)
    bad_passes: int = 0  # validation passes since it went down
    train_time: float = 0.0  # seconds of training steps in this epoch

    def to_dict(self) -> dict[str, Any]:
        # Shallow, unlike dataclasses.asdict: `best` stays the very row of `history`.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def next_epoch(self) -> None:
        self.epoch += 1
        self.batch, self.perm, self.loss_sum, self.seen, self.train_time = 0, None, 0.0, 0, 0.0


@dataclass
class Run:
    """What a run trains with, set up once: the model (and the module the steps run, DDP-
    wrapped and compiled), its optimizer, the data and the run's random generator."""

    cfg: TrainConfig
    run_dir: Path
    ranks: Ranks
    ds: Any  # the opened dataset
    model: torch.nn.Module
    step_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    gen: torch.Generator  # augmentation and epoch permutations
    amp_dtype: torch.dtype | None
    memory_format: torch.memory_format
    norm: TorchNormalizer
    train_split: Split
    val_split: Split
    meta: dict[str, Any]  # what every checkpoint carries beside the weights and the state

    @property
    def device(self) -> torch.device:
        return self.ranks.device

    @property
    def num_classes(self) -> int:
        return self.ds.num_classes

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_split) / self.cfg.batch_size)


def _setup(cfg, run_dir, home, log, resume, ranks: Ranks) -> Run:
    device = ranks.device
    if cfg.precision != "fp32" and device.type != "cuda":
        raise ConfigError("mixed precision (bf16/fp16) needs a CUDA device; use fp32 on the CPU")
    ds = open_dataset(cfg.dataset, home=home)
    spec = network_spec(cfg.network)
    input_shape = tuple(ds.shape)

    torch.manual_seed(cfg.seed)
    model = build_network(spec, input_shape, ds.num_classes).to(device)
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
    step_model = ranks.wrap(model)
    step_model = torch.compile(step_model) if cfg.compile else step_model

    train_split = Split(ds.images, ds.labels, ds.split("train"), device)
    val_split = Split(ds.images, ds.labels, ds.split("val"), device)
    if len(train_split) == 0:
        raise ConfigError(f"dataset {ds.name!r} has no training images")
    meta = {"config": cfg.to_dict(), "spec": spec, "classes": list(ds.classes),
            "preprocess": ds.contract.to_dict(), "input_shape": list(input_shape),
            "dataset": {"id": ds.id, "name": ds.name,
                        "sha256": ds.manifest.get("sha256")}}
    return Run(cfg, Path(run_dir), ranks, ds, model, step_model, optimizer, scaler, gen,
               amp_dtype, memory_format, ds.contract.torch_normalizer(device), train_split,
               val_split, meta)


def _start(run: Run, sink: MetricsSink, log, resume: bool) -> TrainState:
    """The state to start from (the last checkpoint's on resume), announced."""
    cfg, ranks = run.cfg, run.ranks
    state = TrainState()
    if resume:
        state = _restore(run)
        log(f"resumed at epoch {state.epoch} step {state.batch}")
    elif ranks.main:
        atomic_write_json(run.run_dir / CONFIG_FILE, cfg.to_dict())
    ranks.seed_own_stream(cfg.seed, state.epoch, state.batch)
    where = ranks.describe()
    sink.on_start({"epochs": cfg.epochs, "steps_per_epoch": run.steps_per_epoch,
                   "train_images": len(run.train_split), "val_images": len(run.val_split),
                   "device": where, "parameters": count_parameters(run.model),
                   "start_epoch": state.epoch, "classes": list(run.ds.classes)})
    log(f"training {len(run.train_split)} images on {where}, {cfg.epochs} epochs, "
        f"{run.steps_per_epoch} steps each")
    return state


def train_one_epoch(run: Run, state: TrainState, sink: MetricsSink,
                    should_stop: Callable[[], bool]) -> bool:
    """The steps of epoch state.epoch from step state.batch on, reporting progress at a bounded
    rate; True when should_stop ended it early (at a step boundary)."""
    cfg, ranks, steps = run.cfg, run.ranks, run.steps_per_epoch
    epoch = state.epoch
    if state.perm is None:
        state.perm = torch.randperm(len(run.train_split), generator=run.gen)
    run.model.train()
    t0, last_report = time.perf_counter(), time.perf_counter()
    seen0, batch0 = state.seen, state.batch
    warm: tuple[float, int] | None = None  # (time, images seen) once warmed up
    last_sum, last_seen = state.loss_sum, state.seen  # for the loss per report
    # Summed in float64 on the device, read only at reports: no per-step sync.
    # (Across ranks, each sums its own part; rank 0 carries the total so far.)
    loss_acc = torch.tensor(state.loss_sum if ranks.main else 0.0, dtype=torch.float64,
                            device=run.device)
    stopped = False
    for xb, yb in run.train_split.batches(state.perm, cfg.batch_size, start=state.batch):
        step = state.batch
        loss, loss_sum = _step(run, xb, yb, epoch + step / steps)
        loss_acc += loss_sum
        state.batch += 1
        state.seen += len(yb)
        now = time.perf_counter()
        if warm is None and state.batch - batch0 >= WARMUP_STEPS:
            _ = loss.item()  # wait for the device: the warm-up steps are really done
            now = time.perf_counter()
            warm = (now, state.seen)
        due, stop = ranks.agree(now - last_report >= PROGRESS_INTERVAL_S
                                or state.batch == steps, should_stop)
        if due or state.batch == steps:
            total = _check_finite(ranks.all_sum(loss_acc), epoch, step, cfg)
            last_report = now
            rate = _speed(warm, now, state.seen, state.history)
            sink.on_progress({
                "epoch": epoch, "step": state.batch, "steps": steps,
                # the mean loss of the steps since the last report: a curve inside epochs
                "loss": (total - last_sum) / max(state.seen - last_seen, 1),
                "images_per_s": rate or (state.seen - seen0) / max(now - t0, 1e-9),
                "lr": run.optimizer.param_groups[0]["lr"],
                "eta_s": None if rate is None
                else _eta(cfg, state, steps, len(run.train_split), rate)})
            last_sum, last_seen = total, state.seen
        if stop():
            stopped = True
            break
    state.loss_sum = _check_finite(ranks.all_sum(loss_acc), epoch, state.batch, cfg)
    state.train_time += time.perf_counter() - t0
    return stopped


def _step(run: Run, xb: torch.Tensor, yb: torch.Tensor, at_epoch: float
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a global batch (this rank's part of it), at a fractional epoch
    for the learning rate: (the loss, the float64 sum of this rank's per-image losses)."""
    cfg, ranks, norm = run.cfg, run.ranks, run.norm
    for group in run.optimizer.param_groups:
        group["lr"] = cfg.lr * group.get("lr_scale", 1.0) * lr_factor(cfg, at_epoch)
    n = len(yb)
    if cfg.augment.active:  # augmented whole, so the random stream is the single process's
        x = ranks.part(augment_batch(norm.to_unit(xb), cfg.augment, run.gen))
    else:
        x = norm.to_unit(ranks.part(xb))
    yb = ranks.part(yb)
    with torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None):
        logits = run.step_model(norm.standardize(x).contiguous(memory_format=run.memory_format))
        loss, loss_sum = ranks.batch_loss(logits, yb, n)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return loss, loss_sum


def save(run: Run, state: TrainState, path: Path) -> None:
    """One checkpoint: the run's meta, the weights, optimizer, scaler and random states, and
    the TrainState. Rank 0 alone writes checkpoints."""
    if run.ranks.main:
        save_checkpoint(path, {**run.meta, **_snapshot(run), **state.to_dict()})


def save_epoch(run: Run, state: TrainState, improved: bool) -> None:
    """The checkpoints at the end of an epoch: last.pt, best.pt when it improved, and
    checkpoints/epoch-NNNN.pt every checkpoint_interval epochs and at the last."""
    done, cfg = state.epoch, run.cfg
    save(run, state, run.run_dir / "last.pt")
    if improved:
        save(run, state, run.run_dir / "best.pt")
    if done % cfg.checkpoint_interval == 0 or done == cfg.epochs:
        save(run, state, run.run_dir / "checkpoints" / f"epoch-{done:04d}.pt")


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


def _eta(cfg, state: TrainState, steps_per_epoch, n_train, rate) -> float:
    remaining = (cfg.epochs - state.epoch) * n_train - state.seen
    return max(0.0, remaining / max(rate, 1e-9))


def _end_epoch(run: Run, state: TrainState) -> dict[str, Any]:
    """The epoch's metrics row; with a validation pass every val_interval epochs and at the
    last."""
    cfg, done = run.cfg, state.epoch + 1
    metrics: dict[str, Any] = {
        "epoch": done,
        "train_loss": state.loss_sum / max(state.seen, 1),
        "lr": run.optimizer.param_groups[0]["lr"],
        "images_per_s": state.seen / max(state.train_time, 1e-9),
        "epoch_time": state.train_time,
    }
    if len(run.val_split) and (done % cfg.val_interval == 0 or done == cfg.epochs):
        metrics.update(evaluate(run.model, run.val_split, run.norm, run.amp_dtype, run.device,
                                run.num_classes, prefix="val_", ranks=run.ranks))
    return metrics


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: Split, norm: TorchNormalizer, amp_dtype, device,
             num_classes: int, prefix: str = "", ranks: Ranks | None = None) -> dict[str, Any]:
    """Loss, top-1, top-5 (more than 5 classes) and per-class accuracy on a split; with
    several ranks each evaluates its part and the sums are reduced across them."""
    ranks = ranks or Ranks.single(device)
    was_training = model.training
    model.eval()
    loss_sum, correct, correct5 = 0.0, 0, 0
    per_class_correct = torch.zeros(num_classes, dtype=torch.long, device=device)
    per_class_total = torch.zeros(num_classes, dtype=torch.long, device=device)
    for xb, yb in split.batches(ranks.part(torch.arange(len(split))), EVAL_BATCH):
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
    loss_sum, correct, correct5, per_class_correct, per_class_total = ranks.sum_all(
        loss_sum, correct, correct5, per_class_correct, per_class_total)
    n = max(len(split), 1)
    out = {f"{prefix}loss": loss_sum / n, f"{prefix}accuracy": correct / n,
           f"{prefix}per_class_accuracy": (per_class_correct.float()
                                           / per_class_total.clamp_min(1)).tolist()}
    if num_classes > 5:
        out[f"{prefix}top5"] = correct5 / n
    return out


def _update_best(state: TrainState, metrics: dict) -> bool:
    """Best by validation accuracy (then loss); with no validation pass, the latest epoch."""
    if "val_accuracy" not in metrics:
        if state.best is None or "val_accuracy" not in state.best:
            state.best = metrics
            return True
        return False
    best = state.best
    key = (metrics["val_accuracy"], -metrics["val_loss"])
    if best is None or "val_accuracy" not in best or key > (best["val_accuracy"],
                                                            -best["val_loss"]):
        state.best = metrics
    # Early stopping watches validation loss, as Keras does by default.
    if state.best_loss is None or metrics["val_loss"] < state.best_loss:
        state.best_loss = metrics["val_loss"]
        state.bad_passes = 0
    else:
        state.bad_passes += 1
    return state.best is metrics


def _held_out(run: Run) -> dict | None:
    """The best weights' metrics on the test split (the validation split when it has none)."""
    ds, device = run.ds, run.device
    split_name = "test" if len(ds.split("test")) else "val"
    split = Split(ds.images, ds.labels, ds.split(split_name), device)
    if not len(split):
        return None
    run.ranks.barrier()  # rank 0 has written best.pt
    best = run.run_dir / "best.pt"
    if best.exists():
        run.model.load_state_dict(load_checkpoint(best, device)["model"])
    out = evaluate(run.model, split, run.norm, run.amp_dtype, device, run.num_classes,
                   ranks=run.ranks)
    return {"split": split_name, **out}


def _snapshot(run: Run) -> dict[str, Any]:
    rng = {"torch": torch.get_rng_state(), "generator": run.gen.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict(), "rng": rng}


def restore_cuda_rng(states: list[torch.Tensor]) -> None:
    """Each GPU's saved random state, for the GPUs both machines have: a checkpoint saved on
    a machine with more GPUs resumes on one with fewer (set_rng_state_all would raise
    IndexError), and GPUs the saving machine lacked keep their own state."""
    for index, state in enumerate(states[:torch.cuda.device_count()]):
        torch.cuda.set_rng_state(state.cpu(), index)


def _restore(run: Run) -> TrainState:
    """The weights, optimizer, scaler and random states of last.pt, and its TrainState."""
    ckpt = load_checkpoint(run.run_dir / "last.pt", run.device)
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["rng"]["torch"].cpu())
    run.gen.set_state(ckpt["rng"]["generator"].cpu())
    if "cuda" in ckpt["rng"] and torch.cuda.is_available():
        restore_cuda_rng(ckpt["rng"]["cuda"])
    state = TrainState(**{f.name: ckpt[f.name] for f in fields(TrainState) if f.name in ckpt})
    if state.perm is not None:
        state.perm = state.perm.cpu()
    return state


def format_epoch(m: dict[str, Any]) -> str:
    parts = [f"epoch {m['epoch']}", f"train_loss {m['train_loss']:.4f}"]
    if "val_loss" in m:
        parts += [f"val_loss {m['val_loss']:.4f}", f"val_acc {m['val_accuracy']:.4f}"]
    parts += [f"lr {m['lr']:.3g}", f"{m['images_per_s']:.0f} img/s", f"{m['epoch_time']:.1f}s"]
    return "  ".join(parts)


__all__ = ["Run", "TrainResult", "TrainState", "TrainingDiverged", "evaluate", "format_epoch",
           "network_spec", "resolve_device", "save", "save_epoch", "train", "train_one_epoch"]
