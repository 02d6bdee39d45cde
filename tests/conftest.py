"""Shared fixtures: a fresh workspace per test and the real MNIST files from ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _mnist_dir() -> Path:
    """Real MNIST t10k files: $STUDIO_MNIST_DIR if set, else ../shared/data beside the
    checkout, else the copy bench/stage_device.sh puts in .device/ for a machine that gets
    only the checkout (the GPU machine)."""
    if os.environ.get("STUDIO_MNIST_DIR"):
        return Path(os.environ["STUDIO_MNIST_DIR"])
    shared = ROOT.parent / "shared" / "data" / "mnist-t10k"
    carried = ROOT / ".device" / "mnist-t10k"
    return carried if not shared.exists() and carried.exists() else shared


MNIST_DIR = _mnist_dir()
MNIST_IMAGES = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"


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
    # Keep CPU tests predictable on a 2-core machine.
    os.environ.setdefault("OMP_NUM_THREADS", "2")


# `make test-fast` (-m "not slow and not browser") is the edit loop: no test that trains a
# network (beyond a few steps), runs job processes or exports a model. A test is slow when it
# uses a fixture that does, or calls one of these itself; nobody has to remember to mark it.
TRAINING_FIXTURES = {"mnist_lenet", "lenet_run", "trained", "job_id", "jobs_home", "graphs",
                     "bundle", "exported", "variants", "deployed", "deployed_home"}
TRAINING_CALLS = ("train(", "finished_job(", "submit(", "submit_task(", "make_bundle(",
                  "export_onnx(", '"train"', "subprocess")


def pytest_collection_modifyitems(config, items):
    import inspect

    for item in items:
        if item.get_closest_marker("slow") or not hasattr(item, "function"):
            continue
        try:
            source = inspect.getsource(item.function)
        except (OSError, TypeError):
            source = ""
        if (TRAINING_FIXTURES & set(getattr(item, "fixturenames", ()))
                or any(call in source for call in TRAINING_CALLS)):
            item.add_marker(pytest.mark.slow)


def write_idx(path: Path, array) -> None:
    """Write a uint8 array as a raw IDX file (images: N x H x W, labels: N)."""
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


def read_idx_gz(path: Path):
    import gzip

    import numpy as np

    raw = gzip.open(path).read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def make_mnist_sample(root: Path, name: str = "mnist-sample", val_percent: float = 10.0
                      ) -> Path:
    """A workspace in root holding `name`: the mnist-8k/2k split (first 8,000 images train,
    last 2,000 held out as the test split), with val_percent of the training part for
    validation. Also used by the benchmarks and bench/gpu_check.py."""
    from engine.datasets import DatasetOptions, create_dataset

    images, labels = read_idx_gz(MNIST_IMAGES), read_idx_gz(MNIST_LABELS)
    parts = {"train-images": images[:8000], "train-labels": labels[:8000],
             "test-images": images[8000:], "test-labels": labels[8000:]}
    for part, arr in parts.items():
        write_idx(root / part, arr)
    home = root / "workspace"
    create_dataset(name, "idx", {
        "train_images": str(root / "train-images"), "train_labels": str(root / "train-labels"),
        "test_images": str(root / "test-images"), "test_labels": str(root / "test-labels"),
    }, DatasetOptions(val_percent=val_percent), home=home)
    return home


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
def mnist_lenet(mnist_sample_home, tmp_path_factory):
    """LeNet trained 5 epochs on the MNIST sample split: (run_dir, TrainResult)."""
    from engine.training import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("runs") / "lenet-mnist"
    cfg = TrainConfig(dataset="mnist-sample", network="lenet", epochs=5, lr=0.01, seed=0)
    return run_dir, train(cfg, run_dir, home=mnist_sample_home)


def processes_of(home: Path) -> list[int]:
    """Processes (not zombies) whose environment points at this workspace: ours alone."""
    needle = f"\0STUDIO_HOME={home}\0".encode()
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            if needle in b"\0" + (p / "environ").read_bytes():
                found.append(int(p.name))
        except OSError:
            continue
    return found


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
