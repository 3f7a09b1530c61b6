"""Norm penalties ``pen(W) = alpha * Omega(W)`` on the weight matrix ``W`` (d x T).

Each class has a closed-form prox (see :mod:`polytask.linear._prox`), the dual norm
``Omega*`` (for duality gaps), ``alpha_max`` (the smallest ``alpha`` for which ``W = 0`` is
optimal) and ``subdiff_distance``, the Euclidean (Frobenius) distance of ``-grad`` to
``alpha * dOmega(W)``, used as the optimality measure.

The kernels behind these methods take a communicator (:mod:`polytask.linear._comm`):
the public methods run them on all tasks in this process, and
:mod:`polytask.linear.distributed` runs the same kernels on task blocks, with the
reductions over the tasks done by ``torch.distributed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from polytask._typing import FloatArray
from polytask.linear._comm import (
    Comm,
    LocalComm,
    ball_threshold,
    row_norms,
    simplex_threshold,
)
from polytask.linear._penalties_base import (
    TIE_RTOL,
    ParamsMixin,
    as_matrix,
    check_real,
    check_same_shape,
    check_step,
)
from polytask.linear._prox import (
    _group_scale,
    _svd,
    group_soft_threshold_cols,
    singular_value_threshold,
    soft_threshold,
)

__all__ = ["L21", "L1Linf", "Lasso", "TraceNorm"]


def _row_sq(A: FloatArray) -> FloatArray:
    return np.einsum("ij,ij->i", A, A)


@dataclass(eq=False)
class _NormPenalty(ParamsMixin):
    """Shared plumbing of ``alpha * Omega(W)``; subclasses define the norm itself.

    The kernels ``_norm``, ``_prox``, ``_dual_norm`` and ``_distance_sq`` take the
    columns ``W[:, tasks]`` this process holds and a communicator, and return the local
    block of a matrix result or a global scalar (identical in every process). The
    ``_*_comm`` methods are the penalty on such blocks; the public methods call them
    with :class:`~polytask.linear._comm.LocalComm` (all tasks here).
    """

    alpha: float = 1.0

    n_blocks: ClassVar[int] = 1
    smooth: ClassVar[bool] = False
    is_norm: ClassVar[bool] = True

    def validate(self) -> None:
        """Check the hyperparameters.

        Raises
        ------
        TypeError
            If ``alpha`` is not a real number.
        ValueError
            If ``alpha`` is negative or not finite.
        """
        check_real(self.alpha, "alpha", type(self).__name__)

    def _name(self) -> str:
        return type(self).__name__

    def _norm(self, W: FloatArray, comm: Comm) -> float:
        raise NotImplementedError

    def _prox(self, W: FloatArray, threshold: float, comm: Comm) -> FloatArray:
        raise NotImplementedError

    def _dual_norm(self, G: FloatArray, comm: Comm) -> float:
        raise NotImplementedError

    def _distance_sq(self, W: FloatArray, A: FloatArray, comm: Comm) -> float:
        raise NotImplementedError

    def _value_comm(self, W: FloatArray, comm: Comm) -> float:
        return float(self.alpha) * self._norm(W, comm)

    def _prox_comm(self, W: FloatArray, step: float, comm: Comm) -> FloatArray:
        return self._prox(W, step * float(self.alpha), comm)

    def _subdiff_comm(self, W: FloatArray, grad: FloatArray, comm: Comm) -> float:
        return float(np.sqrt(max(self._distance_sq(W, -grad, comm), 0.0)))

    def _dual_norm_comm(self, G: FloatArray, comm: Comm) -> float:
        return self._dual_norm(G, comm)

    def value(self, W: ArrayLike) -> float:
        """Penalty value ``alpha * Omega(W)`` for ``W`` of shape (n_features, n_tasks)."""
        return self._value_comm(as_matrix(W, self._name()), LocalComm())

    def prox(self, W: ArrayLike, step: float) -> FloatArray:
        """``argmin_Z 1/(2 step) ||Z - W||_F^2 + alpha * Omega(Z)``.

        Parameters
        ----------
        W : array_like of shape (n_features, n_tasks)
        step : float
            Step size, ``> 0``.

        Returns
        -------
        ndarray of shape (n_features, n_tasks)
        """
        owner = self._name()
        return self._prox_comm(as_matrix(W, owner), check_step(step, owner), LocalComm())

    def subdiff_distance(self, W: ArrayLike, grad: ArrayLike) -> float:
        """Frobenius distance of ``-grad`` to the subdifferential ``alpha * dOmega(W)``.

        Zero exactly when ``W`` minimises ``F + pen`` and ``grad`` is the gradient of the
        smooth part ``F`` at ``W``.

        Parameters
        ----------
        W : array_like of shape (n_features, n_tasks)
        grad : array_like of shape (n_features, n_tasks)

        Returns
        -------
        float
        """
        owner = self._name()
        Wm = as_matrix(W, owner)
        G = as_matrix(grad, owner, "grad")
        check_same_shape(Wm, G, owner, ("W", "grad"))
        return self._subdiff_comm(Wm, G, LocalComm())

    def dual_norm(self, G: ArrayLike) -> float:
        """The dual norm ``Omega*(G) = sup_{Omega(Z) <= 1} <G, Z>``, G of shape (d, T)."""
        return self._dual_norm_comm(as_matrix(G, self._name(), "G"), LocalComm())

    def alpha_max(self, grad0: ArrayLike) -> float:
        """Smallest ``alpha`` for which ``W = 0`` is optimal: ``Omega*(grad0)``.

        Parameters
        ----------
        grad0 : array_like of shape (n_features, n_tasks)
            Gradient of the datafit at ``W = 0``.
        """
        return self.dual_norm(grad0)


@dataclass(eq=False)
class Lasso(_NormPenalty):
    """Entry-wise l1 penalty, ``pen(W) = alpha * sum_{j,t} |W_jt|``.

    Each task gets its own sparse support (no sharing between tasks); the
    single-task baseline for the structured-sparsity penalties below.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation level, ``>= 0``.

    References
    ----------
    R. Tibshirani. Regression shrinkage and selection via the lasso. JRSS-B 58(1), 1996.

    Examples
    --------
    >>> pen = Lasso(alpha=0.5)
    >>> W = np.array([[1.0, -2.0], [0.2, 0.0]])
    >>> round(pen.value(W), 3)
    1.6
    >>> pen.prox(W, step=1.0).tolist()
    [[0.5, -1.5], [0.0, 0.0]]
    """

    def _norm(self, W: FloatArray, comm: Comm) -> float:
        return comm.total(float(np.abs(W).sum()))

    def _prox(self, W: FloatArray, threshold: float, comm: Comm) -> FloatArray:
        return soft_threshold(W, threshold)

    def _dual_norm(self, G: FloatArray, comm: Comm) -> float:
        return float(comm.max(np.abs(G).max(initial=0.0))[0])

    def _distance_sq(self, W: FloatArray, A: FloatArray, comm: Comm) -> float:
        a = float(self.alpha)
        on = A - a * np.sign(W)
        off = np.maximum(np.abs(A) - a, 0.0)
        return comm.total(float(np.sum(np.where(W != 0, on, off) ** 2)))


@dataclass(eq=False)
class L21(_NormPenalty):
    """Joint feature selection, ``pen(W) = alpha * sum_j ||W_j,:||_2`` (rows = features).

    A feature is used by all tasks or by none: whole rows of ``W`` are zero.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation level, ``>= 0``.

    References
    ----------
    A. Argyriou, T. Evgeniou and M. Pontil. Convex multi-task feature learning.
    Machine Learning 73(3), 2008.
    G. Obozinski, B. Taskar and M. I. Jordan. Joint covariate selection and joint
    subspace selection for multiple classification problems. Statistics and
    Computing 20(2), 2010.

    Examples
    --------
    >>> pen = L21(alpha=1.0)
    >>> W = np.array([[3.0, 4.0], [0.3, 0.4]])
    >>> round(pen.value(W), 3)
    5.5
    >>> pen.prox(W, step=1.0).round(2).tolist()
    [[2.4, 3.2], [0.0, 0.0]]
    """

    def _norm(self, W: FloatArray, comm: Comm) -> float:
        return float(row_norms(W, comm).sum())

    def _prox(self, W: FloatArray, threshold: float, comm: Comm) -> FloatArray:
        return W * _group_scale(row_norms(W, comm), threshold)[:, None]

    def _dual_norm(self, G: FloatArray, comm: Comm) -> float:
        return float(row_norms(G, comm).max(initial=0.0))

    def _distance_sq(self, W: FloatArray, A: FloatArray, comm: Comm) -> float:
        a = float(self.alpha)
        d = W.shape[0]
        norms = np.sqrt(comm.sum(np.concatenate([_row_sq(W), _row_sq(A)])))  # one reduction
        w_norms, a_norms = norms[:d], norms[d:]
        nz = w_norms > 0
        on = float(np.sum((A[nz] - a * W[nz] / w_norms[nz, None]) ** 2))
        off = float(np.sum(np.maximum(a_norms[~nz] - a, 0.0) ** 2))
        return comm.total(on) + off


@dataclass(eq=False)
class _L21Columns(_NormPenalty):
    """``alpha * sum_t ||W_:,t||_2``: whole tasks (columns) are zero or not."""

    # A column lies in one process: its norm needs no reduction, only the sums over
    # columns do.
    def _norm(self, W: FloatArray, comm: Comm) -> float:
        return comm.total(float(row_norms(W.T, LocalComm()).sum()))

    def _prox(self, W: FloatArray, threshold: float, comm: Comm) -> FloatArray:
        return group_soft_threshold_cols(W, threshold)

    def _dual_norm(self, G: FloatArray, comm: Comm) -> float:
        return float(comm.max(row_norms(G.T, LocalComm()).max(initial=0.0))[0])

    def _distance_sq(self, W: FloatArray, A: FloatArray, comm: Comm) -> float:
        return comm.total(L21(self.alpha)._distance_sq(W.T, A.T, LocalComm()))


@dataclass(eq=False)
class L1Linf(_NormPenalty):
    """Row-wise l1/l_inf penalty, ``pen(W) = alpha * sum_j max_t |W_jt|``.

    Like :class:`L21` it selects features jointly, but within a selected row the
    tasks are pushed towards a common magnitude.

    The prox is computed through the Moreau decomposition,
    ``prox(W)_j = W_j - step * alpha * Proj_{||.||_1 <= 1}(W_j / (step * alpha))``, with
    an exact ``O(T log T)`` l1-ball projection (Duchi et al., 2008).

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation level, ``>= 0``.

    References
    ----------
    B. A. Turlach, W. N. Venables and S. J. Wright. Simultaneous variable selection.
    Technometrics 47(3), 2005.
    A. Quattoni, X. Carreras, M. Collins and T. Darrell. An efficient projection for
    l1,inf regularization. ICML 2009.

    Examples
    --------
    >>> pen = L1Linf(alpha=2.0)
    >>> W = np.array([[3.0, -1.0, 0.2], [0.5, 0.5, 0.5]])
    >>> round(pen.value(W), 3)
    7.0
    >>> pen.prox(W, step=1.0).tolist()
    [[1.0, -1.0, 0.2], [0.0, 0.0, 0.0]]
    """

    def _norm(self, W: FloatArray, comm: Comm) -> float:
        return float(comm.max(np.abs(W).max(axis=1, initial=0.0)).sum())

    def _prox(self, W: FloatArray, threshold: float, comm: Comm) -> FloatArray:
        # Moreau: w - Proj_{l1 ball of radius tau}(w) = sign(w) min(|w|, theta).
        if threshold == 0:
            return W.copy()
        theta = ball_threshold(W, threshold, comm)[:, None]
        return np.clip(W, -theta, theta)

    def _dual_norm(self, G: FloatArray, comm: Comm) -> float:
        return float(comm.sum(np.abs(G).sum(axis=1)).max(initial=0.0))

    def _distance_sq(self, W: FloatArray, A: FloatArray, comm: Comm) -> float:
        a = float(self.alpha)
        absW = np.abs(W)
        top = comm.max(absW.max(axis=1, initial=0.0))
        zero = top == 0
        total = 0.0
        if np.any(zero):
            # d(alpha ||.||_inf)(0) is the l1 ball of radius alpha.
            Az = A[zero]
            if a > 0:
                theta = ball_threshold(Az, a, comm)[:, None]
                total += float(np.sum(np.clip(Az, -theta, theta) ** 2))
            else:
                total += float(np.sum(Az**2))
        if np.any(~zero):
            # On a non-zero row the subdifferential is alpha * conv{sign(w_i) e_i : i
            # active}: -grad on inactive entries must be 0, and sign(w) * (-grad) on the
            # active ones must lie on the simplex of radius alpha.
            Wn, An = W[~zero], A[~zero]
            active = absW[~zero] >= (1.0 - TIE_RTOL) * top[~zero, None]
            flipped = np.where(active, np.sign(Wn) * An, 0.0)
            total += float(np.sum(np.where(active, 0.0, An) ** 2))
            if a > 0:
                theta = simplex_threshold(flipped, a, comm, mask=active)[:, None]
                proj = np.where(active, np.maximum(flipped - theta, 0.0), 0.0)
            else:
                proj = np.zeros_like(flipped)
            total += float(np.sum((flipped - proj) ** 2))
        return comm.total(total)


@dataclass(eq=False)
class TraceNorm(_NormPenalty):
    """Trace (nuclear) norm, ``pen(W) = alpha * ||W||_* = alpha * sum_i s_i(W)``.

    Encourages a low-rank ``W``: the tasks' weight vectors share a low-dimensional
    subspace. The prox is singular value thresholding.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation level, ``>= 0``.

    References
    ----------
    S. Ji and J. Ye. An accelerated gradient method for trace norm minimization.
    ICML 2009.
    T. K. Pong, P. Tseng, S. Ji and J. Ye. Trace norm regularization: reformulations,
    algorithms, and multi-task learning. SIAM J. Optim. 20(6), 2010.

    Examples
    --------
    >>> pen = TraceNorm(alpha=2.0)
    >>> W = np.array([[3.0, 0.0], [0.0, 1.0]])
    >>> round(pen.value(W), 3)
    8.0
    >>> pen.prox(W, step=1.0).round(6).tolist()
    [[1.0, 0.0], [0.0, 0.0]]
    """

    # The singular values couple every entry: the kernels gather the columns, compute
    # on the full matrix in every process, and keep their own columns.
    def _norm(self, W: FloatArray, comm: Comm) -> float:
        full = comm.gather_tasks(W)
        if full.size == 0:
            return 0.0
        return comm.agree(float(np.linalg.svd(full, compute_uv=False).sum()))

    def _prox(self, W: FloatArray, threshold: float, comm: Comm) -> FloatArray:
        return comm.own_tasks(singular_value_threshold(comm.gather_tasks(W), threshold))

    def _dual_norm(self, G: FloatArray, comm: Comm) -> float:
        full = comm.gather_tasks(G)
        if full.size == 0:
            return 0.0
        return comm.agree(float(np.linalg.svd(full, compute_uv=False)[0]))

    def _distance_sq(self, W: FloatArray, A: FloatArray, comm: Comm) -> float:
        both = comm.gather_tasks(np.concatenate([W, A], axis=0))
        d = W.shape[0]
        return comm.agree(self._full_distance_sq(both[:d], both[d:]))

    def _full_distance_sq(self, W: FloatArray, A: FloatArray) -> float:
        # dalpha||.||_*(W) = alpha (U V^T + {Z : U^T Z = 0, Z V = 0, ||Z||_2 <= 1}) with
        # W = U diag(s) V^T its compact SVD. The tangent space T = {U X^T + Y V^T} and its
        # complement split the distance into an exact part and a spectral-ball part.
        a = float(self.alpha)
        if W.size == 0:
            return 0.0
        U, s, Vt = _svd(W)
        rank = int(np.count_nonzero(s > TIE_RTOL * s[0])) if s[0] > 0 else 0
        Ur, Vr = U[:, :rank], Vt[:rank].T
        UtA = Ur.T @ A
        AV = A @ Vr
        A_perp = A - Ur @ UtA - AV @ Vr.T + Ur @ (UtA @ Vr) @ Vr.T
        tangent = A - A_perp - a * (Ur @ Vr.T)
        sing = np.linalg.svd(A_perp, compute_uv=False)
        return float(np.sum(tangent**2) + np.sum(np.maximum(sing - a, 0.0) ** 2))
