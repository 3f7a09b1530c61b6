"""Communicators: how the penalty kernels and FISTA reduce over the tasks' columns.

Every global quantity of a linear multi-task problem (a penalty value, a row norm of
``W``, a dual norm, the sums that decide a FISTA step) is a reduction over the tasks,
the columns of ``W`` (n_features, n_tasks). The penalty kernels and the FISTA iteration
are written once against the small :class:`Comm` interface:

* :class:`LocalComm` (the default): every task lives in this process and every reduction
  is the identity, so the kernels compute exactly what a plain NumPy implementation
  would;
* ``TaskComm`` (:mod:`polytask.linear.distributed`): each ``torch.distributed`` rank
  holds a block of columns and the reductions are all-reduces.

Row thresholds of l1-ball projections are the one kernel whose algorithm depends on the
communicator: with whole rows in the process the exact sort-based rule of Duchi et al.
is used; with rows split by columns Michelot's finite algorithm finds the same threshold
from reduced sums and counts only.

References
----------
J. Duchi, S. Shalev-Shwartz, Y. Singer and T. Chandra. Efficient projections onto the
l1-ball for learning in high dimensions. ICML 2008.
C. Michelot. A finite algorithm for finding the projection of a point onto the
canonical simplex of R^n. Journal of Optimization Theory and Applications 50(1), 1986.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from polytask._typing import FloatArray
from polytask.linear._objective import Objective
from polytask.linear._prox import _l1_ball_threshold, _simplex_threshold

__all__ = [
    "Comm",
    "LocalComm",
    "ball_threshold",
    "frobenius",
    "row_norms",
    "simplex_threshold",
]


class Comm(Protocol):
    """What the kernels need from the processes that share the tasks' columns.

    Every process must make the same calls in the same order (a reduction is matched by
    order); the results of a reduction are identical in every process.
    """

    world_size: int

    def sum(self, x: ArrayLike) -> FloatArray:
        """Element-wise sum over the processes (at least 1-D)."""
        ...

    def max(self, x: ArrayLike) -> FloatArray:
        """Element-wise maximum over the processes (at least 1-D)."""
        ...

    def total(self, x: float) -> float:
        """Sum of one scalar over the processes."""
        ...

    def totals(self, *xs: float) -> tuple[float, ...]:
        """Sums of several scalars over the processes, in one reduction."""
        ...

    def agree(self, x: float) -> float:
        """One value for a scalar every process computed redundantly."""
        ...

    def gather_tasks(self, W_local: ArrayLike) -> FloatArray:
        """All columns, in task order: shape (n_features, n_tasks)."""
        ...

    def own_tasks(self, W_full: FloatArray) -> FloatArray:
        """This process's columns of a full (n_features, n_tasks) matrix."""
        ...

    def global_tasks(self, n_local: int) -> int:
        """Number of tasks over all processes, given this process's count."""
        ...

    def objective(self, datafit: Any, penalty: Any, smooth: Sequence[Any]) -> Objective:
        """The objective FISTA minimises, with its scalars reduced over the processes."""
        ...


class LocalComm:
    """All tasks in this process: every reduction is the identity.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear._comm import LocalComm, row_norms
    >>> comm = LocalComm()
    >>> comm.total(2.5), comm.global_tasks(3)
    (2.5, 3)
    >>> row_norms(np.array([[3.0, 4.0], [0.0, 1.0]]), comm).tolist()
    [5.0, 1.0]
    """

    world_size = 1

    def sum(self, x: ArrayLike) -> FloatArray:
        """``x`` itself, as an at least 1-D float array."""
        return _as_vector(x)

    def max(self, x: ArrayLike) -> FloatArray:
        """``x`` itself, as an at least 1-D float array."""
        return _as_vector(x)

    def total(self, x: float) -> float:
        """``x``."""
        return float(x)

    def totals(self, *xs: float) -> tuple[float, ...]:
        """``xs``."""
        return xs

    def agree(self, x: float) -> float:
        """``x``."""
        return float(x)

    def gather_tasks(self, W_local: ArrayLike) -> FloatArray:
        """``W_local`` (it already holds every task)."""
        return np.asarray(W_local, dtype=np.float64)

    def own_tasks(self, W_full: FloatArray) -> FloatArray:
        """``W_full`` (this process owns every task)."""
        return W_full

    def global_tasks(self, n_local: int) -> int:
        """``n_local``."""
        return int(n_local)

    def objective(self, datafit: Any, penalty: Any, smooth: Sequence[Any]) -> Objective:
        """The plain :class:`~polytask.linear._objective.Objective`."""
        return Objective(datafit, penalty, smooth)


