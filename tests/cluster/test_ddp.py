"""Data-parallel training (issue 20): 2 gloo ranks on the CPU against one process with the same
global batch, a 2-rank checkpoint resumed on 1 rank, the scheduler reserving all of a job's
devices at once, and requests for more devices than exist refused with the reason."""

from __future__ import annotations

import collections
import math
import sys
import types

import pytest
import torch

from engine import threads
from engine.devices import DeviceRequest, assigned_name, device_units, parse_devices
from engine.jobs import placement
from engine.jobs.scheduler import Scheduler
from engine.jobs.settings import SchedulerSettings
from engine.state import store
from engine.training import AugmentConfig, ConfigError, TrainConfig, load_checkpoint, train
from engine.training.distributed import Ranks, run_training

# A tiny convolutional network: conv and channels-last memory are on the path, and it trains
# in a few seconds an epoch on a loaded 2-core machine. Smooth (tanh, average pooling): with
# ReLU and max pooling a rounding difference of 1e-8 that flips one unit or one pooling choice
# grows to 1e-4 in a few dozen steps, which would hide what the test is about. No dropout, no
# batch norm: those layers' randomness and statistics are per rank (README: Scaling out).
TINY = {"name": "tiny", "layers": [
    {"type": "conv", "out": 6, "kernel": 5}, {"type": "avgpool", "kernel": 2},
    {"type": "tanh"}, {"type": "flatten"}, {"type": "linear", "out": "classes"}]}
RUN = dict(dataset="digits", network=TINY, epochs=2, lr=0.05, batch_size=64,
           lr_policy="step", step_size=1, gamma=0.5, augment=AugmentConfig(rotation=10))


