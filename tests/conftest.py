"""Shared fixtures: a fresh workspace per test and the real MNIST files from ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Shared with the benchmarks (testkit is installed with the project).
from testkit.mnist import MNIST_DIR, MNIST_IMAGES, MNIST_LABELS, make_mnist_sample
from testkit.processes import processes_of

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty workspace, also exported as $STUDIO_HOME for code and subprocesses."""
    ws = tmp_path / "workspace"
    ws.mkdir()
    monkeypatch.setenv("STUDIO_HOME", str(ws))
    return ws


@pytest.fixture(scope="session")
def mnist_files() -> tuple[Path, Path]:
    if not (MNIST_IMAGES.exists() and MNIST_LABELS.exists()):
        pytest.skip(f"real MNIST files not found in {MNIST_DIR} (they live in ../shared/data; "
                    "set STUDIO_MNIST_DIR to use another copy)")
    return MNIST_IMAGES, MNIST_LABELS


def pytest_configure(config):
    # Keep CPU tests predictable on a 2-core machine: two threads, or one per pytest-xdist
    # worker, and OpenMP threads that sleep while they wait. Spinning ones, beside the other
    # worker's processes, slowed an in-process training 6-10x.
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, 2 // int(workers or 1))))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# `make test-fast` (-m "not slow and not browser") is the edit loop: no test that trains a
# network (beyond a few steps), runs job processes or exports a model. A test is slow when it
# uses a fixture that does, or calls one of these itself; nobody has to remember to mark it.
TRAINING_FIXTURES = {"mnist_lenet", "lenet_run", "trained", "job_id", "jobs_home", "graphs",
                     "bundle", "exported", "variants", "deployed", "deployed_home"}
TRAINING_CALLS = ("train(", "finished_job(", "submit(", "submit_task(", "make_bundle(",
                  "export_onnx(", '"train"', "subprocess")
BROWSER_RERUNS = 1


def pytest_collection_modifyitems(config, items):
    import inspect

    for item in items:
        if item.path.parent.name == "browser":  # tests/browser/ drives Chromium, marked or not
            item.add_marker(pytest.mark.browser)
        if item.get_closest_marker("browser"):  # also those elsewhere (the replicas' proxy)
            # One retry, as Playwright's own test runner gives browser tests on CI: a real
            # browser beside training jobs on two cores. A test failing twice still fails, and
            # a retried one is listed (RERUN) in the summary (pytest-rerunfailures).
            item.add_marker(pytest.mark.flaky(reruns=BROWSER_RERUNS, reruns_delay=2))
        if item.get_closest_marker("slow") or not hasattr(item, "function"):
            continue
        try:
            source = inspect.getsource(item.function)
        except (OSError, TypeError):
            source = ""
        if (TRAINING_FIXTURES & set(getattr(item, "fixturenames", ()))
                or any(call in source for call in TRAINING_CALLS)):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def mnist_sample_home(tmp_path_factory, mnist_files) -> Path:
    """The MNIST sample split's workspace (see make_mnist_sample), shared by the session."""
    return make_mnist_sample(tmp_path_factory.mktemp("mnist-sample"))


@pytest.fixture(scope="session")
def digits_home(tmp_path_factory) -> Path:
    """A workspace holding 'digits': the offline sample (scikit-learn's digits, MNIST-framed),
    with 10% validation and 20% test."""
    from engine.datasets import DatasetOptions, create_dataset

    home = tmp_path_factory.mktemp("digits") / "workspace"
    create_dataset("digits", "digits-sample", None,
                   DatasetOptions(val_percent=10.0, test_percent=20.0), home=home)
    return home


@pytest.fixture(scope="session")
def lenet_run(digits_home, tmp_path_factory) -> Path:
    """The run folder of a LeNet trained 2 epochs on 'digits' (seeded), shared by the session."""
    from engine.training import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("runs") / "lenet-digits"
    train(TrainConfig(dataset="digits", network="lenet", epochs=2, seed=0, device="cpu"),
          run_dir, home=digits_home)
    return run_dir


@pytest.fixture(scope="session")
def mnist_lenet(mnist_sample_home, tmp_path_factory):
    """LeNet trained 5 epochs on the MNIST sample split: (run_dir, TrainResult)."""
    from engine.training import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("runs") / "lenet-mnist"
    cfg = TrainConfig(dataset="mnist-sample", network="lenet", epochs=5, lr=0.01, seed=0)
    return run_dir, train(cfg, run_dir, home=mnist_sample_home)


@pytest.fixture
def launched(monkeypatch) -> list[dict]:
    """Worker processes the scheduler would start, recorded instead (their environments)."""
    started: list[dict] = []

    class FakePopen:
        pid = 4242

        def __init__(self, args, env, **kw):
            started.append(env)

    monkeypatch.setattr("engine.jobs.scheduler.subprocess.Popen", FakePopen)
    return started


@pytest.fixture
def jobs_home(tmp_path, monkeypatch, digits_home):
    """A workspace with the 'digits' dataset and a fast-polling, CPU-only scheduler; every
    scheduler and worker started on it is killed at the end."""
    import shutil
    import signal
    import time

    home = (tmp_path / "workspace").resolve()
    shutil.copytree(digits_home, home)
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.setenv("STUDIO_SCHEDULER_POLL", "0.1")
    monkeypatch.setenv("STUDIO_SCHEDULER_IDLE_EXIT", "60")
    monkeypatch.setenv("STUDIO_GPUS", "0")
    monkeypatch.setenv("STUDIO_CPU_SLOTS", "1")
    yield home
    for _ in range(50):
        pids = processes_of(home)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
