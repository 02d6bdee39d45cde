"""The GPU panel (issue 20): NVML samples taken by the scheduler, written to the workspace and
drawn on Home and on a running job's page; a machine without a GPU says so. NVML is a fake
module here (monkeypatched in as `pynvml`), so the numbers shown are known."""

from __future__ import annotations

import sys
import types

import pytest

from engine import jobs
from engine.datasets import create_dataset
from engine.jobs import gpu_stats
from engine.jobs.scheduler import Scheduler
from engine.jobs.settings import SchedulerSettings
from engine.state import store
from engine.state.scheduler_lock import take_lock
from testkit.apptest import app, open_page

GIB = 1024**3


def fake_nvml(gpus: list[dict] | None, calls: list[str] | None = None) -> types.ModuleType:
    """A pynvml with these GPUs (None: no driver, nvmlInit fails as on a machine without one)."""
    m = types.ModuleType("pynvml")
    m.NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    m.NVMLError = NVMLError

    def init():
        if calls is not None:
            calls.append("init")
        if gpus is None:
            raise NVMLError("NVML Shared Library Not Found")

    def power(h):
        if gpus[h].get("power_mw") is None:
            raise NVMLError("Not Supported")
        return gpus[h]["power_mw"]

    m.nvmlInit = init
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetCount = lambda: len(gpus)
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetName = lambda h: gpus[h]["name"].encode()
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=gpus[h]["util"],
                                                                      memory=0)
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(
        used=gpus[h]["used"], total=gpus[h]["total"], free=gpus[h]["total"] - gpus[h]["used"])
    m.nvmlDeviceGetTemperature = lambda h, sensor: gpus[h]["temp"]
    m.nvmlDeviceGetPowerUsage = power
    m.nvmlDeviceGetEnforcedPowerLimit = lambda h: 700_000
    return m


TWO = [{"name": "NVIDIA H200", "util": 87, "used": 30 * GIB, "total": 140 * GIB, "temp": 65,
        "power_mw": 350_000},
       {"name": "NVIDIA H200", "util": 3, "used": 1 * GIB, "total": 140 * GIB, "temp": 31,
        "power_mw": None}]


def test_a_sample_reads_every_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(TWO))
    sample = gpu_stats.sample_gpus()
    assert sample["error"] is None
    first, second = sample["gpus"]
    assert first == {"index": 0, "name": "NVIDIA H200", "utilization": 87,
                     "memory_used": 30 * GIB, "memory_total": 140 * GIB, "temperature": 65,
                     "power": 350.0, "power_limit": 700.0}
    assert second["power"] is None and second["utilization"] == 3  # not supported: None

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(None))
    none = gpu_stats.sample_gpus()
    assert none["gpus"] == [] and "no NVIDIA driver or GPU here" in none["error"]


def test_the_scheduler_samples_and_the_panel_reads_its_file(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(TWO, calls))
    s = Scheduler(tmp_path, SchedulerSettings(gpus=0), on_demand=True)
    assert s.sample_gpus()["gpus"][0]["utilization"] == 87
    assert s.sample_gpus() is None  # not again before SAMPLE_S
    assert calls == ["init"]
    assert gpu_stats.read_samples(tmp_path)["source"] == "scheduler"
    # While a scheduler runs, the panel reads the file and never opens NVML itself.
    shown = gpu_stats.panel_data(tmp_path, scheduler_running=True)
    assert [g["temperature"] for g in shown["gpus"]] == [65, 31] and not shown["stale"]
    assert calls == ["init"]
    # With no scheduler, the panel samples once itself.
    assert gpu_stats.panel_data(tmp_path, scheduler_running=False)["source"] == "dashboard"
    assert calls == ["init", "init"]


@pytest.fixture
def scheduler_lock(home):
    """The workspace looks as if a scheduler ran (its lock is held)."""
    import os

    fd = take_lock(home)
    yield fd
    os.close(fd)


def _panel_metrics(at) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in at.metric:
        out.setdefault(m.label, []).append(m.value)
    return out


def test_home_shows_each_gpu(home, monkeypatch, scheduler_lock):
    create_dataset("digits", "digits-sample", owner="alice")
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(TWO))
    Scheduler(home, SchedulerSettings(gpus=0), on_demand=True).sample_gpus()
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(None))  # the page must not use it
    at = app()
    assert not at.exception, at.exception
    shown = _panel_metrics(at)
    assert shown["Utilisation"] == ["87%", "3%"]
    assert shown["Memory"] == ["30.0 / 140.0 GiB", "1.0 / 140.0 GiB"]
    assert shown["Temperature"] == ["65 °C", "31 °C"]
    assert shown["Power"] == ["350 W / 700 W", "—"]
    assert any("cuda:0 — NVIDIA H200" in md.value for md in at.markdown)


def test_home_says_when_there_is_no_gpu(home, monkeypatch):
    create_dataset("digits", "digits-sample", owner="alice")
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(None))
    at = app()
    assert not at.exception, at.exception
    assert any("No GPU" in c.value and "no NVIDIA driver or GPU here" in c.value
               for c in at.caption)
    assert "Utilisation" not in _panel_metrics(at)


def test_a_running_job_shows_its_own_gpus(home, monkeypatch, scheduler_lock):
    create_dataset("digits", "digits-sample", owner="alice")
    job_id = jobs.submit({"dataset": "digits", "epochs": 2}, owner="alice",
                         start_scheduler=False)
    with store.opened(home) as conn:
        store.update_job(conn, job_id, status="running", assigned_device="cuda:1")
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(TWO))
    Scheduler(home, SchedulerSettings(gpus=0), on_demand=True).sample_gpus()
    at = open_page(app(), "job", id=job_id)
    assert not at.exception, at.exception
    shown = _panel_metrics(at)
    assert shown["Utilisation"] == ["3%"] and shown["Temperature"] == ["31 °C"]  # cuda:1 only
    assert any("cuda:1 — NVIDIA H200" in md.value for md in at.markdown)