class StopAtStep:
    """should_stop for rank 0: true from the n-th step on (picklable: it crosses into ranks)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, rank: int):
        calls = {"n": 0}

        def should_stop() -> bool:
            calls["n"] += 1
            return rank == 0 and calls["n"] >= self.n
        return None, should_stop


def _weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def _assert_close(a: dict, b: dict, tol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=tol, atol=tol, msg=f"weights {k} differ")


@pytest.fixture(scope="module")
def single(digits_home, tmp_path_factory):
    """The reference: one process, 2 epochs."""
    run_dir = tmp_path_factory.mktemp("single")
    return run_dir, train(TrainConfig(**RUN, device="cpu"), run_dir, home=digits_home)


def test_two_gloo_ranks_equal_one_process_and_resume_on_one_rank(digits_home, tmp_path, single):
    """2 ranks stopped mid-way through epoch 2, then resumed on 1 rank, against one process
    straight through: the same weights (to float tolerance) after epoch 1 and at the end, and
    the same accuracies; rank 0 alone wrote the run (one log, one set of checkpoints)."""
    single_dir, ref = single
    from engine.datasets import open_dataset

    steps = math.ceil(len(open_dataset("digits", home=digits_home).split("train")) / 64)
    run_dir = tmp_path / "ddp"
    first = run_training(TrainConfig(**RUN, device="cpu:2"), run_dir,
                         setup=StopAtStep(steps + 3), home=digits_home)
    assert first.status == "stopped" and first.epochs_completed == 1
    _assert_close(_weights(run_dir / "checkpoints" / "epoch-0001.pt"),
                  _weights(single_dir / "checkpoints" / "epoch-0001.pt"))
    assert first.history[0]["val_accuracy"] == ref.history[0]["val_accuracy"]
    assert first.history[0]["val_per_class_accuracy"] == ref.history[0]["val_per_class_accuracy"]
    assert first.history[0]["train_loss"] == pytest.approx(ref.history[0]["train_loss"], rel=1e-5)
    saved = load_checkpoint(run_dir / "last.pt")
    assert saved["epoch"] == 1 and saved["batch"] == 3  # global steps into epoch 2
    assert saved["seen"] == 3 * 64  # images of the global batches, not of a rank
    assert not any(k.startswith("module.") for k in saved["model"])  # the unwrapped module
    log = (run_dir / "log.txt").read_text()
    assert "2 cpu ranks (DDP, gloo)" in log and log.count("epoch 1  train_loss") == 1

    # The 2-rank checkpoint continues on one process.
    second = train(TrainConfig(**RUN, device="cpu"), run_dir, resume=True, home=digits_home)
    assert second.status == "done" and second.epochs_completed == 2
    _assert_close(_weights(run_dir / "last.pt"), _weights(single_dir / "last.pt"))
    assert second.history[-1]["val_accuracy"] == ref.history[-1]["val_accuracy"]
    assert second.held_out["accuracy"] == ref.held_out["accuracy"]
    assert second.history[-1]["train_loss"] == pytest.approx(ref.history[-1]["train_loss"],
                                                             rel=1e-4)


def test_a_rank_error_reaches_the_caller_with_its_words(digits_home, tmp_path, monkeypatch):
    # The host's __main__ is a script that must not run in the ranks (Streamlit and AppTest
    # install their page script there; 'spawn' would run it again in each rank).
    script = tmp_path / "page.py"
    script.write_text("raise SystemExit('the host script ran in a rank')\n")
    page = types.ModuleType("__main__")
    page.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", page)
    cfg = TrainConfig(**{**RUN, "dataset": "digits", "network": {
        "layers": [{"type": "flatten"}, {"type": "linear", "out": "classes"}]}},
        device="cpu:2", init_from=str(tmp_path / "missing.pt"))
    with pytest.raises((ConfigError, FileNotFoundError), match="missing.pt"):
        run_training(cfg, tmp_path / "bad", home=digits_home)
    assert sys.modules["__main__"] is page  # given back


def test_train_alone_refuses_several_devices(digits_home, tmp_path):
    with pytest.raises(ConfigError, match="run_training"):
        train(TrainConfig(**RUN, device="cpu:2"), tmp_path / "x", home=digits_home)
    if not torch.cuda.is_available():  # in the foreground too, before any rank starts
        with pytest.raises(ConfigError, match="asks for 2 GPUs, but this machine has none; "
                                              "use cpu:2 for 2 CPU processes"):
            run_training(TrainConfig(**RUN, device="cuda", devices=2), tmp_path / "y",
                         home=digits_home)


def test_ranks_share_every_global_batch_exactly():
    for n in (64, 29, 1):
        parts = [Ranks(r, 2, torch.device("cpu")).shard(n) for r in range(2)]
        got = [i for p in parts for i in range(n)[p]]
        assert got == list(range(n))  # each image once, in order
        sizes = [p.stop - p.start for p in parts]
        assert max(sizes) - min(sizes) <= 1


# --- device requests ----------------------------------------------------------------------------


def test_device_requests_parse():
    assert parse_devices("cpu:2") == DeviceRequest("cpu", 2, None)
    assert parse_devices("cpu", 3) == DeviceRequest("cpu", 3, None)
    assert parse_devices("cuda:0,1") == DeviceRequest("cuda", 2, (0, 1))
    assert parse_devices("cuda", 2) == DeviceRequest("cuda", 2, None)
    assert parse_devices("cuda:1") == DeviceRequest("cuda", 1, (1,))
    assert parse_devices("auto", 2) == DeviceRequest("auto", 2, None)
    for bad, words in [(("cuda:0,0",), "twice"), (("cuda:0,1", 3), "devices is 3"),
                       (("cuda:1", 2), "names one GPU"), (("gpu:2",), "unknown device"),
                       (("cpu", 0), "devices must be")]:
        with pytest.raises(ValueError, match=words):
            parse_devices(*bad)
    assert device_units("cuda:0,1") == ["cuda:0", "cuda:1"]
    assert device_units("cpu:2") == ["cpu", "cpu"] and device_units("cpu") == ["cpu"]
    assert assigned_name(["cuda:2", "cuda:3"]) == "cuda:2,3"
    assert assigned_name(["cpu", "cpu"]) == "cpu:2"
    with pytest.raises(ConfigError, match="devices is 3"):
        TrainConfig(dataset="d", device="cpu:2", devices=3).validate()


def test_the_devices_option_is_generated():
    from engine.cli.main import build_parser

    a = build_parser().parse_args(["train", "--dataset", "d", "--devices", "2"])
    assert a.devices == 2


# --- the scheduler reserves all of a job's devices at once --------------------------------------


def _scheduler(tmp_path, **settings) -> Scheduler:
    s = Scheduler(tmp_path, SchedulerSettings(**settings), on_demand=True)
    s.gpus, s.conn = settings.get("gpus") or 0, store.connect(tmp_path)
    return s


def _queue(s: Scheduler, job_id: str, device: str, devices: int = 1) -> None:
    store.insert_job(s.conn, {"id": job_id, "name": job_id, "status": "queued",
                              "device": device, "kind": "train",
                              "config": {"devices": devices}, "created": 1.0, "queued": 1.0})


def test_scheduler_reserves_n_cpu_slots_for_an_n_rank_job(tmp_path, launched):
    s = _scheduler(tmp_path, cpu_threads=4, gpus=0)
    _queue(s, "ddp", "cpu:2")
    _queue(s, "one", "cpu")
    _queue(s, "ddp2", "cpu", devices=2)
    s.start_queued()
    jobs = {j["id"]: j for j in store.list_jobs(s.conn)}
    assert jobs["ddp"]["assigned_device"] == "cpu:2"
    assert jobs["one"]["assigned_device"] == "cpu"
    # 2 + 1 places of 4 threads are taken: 2 more ranks would leave a job without a thread.
    assert jobs["ddp2"]["status"] == "queued"
    assert [e["OMP_NUM_THREADS"] for e in launched] == ["2", "1"]  # per rank, then beside
    s.rebalance()  # 3 places share 4 threads: the 2-rank job's ranks get 1 each
    assert threads.read_share(tmp_path / "jobs" / "ddp") == 1
    assert threads.read_share(tmp_path / "jobs" / "one") == 1
    store.update_job(s.conn, "one", status="done")
    s.start_queued()
    assert store.get_job(s.conn, "ddp2")["assigned_device"] == "cpu:2"  # 4 places of 4


def test_scheduler_reserves_all_gpus_at_once(tmp_path, launched):
    s = _scheduler(tmp_path, cpu_threads=2, gpus=3)
    _queue(s, "one", "cuda:1")
    _queue(s, "two", "cuda", devices=2)
    _queue(s, "named", "cuda:0,2")
    s.start_queued()
    jobs = {j["id"]: j for j in store.list_jobs(s.conn)}
    assert jobs["one"]["assigned_device"] == "cuda:1"
    assert jobs["two"]["assigned_device"] == "cuda:0,2"  # the two free ones
    assert jobs["named"]["status"] == "queued"  # waits for both of its GPUs
    use = collections.Counter({"cuda:1": 1})
    assert placement.pick_many(parse_devices("cuda:0,2"), 3, use, [], s.settings) == "cuda:0,2"


def test_more_devices_than_exist_are_refused_with_the_reason(tmp_path, launched, jobs_home,
                                                            monkeypatch):
    s = _scheduler(tmp_path, cpu_threads=2, gpus=1)
    _queue(s, "gpus", "cuda:0,1")
    _queue(s, "procs", "cpu:3")
    s.start_queued()
    gpus, procs = store.get_job(s.conn, "gpus"), store.get_job(s.conn, "procs")
    assert gpus["status"] == "failed" and gpus["reason"] == "device"
    assert "asks for 2 GPUs (cuda:0, cuda:1), but this machine has 1" in gpus["message"]
    assert procs["status"] == "failed"
    assert "asks for 3 CPU processes, but the CPU thread budget is 2 threads" in procs["message"]
    assert not launched

    # Submitting says so at once (this machine has no GPU; its budget is set to 2 threads).
    from engine.jobs import api

    monkeypatch.setenv("STUDIO_CPU_THREADS", "2")
    with pytest.raises(ConfigError, match="asks for 3 CPU processes"):
        api.submit({"dataset": "digits", "device": "cpu:3"}, home=jobs_home,
                   start_scheduler=False)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="asks for 2 GPUs, but this machine has none"):
            api.submit({"dataset": "digits", "device": "cuda", "devices": 2}, home=jobs_home,
                       start_scheduler=False)
    with store.opened(jobs_home) as conn:
        assert store.list_jobs(conn) == []  # nothing queued


# --- through the queue: the scheduler, a worker and its two ranks -------------------------------


def test_a_two_rank_job_runs_through_the_queue(jobs_home, monkeypatch):
    import time

    from engine import jobs

    monkeypatch.setenv("STUDIO_CPU_SLOTS", "2")
    monkeypatch.setenv("STUDIO_CPU_THREADS", "2")
    job_id = jobs.submit({**RUN, "augment": {}, "network": TINY, "epochs": 1,
                          "device": "cpu", "devices": 2}, home=jobs_home)
    deadline = time.monotonic() + 240
    while jobs.get_job(job_id)["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the 2-rank job did not end in 240 s"
        time.sleep(0.2)
    job = jobs.get_job(job_id)
    assert job["status"] == "done", job["message"]
    assert job["assigned_device"] == "cpu:2"
    metrics = jobs.job_metrics(job_id)
    assert [m["epoch"] for m in metrics] == [1] and metrics[0]["val_accuracy"] > 0.5
    events = " ".join(e["message"] for e in jobs.job_events(job_id))
    assert "2 cpu ranks (DDP, gloo)" in events


# --- New model offers the device count where several GPUs exist ---------------------------------


def test_new_model_offers_the_gpu_count_where_several_gpus_exist(home, monkeypatch):
    from engine.datasets import create_dataset
    from testkit.apptest import app, errors, open_page

    create_dataset("digits", "digits-sample", owner="alice")
    at = open_page(app(), "new_model")
    assert not at.exception and not errors(at)
    assert not [n for n in at.number_input if n.key == "nm_devices"]  # one device or none

    two = [{"id": "cpu", "name": "CPU (2 cores)", "memory_gb": None},
           {"id": "cuda:0", "name": "NVIDIA H200", "memory_gb": 140.0},
           {"id": "cuda:1", "name": "NVIDIA H200", "memory_gb": 140.0}]
    monkeypatch.setattr("dashboard.views.new_model.list_devices", lambda: two)
    at = open_page(app(), "new_model")
    assert not at.exception, at.exception
    at.number_input(key="nm_devices").set_value(2).run()
    at.button(key="nm_submit").click().run()
    assert not at.exception, at.exception
    if not torch.cuda.is_available():  # the GPUs were pretend: submitting says why it cannot
        assert any("asks for 2 GPUs, but this machine has none" in e for e in errors(at))


def test_a_stopped_two_rank_job_resumes_on_one_device(jobs_home, monkeypatch):
    from engine.jobs import api
    from engine.jobs.progress import _device_wait

    monkeypatch.setenv("STUDIO_CPU_THREADS", "2")
    monkeypatch.setenv("STUDIO_CPU_SLOTS", "2")
    job_id = api.submit({"dataset": "digits", "device": "cpu:2"}, home=jobs_home,
                        start_scheduler=False)
    job = api.get_job(job_id, home=jobs_home)
    running = [store.Job(id="r", config={}, created=0.0, queued=0.0, assigned_device="cpu")]
    assert _device_wait(job, running, {"devices": ["cpu"], "settings": {}}, jobs_home) == \
        "2 CPU slots at once (1 busy)"
    with store.opened(jobs_home) as conn:
        store.update_job(conn, job_id, status="cancelled")
    with pytest.raises(ConfigError, match="asks for 3 CPU processes"):
        api.resume(job_id, home=jobs_home, start_scheduler=False, devices=3)
    api.resume(job_id, home=jobs_home, start_scheduler=False, devices=1)
    job = api.get_job(job_id, home=jobs_home)
    assert job["status"] == "queued" and job["device"] == "cpu"
    assert job["config"]["device"] == "cpu" and job["config"]["devices"] == 1


def test_the_torchrun_command_of_the_readme_trains(digits_home, tmp_path):
    """The multi-node command with one node: torchrun's c10d rendezvous, 2 ranks, the same
    training entry point; rank 0 writes the run and prints its result."""
    import json
    import os
    import subprocess
    import sys

    config, out = tmp_path / "config.json", tmp_path / "run"
    config.write_text(json.dumps(TrainConfig(**{**RUN, "augment": AugmentConfig(),
                                                "epochs": 1}).to_dict()))
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
         "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0", "--rdzv-id", "test",
         "-m", "engine.training.distributed", "--config", str(config), "--out", str(out)],
        env={**os.environ, "STUDIO_HOME": str(digits_home), "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    assert result["status"] == "done" and result["epochs_completed"] == 1
    assert "2 cpu ranks (DDP, gloo)" in (out / "log.txt").read_text()
    assert json.loads((out / "config.json").read_text())["devices"] == 2
