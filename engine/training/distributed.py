"""Data-parallel training: one job on N devices with torch.distributed (DDP).

`run_training` trains a TrainConfig in this process when it asks for one device, and otherwise
starts one rank per device with torch's elastic launcher (`elastic_launch`, what `torchrun`
runs), NCCL on GPUs and gloo on the CPU. Every rank runs the same loop (engine/training/
trainer.py, given its `Ranks`): the same seed and so the same epoch permutation, of which each
rank takes its share of every global batch; DDP all-reduces the gradients; rank 0 alone writes
checkpoints, metrics and the log, with the losses and accuracies reduced across ranks.
Checkpoints hold the unwrapped model, so a run resumes on any number of devices.

The same entry point runs under `torchrun` by hand, also across machines:

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HEAD:29400 \\
        --rdzv-id RUN -m engine.training.distributed --config config.json --out RUN_DIR

(every node needs the dataset in its workspace, $STUDIO_HOME; rank 0 writes RUN_DIR.)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import pickle
import signal
import sys
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from engine.devices import DeviceRequest, parse_devices
from engine.training.config import ConfigError, TrainConfig
from engine.training.ranks import Ranks, dist_backend
from engine.training.sink import MetricsSink

# A rank's hooks: given its rank, the sink (used on rank 0 only) and its should_stop.
RankSetup = Callable[[int], tuple[MetricsSink | None, Callable[[], bool] | None]]


def device_count(cfg: TrainConfig) -> int:
    try:
        return parse_devices(cfg.device, cfg.devices).count
    except ValueError as e:
        raise ConfigError(str(e)) from None


def rank_devices(req: DeviceRequest) -> list[str]:
    """One device string per rank of a request, or ConfigError when this machine lacks them."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if req.kind == "cpu" or (req.kind == "auto" and gpus == 0):
        return ["cpu"] * req.count
    indices = req.gpus if req.gpus is not None else tuple(range(req.count))
    if max(indices) >= gpus:
        named = f" ({req.label})" if req.gpus is not None else ""
        if gpus == 0:
            raise ConfigError(f"this job asks for {req.count} GPUs, but this machine has "
                              f"none; use cpu:{req.count} for {req.count} CPU processes")
        raise ConfigError(f"this job asks for {req.count} GPUs{named}, but this machine "
                          f"has {gpus}; ask for {gpus} or fewer")
    return [f"cuda:{i}" for i in indices]


def run_training(cfg: TrainConfig, run_dir: str | os.PathLike, *,
                 setup: RankSetup | None = None, resume: bool = False,
                 home: str | os.PathLike | None = None) -> Any:
    """Train cfg: in this process for one device, else on its devices with one rank each.
    `setup(rank)` (picklable for several devices: it runs in each rank's process) gives the
    sink and should_stop. Returns the TrainResult of rank 0."""
    from engine.training.trainer import train

    cfg.validate()
    req = parse_devices(cfg.device, cfg.devices)
    if req.count == 1:
        sink, should_stop = setup(0) if setup else (None, None)
        return train(cfg, run_dir, sink=sink, should_stop=should_stop, resume=resume, home=home)
    return launch(cfg, run_dir, rank_devices(req), setup=setup, resume=resume, home=home)


