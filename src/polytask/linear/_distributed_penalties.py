"""The problem seen from one rank: penalties and datafit bound to a :class:`TaskComm`.

Every rank holds the columns ``W[:, tasks of r]`` and a datafit initialised on its own
tasks. Nothing here computes a penalty: the penalties' own kernels take a communicator
(:mod:`polytask.linear._comm`), and :class:`ShardedPenalty` only hands them this
rank's communicator. What each penalty then exchanges:

* :class:`~polytask.linear.Lasso`, :class:`~polytask.linear.Ridge`: entry-wise, so the prox
  is local; values are sums of one scalar per rank.
* :class:`~polytask.linear.L21`: the row norms, from an all-reduced sum of squared row
  norms (one ``n_features`` vector).
* :class:`~polytask.linear.L1Linf`: the threshold of each row's l1-ball projection, by
  Michelot's algorithm on all-reduced sums and counts (a few ``n_features`` vectors).
* :class:`~polytask.linear.TraceNorm`: the singular values couple every entry, so ``W``
  (and, for the certificates, the gradient) is all-gathered and the SVD computed on
  every rank, which keeps its own columns.
* :class:`~polytask.linear.MeanRegularized`: the mean task ``w_bar``, from an
  all-reduced sum of the columns.

The datafit is a sum over tasks: its state, gradient and Bregman divergence are local,
and :class:`ShardedDatafit` sums its value and dual value over the ranks and takes the
largest Lipschitz constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from polytask._typing import FloatArray
from polytask.linear._comm import Comm, frobenius
from polytask.linear._objective import Objective, ZeroPenalty
from polytask.linear._penalties_norms import L21, L1Linf, Lasso, TraceNorm
from polytask.linear._penalties_smooth import MeanRegularized, Ridge

__all__ = [
    "SUPPORTED_PENALTIES",
    "ShardedDatafit",
    "ShardedPenalty",
    "shard_penalty",
    "sharded_objective",
]

_SUPPORTED: tuple[type, ...] = (Lasso, L21, L1Linf, TraceNorm, Ridge, MeanRegularized)
SUPPORTED_PENALTIES: tuple[str, ...] = tuple(c.__name__ for c in _SUPPORTED)


class ShardedPenalty:
    """A supported penalty on this rank's task block: its kernels with ``comm``.

    ``prox`` and ``gradient`` return this rank's block, the other methods global
    scalars (identical on every rank).
    """

    n_blocks = 1

    def __init__(self, penalty: Any, comm: Comm) -> None:
        self.penalty = penalty
        self.comm = comm
        self.smooth = bool(penalty.smooth)
        self.is_norm = bool(penalty.is_norm)
        self.alpha = float(getattr(penalty, "alpha", 0.0))

    def validate(self) -> None:
        """The penalty's own checks."""
        self.penalty.validate()

    def value(self, W: FloatArray) -> float:
        """Value over all tasks."""
        return float(self.penalty._value_comm(W, self.comm))

    def prox(self, W: FloatArray, step: float) -> FloatArray:
        """This rank's block of the prox of the whole matrix."""
        return np.asarray(self.penalty._prox_comm(W, step, self.comm), dtype=np.float64)

    def subdiff_distance(self, W: FloatArray, G: FloatArray) -> float:
        """Frobenius distance of ``-G`` to the subdifferential at ``W`` (all tasks)."""
        return float(self.penalty._subdiff_comm(W, G, self.comm))

    def dual_norm(self, G: FloatArray) -> float:
        """Dual norm of the whole matrix (norm penalties)."""
        return float(self.penalty._dual_norm_comm(G, self.comm))

    def gradient(self, W: FloatArray) -> FloatArray:
        """This rank's block of the gradient (smooth penalties)."""
        return np.asarray(self.penalty._gradient_comm(W, self.comm), dtype=np.float64)

    def lipschitz(self, n_features: int, n_tasks: int) -> float:
        """Lipschitz constant of the gradient over all tasks (``n_tasks`` is local)."""
        return float(self.penalty.lipschitz(n_features, self.comm.global_tasks(n_tasks)))


class _ShardedZero(ShardedPenalty):
    """:class:`ZeroPenalty` on a task block (no kernels of its own)."""

    def value(self, W: FloatArray) -> float:
        return 0.0

    def prox(self, W: FloatArray, step: float) -> FloatArray:
        return W.copy()

    def subdiff_distance(self, W: FloatArray, G: FloatArray) -> float:
        return frobenius(G, self.comm)


def shard_penalty(penalty: Any, comm: Comm, owner: str) -> ShardedPenalty:
    """The task-block version of ``penalty`` (itself if it already is one).

    Raises
    ------
    ValueError
        If the penalty's class is not supported (subclasses are not, since they may
        change the maths).
    """
    if isinstance(penalty, ShardedPenalty):
        return penalty
    if type(penalty) is ZeroPenalty:
        return _ShardedZero(penalty, comm)
    if type(penalty) not in _SUPPORTED:
        raise ValueError(
            f"{owner}: penalty {type(penalty).__name__} is not supported with tasks sharded "
            f"over ranks; expected one of {', '.join(SUPPORTED_PENALTIES)} (or a list of "
            "them with at most one non-smooth)."
        )
    penalty.validate()
    return ShardedPenalty(penalty, comm)


class ShardedDatafit:
    """This rank's datafit, with its value, dual value and Lipschitz constant global.

    Everything else (state, gradient, Bregman divergence, shapes) is this rank's own;
    FISTA reduces the Bregman divergence with its other per-step scalars.
    """

    def __init__(self, datafit: Any, comm: Comm) -> None:
        self._datafit = datafit
        self._comm = comm

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._datafit, name)  # AttributeError when the datafit lacks it
        if name == "dual_value":

            def dual_value(W: FloatArray, state: Any, scale: float) -> float:
                return self._comm.total(float(attr(W, state, scale)))

            return dual_value
        return attr

    def value(self, W: FloatArray, state: Any = None) -> float:
        """Datafit value over all tasks."""
        return self._comm.total(float(self._datafit.value(W, state)))

    def lipschitz(self) -> float:
        """Lipschitz constant over all tasks: the largest of the ranks' (block diagonal)."""
        return float(self._comm.max([float(self._datafit.lipschitz())])[0])


def sharded_objective(
    comm: Comm, datafit: Any, penalty: Any, smooth: Sequence[Any], owner: str
) -> Objective:
    """The objective over all ranks' tasks, as FISTA sees it from this rank.

    Raises
    ------
    ValueError
        If a penalty is not supported.
    """
    obj = Objective(
        ShardedDatafit(datafit, comm),
        shard_penalty(penalty, comm, owner),
        [shard_penalty(p, comm, owner) for p in smooth],
    )
    # The stopping criterion is relative to the gradient at 0 over all tasks.
    zeros = np.zeros((obj.d, obj.T))
    obj.grad0_norm = frobenius(obj.grad(zeros, datafit.state(zeros)), comm) or 1.0
    return obj
