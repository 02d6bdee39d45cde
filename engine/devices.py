"""Devices: the grammar of the device strings a job asks for and is assigned (auto, cpu, cuda:N,
cuda:0,1, cpu:N), and the training devices this machine offers, for choosers and the
scheduler. Light to import: PyTorch loads only when the machine's devices are listed."""

from __future__ import annotations

import os
from typing import Any, NamedTuple


def list_devices() -> list[dict[str, Any]]:
    """The CPU, then each CUDA GPU with its name and memory."""
    import torch  # lazy: the grammar below is imported by light modules (TrainConfig)

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


DEVICE_HELP = "auto, cpu, cuda, cuda:N, cuda:0,1 (several GPUs) or cpu:N (N CPU processes)"


def parse_device(name: str) -> str:
    """The canonical form of a device a job asks for: 'auto', 'cpu' or 'cuda:N' ('cuda' is
    'cuda:0'); ValueError for anything else."""
    if name in ("auto", "cpu"):
        return name
    if name == "cuda":
        return "cuda:0"
    if isinstance(name, str) and name.startswith("cuda:") and name[5:].isdigit():
        return f"cuda:{int(name[5:])}"
    raise ValueError(f"unknown device {name!r}; use {DEVICE_HELP}")


class DeviceRequest(NamedTuple):
    """What a training asks for: kind 'auto', 'cpu' or 'cuda'; how many devices (ranks of one
    data-parallel job when more than 1); the GPU indices when it names them."""

    kind: str
    count: int
    gpus: tuple[int, ...] | None

    @property
    def label(self) -> str:
        """The request in words, for messages."""
        if self.kind == "cpu":
            return "the CPU" if self.count == 1 else f"{self.count} CPU processes"
        if self.gpus is not None:
            return ", ".join(f"cuda:{i}" for i in self.gpus)
        return f"{self.count} GPU(s)" if self.kind == "cuda" else f"{self.count} devices"


def parse_devices(device: str, count: int = 1) -> DeviceRequest:
    """The devices a training asks for, from its `device` and `devices` settings: 'cuda:0,1'
    names GPUs, 'cpu:N' asks for N CPU processes (gloo ranks, for testing data parallelism),
    and `count` > 1 with 'auto', 'cpu' or 'cuda' asks for that many (cuda: any N GPUs; auto:
    N GPUs, or N CPU processes on a machine without one). ValueError if they
    disagree or cannot be read."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1024:
        raise ValueError(f"devices must be a whole number from 1 to 1,024, not {count!r}")
    if not isinstance(device, str):
        raise ValueError(f"unknown device {device!r}; use {DEVICE_HELP}")
    named: int | None = None
    if device.startswith("cpu:") and device[4:].isdigit() and int(device[4:]) >= 1:
        req = DeviceRequest("cpu", int(device[4:]), None)
        named = req.count
    elif device.startswith("cuda:") and "," in device:
        parts = device[5:].split(",")
        if not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"unknown device {device!r}; use {DEVICE_HELP}")
        gpus = tuple(int(p) for p in parts)
        if len(set(gpus)) != len(gpus):
            raise ValueError(f"device {device!r} names a GPU twice")
        req = DeviceRequest("cuda", len(gpus), gpus)
        named = req.count
    else:
        single = parse_device(device)
        if device == "cuda" and count > 1:  # any `count` free GPUs
            return DeviceRequest("cuda", count, None)
        if single.startswith("cuda:"):
            index = int(single[5:])
            if count > 1 and device != "cuda":
                raise ValueError(f"device {device!r} names one GPU but devices is {count}; name "
                                 f"them all (e.g. cuda:{index},{index + 1}) or use cuda")
            return DeviceRequest("cuda", count, tuple(range(index, index + count)))
        return DeviceRequest(single, count, None)
    if count not in (1, named):
        raise ValueError(f"device {device!r} asks for {named} devices but devices is {count}")
    return req


def device_units(assigned: str | None) -> list[str]:
    """The devices an assigned device string holds, one per rank: 'cuda:0,1' ->
    ['cuda:0', 'cuda:1'], 'cpu:2' -> ['cpu', 'cpu'], 'cpu' -> ['cpu']."""
    if not assigned:
        return []
    if assigned.startswith("cpu:") and assigned[4:].isdigit():
        return ["cpu"] * int(assigned[4:])
    if assigned.startswith("cuda:") and "," in assigned:
        return [f"cuda:{int(i)}" for i in assigned[5:].split(",")]
    return [assigned]


def assigned_name(units: list[str]) -> str:
    """The assigned device string of a job holding these devices (device_units' inverse)."""
    if len(units) == 1:
        return units[0]
    if all(u == "cpu" for u in units):
        return f"cpu:{len(units)}"
    return "cuda:" + ",".join(u.split(":")[1] for u in units)
