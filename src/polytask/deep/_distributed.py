"""``torch.distributed`` helpers for data-parallel multi-task training.

The trainer runs one process per rank (``torchrun``). Every rank draws the same global
batch and trains on its shard; what makes N ranks equal to one process on the global
batch is which quantities are reduced across ranks, and when:

- per-task label counts and loss sums are summed, so each task's loss is the mean over
  the *global* batch, even with missing labels spread unevenly over ranks;
- loss weightings see these global losses and their objective is backpropagated through
  :class:`~torch.nn.parallel.DistributedDataParallel` (plain DDP averages the
  gradients);
- gradient methods (aggregators) get the per-task Jacobian with respect to the shared
  parameters summed across ranks *before* aggregation (parameter mode; each rank takes
  it with ``per_task_gradients(..., strategy="auto")``, one backward pass per task from
  its own loss, so a task's pass runs through its own head only), or the
  task Gramian of the representation gradients summed across ranks (representation
  mode: each rank holds different rows of the global representation, so its Gramian is
  the sum of the ranks' Gramians). Aggregators that need the representation Jacobian
  itself, not only its Gramian, are not supported under DDP in representation mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class DistContext:
    """Rank and world size of this process (``world_size == 1``: not distributed).

    Examples
    --------
    >>> ctx = DistContext()
    >>> ctx.enabled, ctx.is_main
    (False, True)
    """

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the process that writes logs and checkpoints)."""
        return self.rank == 0

    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        """Sum ``tensor`` over all ranks (a new tensor; the input is untouched)."""
        out = tensor.detach().clone()
        if self.enabled:
            dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.enabled:
            dist.barrier()


def distributed_context() -> DistContext:
    """The context of the current default process group, or a single-process one."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size())
    return DistContext()


def init_distributed(backend: str | None = None) -> DistContext:
    """Initialise the default process group from ``torchrun``'s environment variables.

    Does nothing (and returns a single-process context) when ``WORLD_SIZE`` is unset or
    1, and reuses an already initialised group.

    Parameters
    ----------
    backend : str, optional
        ``"nccl"`` or ``"gloo"``; default ``"nccl"`` when CUDA is available, else
        ``"gloo"``.

    Returns
    -------
    DistContext

    Examples
    --------
    >>> init_distributed().world_size   # not launched by torchrun
    1
    """
    if dist.is_available() and dist.is_initialized():
        return distributed_context()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistContext()
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return distributed_context()


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """Wrap ``module`` in :class:`~torch.nn.parallel.DistributedDataParallel`.

    Parameters are broadcast from rank 0 at construction, so every rank starts from the
    same model.
    """
    from torch.nn.parallel import DistributedDataParallel

    ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


__all__ = ["DistContext", "distributed_context", "init_distributed", "wrap_ddp"]
