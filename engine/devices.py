"""The training devices this machine offers, for choosers and the scheduler."""

from __future__ import annotations

import os
from typing import Any

import torch


def list_devices() -> list[dict[str, Any]]:
    """The CPU, then each CUDA GPU with its name and memory."""
    devices = [{"id": "cpu", "name": f"CPU ({os.cpu_count() or 1} cores)", "memory_gb": None}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append({"id": f"cuda:{i}", "name": props.name,
                            "memory_gb": round(props.total_memory / 1024**3, 1)})
    return devices


def describe(device: dict[str, Any]) -> str:
    mem = f", {device['memory_gb']} GB" if device.get("memory_gb") else ""
    return f"{device['id']} — {device['name']}{mem}"
