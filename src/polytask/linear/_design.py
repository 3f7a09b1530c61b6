"""Validated problem data for the linear multi-task datafits.

Two forms are supported:

* a **shared design**: one matrix ``X`` of shape ``(n_samples, n_features)`` seen by
  every task and a label matrix ``Y`` of shape ``(n_samples, n_tasks)`` in which ``NaN``
  marks a missing label (the sample is then ignored for that task only);
* **per-task designs**: one pair ``(X_t, y_t)`` per task, of shapes
  ``(n_samples_t, n_features)`` and ``(n_samples_t,)``.

The class only checks and stores the arrays and offers the two linear maps every
datafit needs, ``W -> predictions`` and ``residuals -> X^T residuals``, each in the
cheapest form for the data at hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

__all__ = ["TaskDesign"]

# A row-sparse product X[:, S] @ W[S] beats X @ W below this fraction of nonzero rows.
_ROW_SPARSE_FRACTION = 0.5


def _as_float_matrix(X: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; features must be finite.")
    return arr


class TaskDesign:
    """Problem data of a linear multi-task model, in shared or per-task form.

    Build it with :meth:`shared` or :meth:`per_task`; the constructor is private.

    Attributes
    ----------
    is_shared : bool
        True for a shared design.
    n_features : int
        Number of features ``d``.
    n_tasks : int
        Number of tasks ``T``.
    n_samples : ndarray of shape (n_tasks,)
        Number of observed labels of every task.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import TaskDesign
    >>> X = np.arange(12.0).reshape(4, 3)
    >>> Y = np.array([[1.0, np.nan], [0.0, 1.0], [2.0, 2.0], [1.0, 0.0]])
    >>> design = TaskDesign.shared(X, Y)
    >>> design.n_tasks, design.n_samples.tolist()
    (2, [4, 3])
    """

    is_shared: bool
    n_features: int
    n_tasks: int
    n_samples: NDArray[np.int64]

    def __init__(self) -> None:
        self.X: NDArray[np.float64] | None = None
        self.Y: NDArray[np.float64] | None = None  # missing labels replaced by 0
        self.mask: NDArray[np.bool_] | None = None  # None when no label is missing
        self.Xs: tuple[NDArray[np.float64], ...] = ()
        self.ys: tuple[NDArray[np.float64], ...] = ()
        self._blocks: sp.csr_array | None = None
        self._blocks_t: sp.csr_array | None = None
        self._offsets: NDArray[np.int64] = np.zeros(1, dtype=np.int64)

    # ------------------------------------------------------------------ builders
    @classmethod
    def shared(cls, X: ArrayLike, Y: ArrayLike) -> TaskDesign:
        """Build a shared design.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features, finite.
        Y : array-like of shape (n_samples, n_tasks) or (n_samples,)
            Labels; ``NaN`` marks a missing label. A 1-D ``Y`` is one task.

        Returns
        -------
        TaskDesign

        Raises
        ------
        ValueError
            If shapes disagree, ``X`` is not finite, ``Y`` holds infinite values or a
            task has no observed label.
        """
        Xa = _as_float_matrix(X, "X")
        Ya = np.asarray(Y, dtype=np.float64)
        if Ya.ndim == 1:
            Ya = Ya[:, None]
        if Ya.ndim != 2 or Ya.shape[0] != Xa.shape[0]:
            raise ValueError(
                f"Y must have shape (n_samples, n_tasks) with n_samples={Xa.shape[0]} "
                f"like X; got shape {np.shape(Y)}."
            )
        if np.any(np.isinf(Ya)):
            raise ValueError("Y contains infinite values; use NaN to mark missing labels.")
        observed = ~np.isnan(Ya)
        counts = observed.sum(axis=0)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            raise ValueError(f"task {int(empty[0])} has no observed label in Y (all NaN).")
        self = cls()
        self.is_shared = True
        self.X = Xa
        self.Y = np.where(observed, Ya, 0.0)
        self.mask = None if observed.all() else observed
        self.n_features = Xa.shape[1]
        self.n_tasks = Ya.shape[1]
        self.n_samples = counts.astype(np.int64)
        return self

    @classmethod
    def per_task(cls, Xs: Sequence[ArrayLike], ys: Sequence[ArrayLike]) -> TaskDesign:
        """Build per-task designs.

        Parameters
        ----------
        Xs : sequence of array-like, each of shape (n_samples_t, n_features)
            Features of every task, finite, with the same number of columns.
        ys : sequence of array-like, each of shape (n_samples_t,)
            Labels of every task, finite.

        Returns
        -------
        TaskDesign

        Raises
        ------
        ValueError
            If the lengths or shapes disagree, a task is empty or holds non-finite
            values.
        """
        if len(Xs) != len(ys):
            raise ValueError(f"got {len(Xs)} feature blocks but {len(ys)} label vectors.")
        if len(Xs) == 0:
            raise ValueError("per-task designs need at least one task.")
        Xl: list[NDArray[np.float64]] = []
        yl: list[NDArray[np.float64]] = []
        for t, (Xt, yt) in enumerate(zip(Xs, ys, strict=True)):
            Xa = _as_float_matrix(Xt, f"X of task {t}")
            ya = np.asarray(yt, dtype=np.float64).ravel()
            if ya.shape[0] != Xa.shape[0]:
                raise ValueError(
                    f"task {t}: X has {Xa.shape[0]} rows but y has {ya.shape[0]} labels."
                )
            if ya.shape[0] == 0:
                raise ValueError(f"task {t} has no sample.")
            if not np.all(np.isfinite(ya)):
                raise ValueError(f"task {t}: y contains NaN or infinite values.")
            if Xl and Xa.shape[1] != Xl[0].shape[1]:
                raise ValueError(
                    f"task {t}: X has {Xa.shape[1]} features, task 0 has {Xl[0].shape[1]}."
                )
            Xl.append(Xa)
            yl.append(ya)
        self = cls()
        self.is_shared = False
        self.Xs = tuple(Xl)
        self.ys = tuple(yl)
        self.n_features = Xl[0].shape[1]
        self.n_tasks = len(Xl)
        self.n_samples = np.array([x.shape[0] for x in Xl], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self.n_samples)]).astype(np.int64)
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def offsets(self) -> NDArray[np.int64]:
        """Start of every task in the stacked samples of a per-task design, (n_tasks + 1,)."""
        return self._offsets

    def stacked_labels(self) -> NDArray[np.float64]:
        """Labels as the datafits see them: (n_samples, n_tasks) shared, (sum n_t,) else."""
        if self.is_shared:
            assert self.Y is not None
            return self.Y
        return np.concatenate(self.ys)

    def task_index(self) -> NDArray[np.int64]:
        """Task of every stacked sample of a per-task design, shape (sum n_t,)."""
        return np.repeat(np.arange(self.n_tasks), self.n_samples)

    def _block_matrices(self) -> tuple[sp.csr_array, sp.csr_array]:
        if self._blocks is None:
            blocks = sp.block_diag(self.Xs, format="csr")
            self._blocks = sp.csr_array(blocks)
            self._blocks_t = sp.csr_array(blocks.T.tocsr())
        assert self._blocks_t is not None
        return self._blocks, self._blocks_t

    def task_means(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-task means of the features and labels over observed samples.

        Returns
        -------
        x_mean : ndarray of shape (n_features, n_tasks)
        y_mean : ndarray of shape (n_tasks,)
        """
        if self.is_shared:
            assert self.X is not None and self.Y is not None
            if self.mask is None:
                xm = np.repeat(self.X.mean(axis=0)[:, None], self.n_tasks, axis=1)
            else:
                xm = (self.X.T @ self.mask) / self.n_samples
            return xm, self.Y.sum(axis=0) / self.n_samples
        xm = np.stack([x.mean(axis=0) for x in self.Xs], axis=1)
        return xm, np.array([y.mean() for y in self.ys])

    def matvec(self, W: NDArray[np.float64]) -> NDArray[np.float64]:
        """Predictions ``X_t w_t`` of every task.

        Parameters
        ----------
        W : ndarray of shape (n_features, n_tasks)

        Returns
        -------
        ndarray
            Shape (n_samples, n_tasks) for a shared design (missing entries included),
            (sum n_t,) stacked by task otherwise.
        """
        if self.is_shared:
            assert self.X is not None
            rows = np.flatnonzero(np.any(W != 0.0, axis=1))
            if rows.size < _ROW_SPARSE_FRACTION * self.n_features:
                return self.X[:, rows] @ W[rows]
            return self.X @ W
        blocks, _ = self._block_matrices()
        return blocks @ np.ascontiguousarray(W.T).ravel()

    def rmatvec(self, R: NDArray[np.float64]) -> NDArray[np.float64]:
        """Adjoint of :meth:`matvec`: ``X_t^T r_t`` for every task, (n_features, n_tasks).

        ``R`` must already be zero on missing labels.
        """
        if self.is_shared:
            assert self.X is not None
            return self.X.T @ R
        _, blocks_t = self._block_matrices()
        return (blocks_t @ R).reshape(self.n_tasks, self.n_features).T

    def task_sums(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Sum of per-sample values over every task's samples, shape (n_tasks,).

        ``values`` has the layout of :meth:`matvec`; for a shared design it must already
        be zero on missing labels.
        """
        if self.is_shared:
            return values.sum(axis=0)
        return np.add.reduceat(values, self._offsets[:-1])

    def per_task_view(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Broadcast a per-task vector (n_tasks,) to the layout of :meth:`matvec`."""
        if self.is_shared:
            return np.broadcast_to(values, (self.Y.shape[0], self.n_tasks))  # type: ignore[union-attr]
        return np.repeat(values, self.n_samples)
