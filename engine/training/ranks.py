"""A process's place in a data-parallel run (engine/training/distributed.py starts the ranks;
the trainer takes a Ranks), and everything the training loop does differently on several
ranks: the DDP wrapper, this rank's share of a global batch and its loss, agreeing to report
or stop, sums across ranks, barriers and the per-rank random stream.

One process is a Ranks too (`Ranks.single(device)`: rank 0 of 1), for which every method is
what the loop does alone, so the loop reads the same either way and has no DDP branches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel


def dist_backend(device: torch.device) -> str:
    """The torch.distributed backend for a device: NCCL between GPUs, gloo on the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


@dataclass
class Ranks:
    """This process's place in a data-parallel run."""

    rank: int
    world: int
    device: torch.device

    @classmethod
    def single(cls, device: torch.device) -> Ranks:
        """One process training alone."""
        return cls(0, 1, device)

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes checkpoints, metrics and the log."""
        return self.rank == 0

    @property
    def shared(self) -> bool:
        """Several ranks share the work (DDP)."""
        return self.world > 1

    def describe(self) -> str:
        """Where the run trains, for its log and its start event."""
        if not self.shared:
            return str(self.device)
        return f"{self.world} {self.device.type} ranks (DDP, {dist_backend(self.device)})"

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the steps run: on several ranks DDP, which all-reduces the gradients in
        backward; checkpoints keep the unwrapped model, so a run resumes on any number."""
        if not self.shared:
            return model
        return DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def seed_own_stream(self, seed: int, epoch: int, batch: int) -> None:
        """Ranks other than 0 draw dropout masks of their own; rank 0 keeps the run's random
        stream (the single process's)."""
        if self.shared and self.rank:
            torch.manual_seed(hash((seed, self.rank, epoch, batch)) % 2**63)

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of a global batch of n (sizes differ by at most 1)."""
        return slice(n * self.rank // self.world, n * (self.rank + 1) // self.world)

    def part(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch (the whole batch in one process)."""
        return batch[self.shard(len(batch))] if self.shared else batch

    def batch_loss(self, logits: torch.Tensor, labels: torch.Tensor, n: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the loss to backpropagate, the float64 sum of this rank's per-image losses) for
        this rank's part of a global batch of n images. On several ranks the loss is scaled
        so that DDP's mean of the ranks' gradients is the gradient of the global batch's mean
        loss; alone, it is that mean."""
        if not self.shared:
            loss = F.cross_entropy(logits, labels)
            return loss, loss.detach().double() * len(labels)
        loss_sum = F.cross_entropy(logits, labels, reduction="sum")
        return loss_sum * (self.world / n), loss_sum.detach().double()

    def agree(self, report: bool, should_stop: Callable[[], bool]
              ) -> tuple[bool, Callable[[], bool]]:
        """(report at this step, whether to stop: asked after the report). Alone, `report` as
        given and should_stop itself; on several ranks, in one all-reduce at every step,
        rank 0's clock and a stop request of any rank, so that all take the same turn."""
        if not self.shared:
            return report, should_stop
        report, stop = self.any_flags([report and self.main, should_stop()])
        return report, lambda: stop

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise sum over ranks (a new tensor on this rank's device); the values
        themselves in one process."""
        if not self.shared:
            return values
        out = values.detach().clone().to(self.device)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def sum_all(self, *values: float | int | torch.Tensor) -> tuple:
        """Numbers and 1-D tensors, each summed over ranks in one all-reduce (in float64), and
        handed back as they came: a float, an int, a tensor of its dtype."""
        if not self.shared:
            return values
        packed = self.all_sum(torch.cat([
            v.double() if isinstance(v, torch.Tensor)
            else torch.tensor([v], dtype=torch.float64, device=self.device) for v in values]))
        out, at = [], 0
        for v in values:
            if isinstance(v, torch.Tensor):
                out.append(packed[at:at + len(v)].to(v.dtype))
                at += len(v)
            else:
                out.append(type(v)(packed[at]))
                at += 1
        return tuple(out)

    def any_flags(self, flags: list[bool]) -> list[bool]:
        """Each flag true on any rank: the way ranks agree to stop or report at a step."""
        t = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for in one process)."""
        if not self.shared:
            return
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()
