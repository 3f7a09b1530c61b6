"""Task samplers and shuffled index streams for the training loop.

When the tasks come with their own data sets of different sizes (the per-task form of
:class:`~polytask.data.MultiTaskData`), a training step must decide *which task* a batch
(or each example of a batch) comes from. A :class:`TaskSampler` makes that choice from
one of four schedules; an :class:`IndexStream` then hands out the task's examples in a
reshuffled, endless order. All randomness comes from a ``torch.Generator`` passed at
every draw, and every piece of state is a tensor, so a checkpoint restores the exact
sequence of draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

Sampling = Literal["proportional", "uniform", "temperature", "round_robin"]
SAMPLING_STRATEGIES: tuple[str, ...] = get_args(Sampling)


def _check_sizes(sizes: Sequence[int]) -> NDArray[np.float64]:
    arr = np.asarray(list(sizes), dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"sizes must be a non-empty sequence of task sizes, got {list(sizes)}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 1) or np.any(arr != np.round(arr)):
        raise ValueError(f"sizes must be integers >= 1 (examples per task), got {list(sizes)}")
    return arr


def task_probabilities(
    sizes: Sequence[int], strategy: str = "proportional", temperature: float = 2.0
) -> NDArray[np.float64]:
    r"""Probability of drawing each task under a sampling strategy.

    With :math:`n_t` examples for task :math:`t`,

    - ``"proportional"``: :math:`p_t = n_t / \sum_s n_s` (examples-proportional mixing);
    - ``"uniform"``: :math:`p_t = 1/T`;
    - ``"temperature"``: :math:`p_t \propto n_t^{1/\tau}` (:math:`\tau = 1` is
      proportional, :math:`\tau \to \infty` uniform);
    - ``"round_robin"``: tasks in turn, so the long-run frequency is :math:`1/T`.

    Parameters
    ----------
    sizes : sequence of int of length n_tasks
        Number of training examples of each task (>= 1).
    strategy : {"proportional", "uniform", "temperature", "round_robin"}
        The sampling strategy.
    temperature : float, default=2.0
        :math:`\tau > 0`, used by ``"temperature"`` only.

    Returns
    -------
    ndarray of shape (n_tasks,)
        Non-negative probabilities summing to 1.

    Raises
    ------
    ValueError
        If ``sizes`` holds a value < 1, ``strategy`` is unknown or ``temperature`` is
        not a finite positive number.

    References
    ----------
    .. [1] N. Arivazhagan et al., "Massively multilingual neural machine translation in
       the wild: findings and challenges", arXiv:1907.05019, 2019 (temperature sampling).
    .. [2] C. Raffel et al., "Exploring the limits of transfer learning with a unified
       text-to-text transformer", JMLR 21, 2020 (examples-proportional mixing).

    Examples
    --------
    >>> task_probabilities([100, 25], "proportional").tolist()
    [0.8, 0.2]
    >>> task_probabilities([100, 25], "temperature", temperature=2.0).round(4).tolist()
    [0.6667, 0.3333]
    """
    n = _check_sizes(sizes)
    if strategy not in SAMPLING_STRATEGIES:
        raise ValueError(f"sampling must be one of {SAMPLING_STRATEGIES}, got {strategy!r}")
    if strategy == "proportional":
        return n / n.sum()
    if strategy in ("uniform", "round_robin"):
        return np.full(n.size, 1.0 / n.size)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    # n^(1/tau) computed in log space, normalised by the largest term (no overflow).
    logits = np.log(n) / float(temperature)
    w = np.exp(logits - logits.max())
    return w / w.sum()


class TaskSampler:
    """Draw task indices from a sampling strategy, with tensor-only state.

    Parameters
    ----------
    sizes : sequence of int of length n_tasks
        Number of training examples of each task.
    strategy : {"proportional", "uniform", "temperature", "round_robin"}, default="proportional"
        See :func:`task_probabilities`. ``"round_robin"`` is deterministic: task
        ``0, 1, ..., T-1, 0, 1, ...``.
    temperature : float, default=2.0
        Used by ``"temperature"`` only.

    Raises
    ------
    ValueError
        As in :func:`task_probabilities`.

    Examples
    --------
    >>> import torch
    >>> sampler = TaskSampler([30, 10], "round_robin")
    >>> sampler.sample(5, torch.Generator().manual_seed(0)).tolist()
    [0, 1, 0, 1, 0]
    >>> sampler = TaskSampler([30, 10], "proportional")
    >>> draws = sampler.sample(4000, torch.Generator().manual_seed(0))
    >>> round(float((draws == 0).float().mean()), 1)
    0.8
    """

    def __init__(
        self, sizes: Sequence[int], strategy: str = "proportional", temperature: float = 2.0
    ) -> None:
        self.strategy = strategy
        self.probabilities = task_probabilities(sizes, strategy, temperature)
        self._probs = torch.as_tensor(self.probabilities, dtype=torch.float64)
        self._cursor = 0

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return int(self.probabilities.size)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Draw ``n`` task indices.

        Parameters
        ----------
        n : int
            Number of draws (>= 1).
        generator : torch.Generator
            The only source of randomness (unused by ``"round_robin"``).

        Returns
        -------
        Tensor of shape (n,)
            Task indices (int64) in ``[0, n_tasks)``.
        """
        if self.strategy == "round_robin":
            out = (torch.arange(n, dtype=torch.long) + self._cursor) % self.n_tasks
            self._cursor = (self._cursor + n) % self.n_tasks
            return out
        return torch.multinomial(self._probs, n, replacement=True, generator=generator)

    def state_dict(self) -> dict[str, Tensor]:
        """The round-robin cursor, as a tensor (the rest is fixed by the arguments)."""
        return {"cursor": torch.tensor(self._cursor, dtype=torch.long)}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Restore the state saved by :meth:`state_dict`."""
        self._cursor = int(state["cursor"]) % self.n_tasks


class IndexStream:
    """An endless stream of indices ``0..n-1``, reshuffled after every full pass.

    Parameters
    ----------
    n : int
        Number of items (>= 1).
    shuffle : bool, default=True
        Reshuffle at every pass; ``False`` yields ``0, 1, ..., n-1`` repeatedly.

    Examples
    --------
    >>> import torch
    >>> stream = IndexStream(3)
    >>> g = torch.Generator().manual_seed(0)
    >>> first, second = stream.take(3, g), stream.take(3, g)
    >>> sorted(first.tolist()), sorted(second.tolist())
    ([0, 1, 2], [0, 1, 2])
    """

    def __init__(self, n: int, shuffle: bool = True) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        self.n = n
        self.shuffle = shuffle
        self._order = torch.arange(n)
        self._cursor = n  # exhausted: the first take() draws a fresh order

    def take(self, k: int, generator: torch.Generator) -> Tensor:
        """The next ``k`` indices (wrapping into a new pass when one ends)."""
        parts: list[Tensor] = []
        need = k
        while need > 0:
            if self._cursor >= self.n:
                self._order = (
                    torch.randperm(self.n, generator=generator) if self.shuffle
                    else torch.arange(self.n)
                )
                self._cursor = 0
            chunk = self._order[self._cursor : self._cursor + need]
            parts.append(chunk)
            self._cursor += int(chunk.numel())
            need -= int(chunk.numel())
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.long)

    def state_dict(self) -> dict[str, Tensor]:
        """Current order and position, as tensors."""
        return {"order": self._order.clone(), "cursor": torch.tensor(self._cursor)}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Restore the state saved by :meth:`state_dict`."""
        order = state["order"]
        if order.numel() != self.n:
            raise ValueError(
                f"stream state holds {order.numel()} indices but the data has {self.n} items"
            )
        self._order = order.clone().long()
        self._cursor = int(state["cursor"])


def shard(indices: Tensor, rank: int, world_size: int) -> Tensor:
    """This rank's contiguous share of a global batch of indices.

    Every rank draws the same global batch (same generator, same seed) and keeps one
    of ``world_size`` nearly equal contiguous chunks, so the ranks together see exactly
    the batch a single process would.

    Parameters
    ----------
    indices : Tensor of shape (batch,)
        The global batch.
    rank, world_size : int
        This process's rank and the number of processes.

    Returns
    -------
    Tensor
        The chunk of ``indices`` for ``rank`` (possibly empty).

    Examples
    --------
    >>> import torch
    >>> shard(torch.arange(5), 0, 2).tolist(), shard(torch.arange(5), 1, 2).tolist()
    ([0, 1, 2], [3, 4])
    """
    if world_size == 1:
        return indices
    return torch.tensor_split(indices, world_size)[rank]


__all__ = [
    "SAMPLING_STRATEGIES",
    "IndexStream",
    "Sampling",
    "TaskSampler",
    "shard",
    "task_probabilities",
]
