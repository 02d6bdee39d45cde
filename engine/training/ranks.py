"""A process's place in a data-parallel run (engine/training/distributed.py starts the ranks;
the trainer takes a Ranks), and the collectives the trainer needs: shares of a global batch,
sums and agreement flags across ranks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


def dist_backend(device: torch.device) -> str:
    """The torch.distributed backend for a device: NCCL between GPUs, gloo on the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


@dataclass
class Ranks:
    """This process's place in a data-parallel run."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of a global batch of n (sizes differ by at most 1)."""
        return slice(n * self.rank // self.world, n * (self.rank + 1) // self.world)

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise sum over ranks (a new tensor on this rank's device)."""
        out = values.detach().clone().to(self.device)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def any_flags(self, flags: list[bool]) -> list[bool]:
        """Each flag true on any rank: the way ranks agree to stop or report at a step."""
        t = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def barrier(self) -> None:
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()
