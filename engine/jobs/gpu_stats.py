"""GPU utilisation, memory, temperature and power, read through NVML (nvidia-ml-py's `pynvml`).

The scheduler samples every SAMPLE_S seconds and writes `<home>/gpus.json`; the dashboard's GPU
panel reads that file (`panel_data`), so a page never opens NVML while a scheduler runs. With
no scheduler running, panel_data samples once itself. On a machine without an NVIDIA GPU (or
driver, or nvidia-ml-py) a sample has no GPUs and says why.
"""

from __future__ import annotations

import os
import time
from typing import Any

from engine.state.workspace import atomic_write_json, read_json, studio_home

SAMPLES_FILE = "gpus.json"
SAMPLE_S = 2.0  # the scheduler's sampling interval
STALE_S = 15.0  # a sample older than this is not shown as current
RETRY_S = 60.0  # after NVML failed to start, the scheduler tries again this rarely


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def sample_gpus() -> dict[str, Any]:
    """One reading of every GPU: {"time", "gpus": [{"index", "name", "utilization" (%),
    "memory_used", "memory_total" (bytes), "temperature" (C), "power", "power_limit" (W)}],
    "error": None or why there are none}. A reading a GPU does not support is None."""
    now = time.time()
    try:
        import pynvml
    except ImportError:
        return {"time": now, "gpus": [], "error": "nvidia-ml-py (pynvml) is not installed"}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        return {"time": now, "gpus": [], "error": f"no NVIDIA driver or GPU here (NVML: {e})"}
    try:
        gpus = [_read_one(pynvml, i) for i in range(pynvml.nvmlDeviceGetCount())]
    except pynvml.NVMLError as e:
        return {"time": now, "gpus": [], "error": f"NVML could not list the GPUs: {e}"}
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    return {"time": now, "gpus": gpus,
            "error": None if gpus else "NVML found no NVIDIA GPU on this machine"}


def _read_one(nvml: Any, index: int) -> dict[str, Any]:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)

    def read(fn, *args):
        try:
            return fn(handle, *args)
        except nvml.NVMLError:  # not supported on this GPU (power on some boards)
            return None

    util = read(nvml.nvmlDeviceGetUtilizationRates)
    mem = read(nvml.nvmlDeviceGetMemoryInfo)
    power = read(nvml.nvmlDeviceGetPowerUsage)  # milliwatts
    limit = read(nvml.nvmlDeviceGetEnforcedPowerLimit)
    return {"index": index, "name": _text(read(nvml.nvmlDeviceGetName) or f"GPU {index}"),
            "utilization": None if util is None else int(util.gpu),
            "memory_used": None if mem is None else int(mem.used),
            "memory_total": None if mem is None else int(mem.total),
            "temperature": read(nvml.nvmlDeviceGetTemperature, nvml.NVML_TEMPERATURE_GPU),
            "power": None if power is None else power / 1000.0,
            "power_limit": None if limit is None else limit / 1000.0}


class GpuSampler:
    """The scheduler's: writes a sample to <home>/gpus.json every SAMPLE_S (after NVML failed
    to start, every RETRY_S: a machine without GPUs is not asked again and again)."""

    def __init__(self, home: str | os.PathLike, interval_s: float = SAMPLE_S) -> None:
        self.path = studio_home(home) / SAMPLES_FILE
        self.interval_s = interval_s
        self._next = 0.0

    def __call__(self) -> dict[str, Any] | None:
        now = time.monotonic()
        if now < self._next:
            return None
        sample = sample_gpus()
        self._next = now + (self.interval_s if sample["gpus"] else RETRY_S)
        sample["source"] = "scheduler"
        try:
            atomic_write_json(self.path, sample)
        except OSError:
            return None
        return sample


def read_samples(home: str | os.PathLike | None = None) -> dict[str, Any] | None:
    path = studio_home(home) / SAMPLES_FILE
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def panel_data(home: str | os.PathLike | None, scheduler_running: bool) -> dict[str, Any]:
    """What the GPU panel shows: the scheduler's latest sample; with no scheduler running
    (engine.jobs.scheduler_alive), a sample taken now. Adds "stale": True when the scheduler's
    sample is old."""
    sample = read_samples(home)
    if scheduler_running:
        if sample is None:
            return {"time": None, "gpus": [], "error": None, "source": "scheduler",
                    "waiting": True}
        fresh = time.time() - float(sample.get("time") or 0) <= max(STALE_S, RETRY_S * 1.5
                                                                     if not sample.get("gpus")
                                                                     else STALE_S)
        return {**sample, "stale": not fresh}
    return {**sample_gpus(), "source": "dashboard"}