def launch(cfg: TrainConfig, run_dir: str | os.PathLike, devices: list[str], *,
           setup: RankSetup | None = None, resume: bool = False,
           home: str | os.PathLike | None = None) -> Any:
    """Start len(devices) ranks on this machine with torch's elastic launcher (torchrun
    --standalone: c10d rendezvous on a free local port) and return rank 0's TrainResult; a
    rank's exception (a ConfigError, a diverged loss...) is raised here."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=len(devices), run_id=str(uuid.uuid4()),
        rdzv_backend="c10d", rdzv_endpoint="localhost:0", rdzv_configs={"timeout": 300},
        max_restarts=0, monitor_interval=0.2, start_method="spawn")
    payload = {"config": cfg.to_dict(), "run_dir": str(run_dir), "devices": devices,
               "resume": resume, "home": None if home is None else str(home),
               "parent": os.getpid()}
    with _main_not_rerun():
        results = elastic_launch(config, rank_main)(payload, setup)
    outcomes = [results[r] for r in sorted(results)]
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        # A rank whose peer died fails in the collective: report the first real cause.
        causes = [f for f in failures if not _is_peer_failure(f)]
        raise (causes or failures)[0]
    return outcomes[0]


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Ranks start by 'spawn', which runs the parent's __main__ script again in each rank
    unless it was started with -m. A script there is not the ranks' business (rank_main and
    its arguments come from engine modules), and a host's may not even be runnable: Streamlit
    and its AppTest install their page script as __main__. Hide it while the ranks start."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None:
        yield  # started with -m: the ranks import that module, as they should
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _is_peer_failure(e: BaseException) -> bool:
    names = {c.__name__ for c in type(e).__mro__}
    return bool(names & {"DistBackendError", "DistNetworkError", "DistError"}) or (
        isinstance(e, RuntimeError) and ("Connection closed by peer" in str(e)
                                         or "Connection reset" in str(e)))


def rank_main(payload: dict[str, Any], setup: RankSetup | None = None) -> Any:
    """One rank: join the process group the launcher set up (RANK, WORLD_SIZE, MASTER_ADDR in
    the environment), train, leave. Returns rank 0's TrainResult (None on the others), or the
    exception that ended the rank (so the launcher's caller can raise it with its type)."""
    from engine.training.trainer import train

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    devices = payload["devices"]
    device = torch.device(devices[local] if local < len(devices) else devices[-1])
    stop = _StopFlags(payload.get("parent"))
    try:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(dist_backend(device),
                                timeout=datetime.timedelta(minutes=30))
        sink, should_stop = setup(rank) if setup else (None, None)
        cfg = TrainConfig.from_dict(payload["config"])
        ranks = Ranks(rank, world, device)
        result = train(cfg, payload["run_dir"], sink=sink if rank == 0 else None,
                       should_stop=stop.wrap(should_stop), resume=payload["resume"],
                       home=payload["home"], ranks=ranks)
        ranks.barrier()  # nobody tears the group down while a peer still talks to it
        return result if rank == 0 else None
    except BaseException as e:  # noqa: BLE001 - handed to the launcher's caller
        return _picklable(e)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


class _StopFlags:
    """A rank stops at the next step (saving a checkpoint) on SIGTERM/SIGINT, or when the
    process that launched it is gone (a worker killed outright leaves no rank behind)."""

    def __init__(self, parent: int | None) -> None:
        self.parent = parent if parent and os.getppid() == parent else None
        self.signalled = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if self.signalled:  # a second one kills
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.signalled = True

    def wrap(self, should_stop: Callable[[], bool] | None) -> Callable[[], bool]:
        def check() -> bool:
            orphaned = self.parent is not None and os.getppid() != self.parent
            return self.signalled or orphaned or bool(should_stop and should_stop())
        return check


def _picklable(e: BaseException) -> BaseException:
    try:
        pickle.dumps(e)
        return e
    except Exception:  # noqa: BLE001 - an exception that cannot cross processes: its words
        return RuntimeError(f"{type(e).__name__}: {e}")


# --- torchrun entry point -----------------------------------------------------------------


class _PrintSink(MetricsSink):
    def on_log(self, message: str) -> None:
        print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    """`torchrun ... -m engine.training.distributed --config FILE --out RUN_DIR [--resume]`:
    the training of a config on the ranks torchrun started (one node or several)."""
    ap = argparse.ArgumentParser(prog="python -m engine.training.distributed")
    ap.add_argument("--config", required=True, help="a job's config.json (TrainConfig)")
    ap.add_argument("--out", required=True, help="the run directory (rank 0 writes it)")
    ap.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    a = ap.parse_args(argv)
    if "RANK" not in os.environ:
        print("run this under torchrun (it sets RANK, WORLD_SIZE and the rendezvous)",
              file=sys.stderr)
        return 2
    cfg = TrainConfig.from_dict(json.loads(Path(a.config).read_text()))
    cfg.devices = int(os.environ["WORLD_SIZE"])
    cfg.device = "cuda" if torch.cuda.is_available() else "cpu"
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = f"cuda:{local}" if cfg.device == "cuda" else "cpu"
    nodes_devices = [device] * (local + 1)
    result = rank_main({"config": cfg.to_dict(), "run_dir": a.out, "devices": nodes_devices,
                        "resume": a.resume, "home": None, "parent": None},
                       _print_setup)
    if isinstance(result, BaseException):
        print(f"rank {os.environ['RANK']}: {result}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result.to_dict(), default=str))
    return 0


def _exit_now(code: int) -> None:
    """Leave without the interpreter's teardown. Under torchrun, about one run in ten of a
    rank whose work was done and written aborted in teardown ("terminate called without an
    active exception": a C++ thread of torch.distributed still joinable at exit), and torchrun
    then reports the whole run failed. Everything is written by now (files are closed,
    checkpoints renamed into place); only stdout needs flushing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_setup(rank: int) -> tuple[MetricsSink | None, None]:
    return (_PrintSink() if rank == 0 else None), None


if __name__ == "__main__":
    _exit_now(main())
