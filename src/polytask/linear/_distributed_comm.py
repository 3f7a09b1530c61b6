"""Collectives over the ranks that share a linear multi-task problem.

A :class:`TaskComm` wraps a ``torch.distributed`` process group for NumPy arrays: sums
and maxima of arrays, an all-gather of equal-length vectors, and the all-gather of the
task blocks ``W[:, tasks of rank r]`` of unequal widths. It is the communicator
(:class:`~polytask.linear._comm.Comm`) that the penalty kernels and the FISTA iteration
of :mod:`polytask.linear._solvers` take when the tasks are sharded. torch is imported
when a communicator is built, never when this module is imported, so that
``polytask.linear`` stays free of torch.

Every rank must make the same calls in the same order (collectives are matched by
order). The results of a reduction are bitwise identical on every rank, which is what
keeps the solvers' decisions (step sizes, restarts, stopping) in lockstep.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from polytask._typing import FloatArray
from polytask.linear._distributed_penalties import sharded_objective
from polytask.linear._objective import Objective

__all__ = ["TaskComm", "signature"]

FArray = FloatArray


def signature(*parts: object) -> float:
    """A float fingerprint of the settings every rank must share (CRC-32 of their repr)."""
    return float(zlib.crc32(repr(parts).encode("utf-8")))


class TaskComm:
    """NumPy collectives over a process group whose ranks each own a block of tasks.

    Parameters
    ----------
    group : ProcessGroup or None
        The group (None: the default group).
    owner : str
        Name used in error messages.

    Raises
    ------
    ImportError
        If PyTorch is not installed.
    RuntimeError
        If ``torch.distributed`` is unavailable or no process group is initialised.
    ValueError
        If the group's backend is NCCL (it cannot reduce CPU arrays).
    """

    def __init__(self, group: Any, owner: str) -> None:
        try:
            import torch
            import torch.distributed as dist
        except ImportError as exc:  # pragma: no cover - torch is a dependency
            raise ImportError(f"{owner} needs PyTorch (torch.distributed).") from exc
        if not dist.is_available():
            raise RuntimeError(f"{owner}: this PyTorch build has no torch.distributed support.")
        if not dist.is_initialized():
            raise RuntimeError(
                f"{owner} needs an initialised process group: call "
                "torch.distributed.init_process_group(backend='gloo', ...) on every rank "
                "first (torchrun sets the environment it reads)."
            )
        if str(dist.get_backend(group)) == "nccl":
            raise ValueError(
                f"{owner}: group uses the NCCL backend, which cannot reduce CPU arrays; pass "
                "group=torch.distributed.new_group(backend='gloo')."
            )
        self.owner = owner
        self.group = group
        self._torch = torch
        self._dist = dist
        self.rank = int(dist.get_rank(group))
        self.world_size = int(dist.get_world_size(group))
        self.counts: tuple[int, ...] = ()
        self.offset = 0
        self.n_tasks = 0

    # ------------------------------------------------------------------ reductions
    def _reduce(self, x: ArrayLike, op: Any) -> FArray:
        arr = np.array(x, dtype=np.float64, copy=True, ndmin=1)
        arr = np.ascontiguousarray(arr)
        self._dist.all_reduce(self._torch.from_numpy(arr), op=op, group=self.group)
        return arr

    def sum(self, x: ArrayLike) -> FArray:
        """Element-wise sum over the ranks (a new array, at least 1-D)."""
        return self._reduce(x, self._dist.ReduceOp.SUM)

    def max(self, x: ArrayLike) -> FArray:
        """Element-wise maximum over the ranks (a new array, at least 1-D)."""
        return self._reduce(x, self._dist.ReduceOp.MAX)

    def total(self, x: float) -> float:
        """Sum of one scalar over the ranks."""
        return float(self.sum([x])[0])

    def totals(self, *xs: float) -> tuple[float, ...]:
        """Sums of several scalars over the ranks, in one collective."""
        return tuple(float(v) for v in self.sum(list(xs)))

    def agree(self, x: float) -> float:
        """One value for a scalar every rank computed redundantly (their maximum)."""
        return float(self.max([x])[0])

    def all_gather(self, v: ArrayLike) -> FArray:
        """Stack every rank's vector (same length everywhere), shape (world_size, k)."""
        arr = np.ascontiguousarray(np.asarray(v, dtype=np.float64).ravel())
        out = np.empty((self.world_size, arr.size))
        views = [self._torch.from_numpy(out[r]) for r in range(self.world_size)]
        self._dist.all_gather(views, self._torch.from_numpy(arr), group=self.group)
        return out

    # ------------------------------------------------------------------ task blocks
    def setup(
        self,
        n_local: int,
        n_features: int,
        settings: float,
        error: Exception | None = None,
    ) -> None:
        """Agree on the task layout; raise the same kind of error on every rank.

        One all-gather carries every rank's task count, number of features, settings
        fingerprint and whether its local checks failed, so that an error found on one
        rank stops all of them instead of leaving the others waiting in a collective.

        Raises
        ------
        ValueError or TypeError
            If a rank's local checks failed, a rank holds no task, or the ranks disagree
            on the number of features or the settings.
        """
        info = self.all_gather([n_local, n_features, settings, error is not None])
        failed = [r for r in range(self.world_size) if info[r, 3] > 0]
        if failed:
            if error is not None:
                kind = type(error) if isinstance(error, (ValueError, TypeError)) else ValueError
                message = str(error).removeprefix(f"{self.owner} ").removeprefix(f"{self.owner}: ")
                raise kind(f"{self.owner}: rank {self.rank}: {message}") from error
            raise ValueError(
                f"{self.owner}: rank(s) {failed} found invalid input (see the error raised "
                "there); every rank stops."
            )
        counts = tuple(int(c) for c in info[:, 0])
        empty = [r for r, c in enumerate(counts) if c == 0]
        if empty:
            raise ValueError(
                f"{self.owner}: rank(s) {empty} hold no task (tasks per rank: {list(counts)}); "
                "every rank needs at least one task: use at most n_tasks ranks and split the "
                "tasks with shard_tasks(n_tasks, world_size, rank)."
            )
        features = sorted({int(f) for f in info[:, 1]})
        if len(features) > 1:
            per_rank = [int(f) for f in info[:, 1]]
            raise ValueError(
                f"{self.owner}: the ranks' data have different numbers of features "
                f"{per_rank}; every task needs the same n_features."
            )
        if len({float(s) for s in info[:, 2]}) > 1:
            raise ValueError(
                f"{self.owner}: the penalty, datafit or solver settings differ between ranks; "
                "every rank must pass the same ones."
            )
        self.counts = counts
        self.offset = sum(counts[: self.rank])
        self.n_tasks = sum(counts)

    def gather_tasks(self, W_local: ArrayLike) -> FArray:
        """Every rank's task block, side by side in rank order: shape (d, n_tasks).

        The task counts are exchanged first unless :meth:`setup` has run.
        """
        W = np.asarray(W_local, dtype=np.float64)
        if W.ndim != 2:
            raise ValueError(
                f"{self.owner}: W_local must be 2-D (n_features, n_local_tasks); got shape "
                f"{W.shape}."
            )
        counts: Sequence[int] = self.counts
        if not counts:
            shapes = self.all_gather(list(W.shape))
            if len({int(s) for s in shapes[:, 0]}) > 1:
                raise ValueError(
                    f"{self.owner}: the ranks' blocks have different numbers of rows "
                    f"{[int(s) for s in shapes[:, 0]]}."
                )
            counts = [int(c) for c in shapes[:, 1]]
        if W.shape[1] != counts[self.rank]:
            raise ValueError(
                f"{self.owner}: W_local has {W.shape[1]} columns but this rank owns "
                f"{counts[self.rank]} tasks."
            )
        d, width = W.shape[0], max(counts)
        padded = np.zeros((width, d))
        padded[: W.shape[1]] = W.T
        blocks = self.all_gather(padded).reshape(self.world_size, width, d)
        return np.concatenate([blocks[r, :c] for r, c in enumerate(counts)], axis=0).T

    def own_tasks(self, W_full: FArray) -> FArray:
        """This rank's columns of a full (n_features, n_tasks) matrix (a copy)."""
        return W_full[:, self.offset : self.offset + self.counts[self.rank]].copy()

    def global_tasks(self, n_local: int) -> int:
        """Number of tasks over all ranks (known after :meth:`setup`)."""
        return self.n_tasks

    def objective(self, datafit: Any, penalty: Any, smooth: Sequence[Any]) -> Objective:
        """The objective over all ranks' tasks, seen from this rank (after :meth:`setup`).

        Raises
        ------
        ValueError
            If a penalty is not supported with sharded tasks.
        """
        return sharded_objective(self, datafit, penalty, smooth, self.owner)
