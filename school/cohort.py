"""A cohort: the processes that learn one baby together under torchrun (DistributedDataParallel).

`babyterm train` run by torchrun finds RANK/WORLD_SIZE in its environment and joins the cohort.
Every rank trains on its own shard of batches and DDP averages the gradients; rank 0, the lead,
alone writes the soul, the logs and what the user sees. Alone (no torchrun) it is a cohort of one
and every method is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Cohort:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def lead(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module to train through: DDP across ranks, the model itself alone."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = (
            [device.index if device.index is not None else self.local_rank] if device.type == "cuda" else None
        )
        return DistributedDataParallel(model, device_ids=ids)

    def any(self, flag: bool) -> bool:
        """True on every rank when it is True on any rank (so all stop at the same step)."""
        if self.world == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self._device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def agree(self, *values: float) -> tuple[float, ...]:
        """The lead's `values` on every rank: figures each measured for itself (its pace) and all
        must act on alike (the learning rate they set would differ, and the weights drift apart)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self._device)
        dist.broadcast(t, src=0)
        return tuple(t.tolist())

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def leave(self, together: bool = True) -> None:
        """Leave the process group; `together` (a clean stop) waits for every rank first.

        A rank that tore its group down while the lead was still saving its last checkpoint
        aborted now and then ("terminate called without an active exception", ~1 run in 8 of
        tests/test_distributed.py). After an error the others may never arrive: no wait then.
        """
        if self.world > 1 and dist.is_initialized():
            if together:
                dist.barrier()
            dist.destroy_process_group()

    @property
    def _device(self) -> torch.device:
        return torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")


def join_cohort(device: str) -> Cohort:
    """Join torchrun's process group when launched by it, else a cohort of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Cohort()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if cuda:
        torch.cuda.set_device(local_rank)  # "cuda" now means this rank's GPU
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Cohort(rank, world, local_rank)