def _as_vector(x: ArrayLike) -> FloatArray:
    # The kernels mostly pass float vectors already: return those as they are.
    if type(x) is np.ndarray and x.dtype == np.float64 and x.ndim >= 1:
        return x
    return np.atleast_1d(np.asarray(x, dtype=np.float64))


def frobenius(A: FloatArray, comm: Comm) -> float:
    """Frobenius norm of the matrix whose column blocks the processes hold."""
    return float(np.sqrt(comm.total(float(np.vdot(A, A)))))


def row_norms(A: FloatArray, comm: Comm) -> FloatArray:
    """Euclidean norms of the full rows of ``A`` (n_rows, n_local_columns): (n_rows,)."""
    return np.sqrt(comm.sum(np.einsum("ij,ij->i", A, A)))


def simplex_threshold(
    A: FloatArray, radius: float, comm: Comm, mask: NDArray[np.bool_] | None = None
) -> FloatArray:
    """Per-row ``theta`` with ``sum_i max(A_i - theta, 0) = radius`` over the full rows.

    Parameters
    ----------
    A : ndarray of shape (n_rows, n_local_columns)
        This process's columns.
    radius : float
        ``radius > 0``.
    comm : Comm
    mask : ndarray of bool, same shape as ``A``, optional
        Entries taking part (all by default).

    Returns
    -------
    ndarray of shape (n_rows,)
        Identical in every process; 0 for the rows without any masked entry.
    """
    if comm.world_size == 1:
        theta = _simplex_threshold(A, radius, mask=cast("FloatArray | None", mask))
        return theta if mask is None else np.where(mask.any(axis=1), theta, 0.0)
    return _michelot(A, radius, comm, mask, ball=False)


def ball_threshold(A: FloatArray, radius: float, comm: Comm) -> FloatArray:
    """Per-row soft threshold of the projection of the full rows onto the l1 ball.

    0 for the rows already inside the ball of radius ``radius > 0``.

    Parameters
    ----------
    A : ndarray of shape (n_rows, n_local_columns)
    radius : float
    comm : Comm

    Returns
    -------
    ndarray of shape (n_rows,), identical in every process
    """
    if comm.world_size == 1:
        return _l1_ball_threshold(A, radius)
    return _michelot(np.abs(A), radius, comm, None, ball=True)


def _michelot(
    A: FloatArray,
    radius: float,
    comm: Comm,
    mask: NDArray[np.bool_] | None,
    ball: bool,
) -> FloatArray:
    """Michelot's algorithm on rows split by columns.

    Start from the mean excess over all (masked) entries of the row, keep the entries
    above the threshold and recompute it from them until the kept set stops changing:
    ``theta`` never decreases and the final value is exact. Each round reduces one
    vector of sums and one of counts; there are at most ``n_tasks`` rounds, usually a
    few. With ``ball=True`` (``A >= 0``) the rows whose sum is at most ``radius`` get 0.
    """
    valid = np.ones(A.shape, dtype=bool) if mask is None else mask.astype(bool)
    n_rows = A.shape[0]

    def stats(kept: NDArray[np.bool_]) -> FloatArray:
        return comm.sum(np.concatenate([np.where(kept, A, 0.0).sum(axis=1), kept.sum(axis=1)]))

    current = stats(valid)
    inside = current[:n_rows] <= radius if ball else np.zeros(n_rows, dtype=bool)
    theta = np.zeros(n_rows)
    for _ in range(comm.global_tasks(A.shape[1]) + 2):
        sums, counts = current[:n_rows], current[n_rows:]
        live = counts > 0
        theta = np.where(live, (sums - radius) / np.where(live, counts, 1.0), 0.0)
        new = stats(valid & (A > theta[:, None]))
        if np.array_equal(new[n_rows:], counts) or not np.any(new[n_rows:] > 0):
            break
        current = new
    return np.where(inside, 0.0, theta)
