"""Penalties evaluated on task blocks: each rank holds the columns ``W[:, tasks of r]``.

Every method takes the local block and returns either the local block of the result
(``prox``, ``gradient``) or a global scalar, identical on every rank (``value``,
``dual_norm``, ``subdiff_distance``). What each penalty communicates:

* :class:`~polytask.linear.Lasso`, :class:`~polytask.linear.Ridge`: entry-wise, so the prox
  is local; values are sums of one scalar per rank.
* :class:`~polytask.linear.L21`: the row norms, from an all-reduced sum of squared row
  norms (one ``n_features`` vector).
* :class:`~polytask.linear.L1Linf`: the prox of a row is ``clip(w, -theta, theta)`` with
  ``theta`` the threshold of the projection of ``|w|`` onto an l1 ball; ``theta`` is
  found without gathering the rows by Michelot's finite algorithm, whose iterate
  ``theta = (sum_{|w_i| > theta} |w_i| - radius) / #{|w_i| > theta}`` needs only the
  all-reduced sums and counts of the entries above the current threshold (an
  ``n_features`` vector of each per round, at most ``n_tasks`` rounds, usually a few).
* :class:`~polytask.linear.TraceNorm`: the singular values couple every entry, so ``W``
  (and, for the certificates, the gradient) is all-gathered and the SVD computed on
  every rank, which keeps its own columns.
* :class:`~polytask.linear.MeanRegularized`: the mean task ``w_bar``, from an
  all-reduced sum of the columns.

References
----------
C. Michelot. A finite algorithm for finding the projection of a point onto the
canonical simplex of R^n. Journal of Optimization Theory and Applications 50(1), 1986.
L. Condat. Fast projection onto the simplex and the l1 ball. Mathematical Programming
158, 2016.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from polytask._typing import FloatArray
from polytask.linear._distributed_comm import TaskComm
from polytask.linear._objective import ZeroPenalty
from polytask.linear._penalties_base import TIE_RTOL
from polytask.linear._penalties_norms import L21, L1Linf, Lasso, TraceNorm
from polytask.linear._penalties_smooth import MeanRegularized, Ridge
from polytask.linear._prox import singular_value_threshold, soft_threshold

__all__ = ["SUPPORTED_PENALTIES", "ShardedPenalty", "shard_penalty", "sharded_simplex_threshold"]


def sharded_simplex_threshold(
    A: FloatArray,
    radius: float,
    comm: TaskComm,
    mask: NDArray[np.bool_] | None = None,
    ball: bool = False,
) -> FloatArray:
    """Per-row ``theta`` with ``sum_i max(A_i - theta, 0) = radius``, rows split by columns.

    Michelot's algorithm: start from the mean excess over all (masked) entries of the row,
    keep the entries above the threshold and recompute it from them until the kept set
    stops changing; ``theta`` never decreases and the final value is exact. Rows without
    any masked entry get 0. With ``ball=True`` (``A >= 0``), the threshold of the
    projection onto the l1 ball: 0 for the rows already inside it. Every rank must call
    it with the same number of rows.

    Parameters
    ----------
    A : ndarray of shape (n_rows, n_local_columns)
        This rank's columns.
    radius : float
        ``radius > 0``.
    comm : TaskComm
    mask : ndarray of bool, same shape as ``A``, optional
        Entries taking part (all by default).
    ball : bool, default=False
        Return 0 for the rows whose sum is at most ``radius``.

    Returns
    -------
    ndarray of shape (n_rows,), identical on every rank
    """
    valid = np.ones(A.shape, dtype=bool) if mask is None else mask.astype(bool)
    kept = valid
    stats = comm.sum(np.concatenate([np.where(kept, A, 0.0).sum(axis=1), kept.sum(axis=1)]))
    n_rows = A.shape[0]
    inside = stats[:n_rows] <= radius if ball else np.zeros(n_rows, dtype=bool)
    theta = np.zeros(n_rows)
    for _ in range(comm.n_tasks + 2):
        sums, counts = stats[:n_rows], stats[n_rows:]
        live = counts > 0
        theta = np.where(live, (sums - radius) / np.where(live, counts, 1.0), 0.0)
        kept = valid & (A > theta[:, None])
        new = comm.sum(np.concatenate([np.where(kept, A, 0.0).sum(axis=1), kept.sum(axis=1)]))
        if np.array_equal(new[n_rows:], counts) or not np.any(new[n_rows:] > 0):
            break
        stats = new
    return np.where(inside, 0.0, theta)


def _row_sq(A: FloatArray) -> FloatArray:
    return np.einsum("ij,ij->i", A, A)


class ShardedPenalty:
    """A supported penalty on task blocks (see the module docstring)."""

    is_norm = False
    smooth = False

    def __init__(self, penalty: Any, comm: TaskComm) -> None:
        self.penalty = penalty
        self.comm = comm
        self.alpha = float(getattr(penalty, "alpha", 0.0))

    def value(self, W: FloatArray) -> float:
        raise NotImplementedError

    def prox(self, W: FloatArray, step: float) -> FloatArray:
        raise NotImplementedError

    def dual_norm(self, G: FloatArray) -> float:
        raise NotImplementedError

    def value_and_dual_norm(self, W: FloatArray, G: FloatArray) -> tuple[float, float]:
        """``(value(W), dual_norm(G))``, sharing collectives where the penalty can."""
        return self.value(W), self.dual_norm(G)

    def subdiff_distance(self, W: FloatArray, G: FloatArray) -> float:
        """Frobenius distance of ``-G`` to the subdifferential at ``W`` (all tasks)."""
        local = float(self.penalty.subdiff_distance(W, G))
        return float(np.sqrt(self.comm.total(local * local)))

    def gradient(self, W: FloatArray) -> FloatArray:
        raise NotImplementedError

    def lipschitz(self, n_features: int, n_tasks: int) -> float:
        return float(self.penalty.lipschitz(n_features, n_tasks))


class _Zero(ShardedPenalty):
    def value(self, W: FloatArray) -> float:
        return 0.0

    def prox(self, W: FloatArray, step: float) -> FloatArray:
        return W.copy()


class _Lasso(ShardedPenalty):
    is_norm = True

    def value(self, W: FloatArray) -> float:
        return self.alpha * self.comm.total(float(np.abs(W).sum()))

    def prox(self, W: FloatArray, step: float) -> FloatArray:
        return soft_threshold(W, step * self.alpha)

    def dual_norm(self, G: FloatArray) -> float:
        return float(self.comm.max([np.abs(G).max(initial=0.0)])[0])

    def value_and_dual_norm(self, W: FloatArray, G: FloatArray) -> tuple[float, float]:
        total, top = self.comm.sum_max([np.abs(W).sum()], [np.abs(G).max(initial=0.0)])
        return self.alpha * float(total[0]), float(top[0])


class _L21(ShardedPenalty):
    is_norm = True

    def _row_norms(self, A: FloatArray) -> FloatArray:
        return np.sqrt(self.comm.sum(_row_sq(A)))

    def value(self, W: FloatArray) -> float:
        return self.alpha * float(self._row_norms(W).sum())

    def prox(self, W: FloatArray, step: float) -> FloatArray:
        norms = self._row_norms(W)
        tau = step * self.alpha
        scale = np.zeros_like(norms)
        keep = norms > tau
        scale[keep] = 1.0 - tau / norms[keep]
        return W * scale[:, None]

    def dual_norm(self, G: FloatArray) -> float:
        return float(self._row_norms(G).max(initial=0.0))

    def value_and_dual_norm(self, W: FloatArray, G: FloatArray) -> tuple[float, float]:
        norms = np.sqrt(self.comm.sum(np.concatenate([_row_sq(W), _row_sq(G)])))
        d = W.shape[0]
        return self.alpha * float(norms[:d].sum()), float(norms[d:].max(initial=0.0))

    def subdiff_distance(self, W: FloatArray, G: FloatArray) -> float:
        a, A = self.alpha, -G
        sq = self.comm.sum(np.concatenate([_row_sq(W), _row_sq(A)]))
        d = W.shape[0]
        w_norms, a_norms = np.sqrt(sq[:d]), np.sqrt(sq[d:])
        nz = w_norms > 0
        on = float(np.sum((A[nz] - a * W[nz] / w_norms[nz, None]) ** 2))
        off = float(np.sum(np.maximum(a_norms[~nz] - a, 0.0) ** 2))
        return float(np.sqrt(max(self.comm.total(on) + off, 0.0)))


class _L1Linf(ShardedPenalty):
    is_norm = True

    def _ball_threshold(self, A: FloatArray, radius: float) -> FloatArray:
        """Threshold of the projection of each row onto the l1 ball (0 inside)."""
        return sharded_simplex_threshold(np.abs(A), radius, self.comm, ball=True)

    def value(self, W: FloatArray) -> float:
        return self.alpha * float(self.comm.max(np.abs(W).max(axis=1, initial=0.0)).sum())

    def prox(self, W: FloatArray, step: float) -> FloatArray:
        tau = step * self.alpha
        if tau == 0:
            return W.copy()
        theta = self._ball_threshold(W, tau)[:, None]
        return np.clip(W, -theta, theta)

    def dual_norm(self, G: FloatArray) -> float:
        return float(self.comm.sum(np.abs(G).sum(axis=1)).max(initial=0.0))

    def value_and_dual_norm(self, W: FloatArray, G: FloatArray) -> tuple[float, float]:
        sums, tops = self.comm.sum_max(np.abs(G).sum(axis=1), np.abs(W).max(axis=1, initial=0.0))
        return self.alpha * float(tops.sum()), float(sums.max(initial=0.0))

    def subdiff_distance(self, W: FloatArray, G: FloatArray) -> float:
        # Same case split as L1Linf.subdiff_distance, with the row statistics reduced.
        a, A = self.alpha, -G
        absW = np.abs(W)
        top = self.comm.max(absW.max(axis=1, initial=0.0))
        zero = top == 0
        total = 0.0
        if np.any(zero):
            Az = A[zero]
            if a > 0:
                theta = self._ball_threshold(Az, a)[:, None]
                total += float(np.sum(np.clip(Az, -theta, theta) ** 2))
            else:
                total += float(np.sum(Az**2))
        if np.any(~zero):
            Wn, An = W[~zero], A[~zero]
            active = absW[~zero] >= (1.0 - TIE_RTOL) * top[~zero, None]
            flipped = np.where(active, np.sign(Wn) * An, 0.0)
            total += float(np.sum(np.where(active, 0.0, An) ** 2))
            if a > 0:
                theta = sharded_simplex_threshold(flipped, a, self.comm, mask=active)[:, None]
                proj = np.where(active, np.maximum(flipped - theta, 0.0), 0.0)
            else:
                proj = np.zeros_like(flipped)
            total += float(np.sum((flipped - proj) ** 2))
        return float(np.sqrt(max(self.comm.total(total), 0.0)))


class _Trace(ShardedPenalty):
    is_norm = True

    def _mine(self, full: FloatArray) -> FloatArray:
        start = self.comm.offset
        return full[:, start : start + self.comm.counts[self.comm.rank]]

    def value(self, W: FloatArray) -> float:
        return self.comm.agree(float(self.penalty.value(self.comm.gather_tasks(W))))

    def prox(self, W: FloatArray, step: float) -> FloatArray:
        full = self.comm.gather_tasks(W)
        return self._mine(singular_value_threshold(full, step * self.alpha)).copy()

    def dual_norm(self, G: FloatArray) -> float:
        return self.comm.agree(float(self.penalty.dual_norm(self.comm.gather_tasks(G))))

    def value_and_dual_norm(self, W: FloatArray, G: FloatArray) -> tuple[float, float]:
        both = self.comm.gather_tasks(np.concatenate([W, G], axis=0))
        d = W.shape[0]
        local = [float(self.penalty.value(both[:d])), float(self.penalty.dual_norm(both[d:]))]
        value, dual = self.comm.max(local)
        return float(value), float(dual)

    def subdiff_distance(self, W: FloatArray, G: FloatArray) -> float:
        both = self.comm.gather_tasks(np.concatenate([W, G], axis=0))
        d = W.shape[0]
        return self.comm.agree(float(self.penalty.subdiff_distance(both[:d], both[d:])))


class _Ridge(ShardedPenalty):
    smooth = True

    def value(self, W: FloatArray) -> float:
        return self.comm.total(float(self.penalty.value(W)))

    def prox(self, W: FloatArray, step: float) -> FloatArray:
        return np.asarray(self.penalty.prox(W, step), dtype=np.float64)

    def gradient(self, W: FloatArray) -> FloatArray:
        return np.asarray(self.penalty.gradient(W), dtype=np.float64)


class _MeanRegularized(ShardedPenalty):
    smooth = True

    def _mean(self, W: FloatArray) -> FloatArray:
        return self.comm.sum(W.sum(axis=1)) / self.comm.n_tasks

    def value(self, W: FloatArray) -> float:
        centred = W - self._mean(W)[:, None]
        sq = self.comm.sum([np.sum(centred**2), np.sum(W**2)])
        return float(self.penalty.alpha) * float(sq[0]) + float(self.penalty.beta) * float(sq[1])

    def gradient(self, W: FloatArray) -> FloatArray:
        a, b = float(self.penalty.alpha), float(self.penalty.beta)
        return 2.0 * a * (W - self._mean(W)[:, None]) + 2.0 * b * W

    def prox(self, W: FloatArray, step: float) -> FloatArray:
        a, b = float(self.penalty.alpha), float(self.penalty.beta)
        mean = self._mean(W)[:, None]
        return mean / (1.0 + 2.0 * step * b) + (W - mean) / (1.0 + 2.0 * step * (a + b))

    def subdiff_distance(self, W: FloatArray, G: FloatArray) -> float:
        R = G + self.gradient(W)
        return float(np.sqrt(self.comm.total(float(np.vdot(R, R)))))


_ADAPTERS: dict[type, type[ShardedPenalty]] = {
    ZeroPenalty: _Zero,
    Lasso: _Lasso,
    L21: _L21,
    L1Linf: _L1Linf,
    TraceNorm: _Trace,
    Ridge: _Ridge,
    MeanRegularized: _MeanRegularized,
}

SUPPORTED_PENALTIES: tuple[str, ...] = tuple(c.__name__ for c in _ADAPTERS if c is not ZeroPenalty)


def shard_penalty(penalty: Any, comm: TaskComm, owner: str) -> ShardedPenalty:
    """The task-block version of ``penalty``.

    Raises
    ------
    ValueError
        If the penalty's class is not supported (subclasses are not, since they may
        change the maths).
    """
    adapter = _ADAPTERS.get(type(penalty))
    if adapter is None:
        raise ValueError(
            f"{owner}: penalty {type(penalty).__name__} is not supported with tasks sharded "
            f"over ranks; expected one of {', '.join(SUPPORTED_PENALTIES)} (or a list of "
            "them with at most one non-smooth)."
        )
    if hasattr(penalty, "validate"):
        penalty.validate()
    return adapter(penalty, comm)
