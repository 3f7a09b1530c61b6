"""Smooth penalties on the weight matrix ``W`` (n_features x n_tasks).

Each class has ``value``, ``gradient`` and ``lipschitz`` (a valid Lipschitz constant of
the gradient), and ``subdiff_distance(W, grad) = ||grad + gradient(W)||_F``. The quadratic
ones (:class:`Ridge`, :class:`MeanRegularized`, :class:`GraphRegularized`) also have a
closed-form ``prox``, so that a solver may use them as its proximable term.

:class:`Ridge` and :class:`MeanRegularized` also run on task blocks: their kernels (the
``_*_comm`` methods) take a communicator (:mod:`polytask.linear._comm`), which
:mod:`polytask.linear.distributed` uses to reduce over the tasks held by other ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import scipy.linalg
import scipy.sparse
from numpy.typing import ArrayLike

from polytask._typing import FloatArray
from polytask.linear._comm import Comm, LocalComm, frobenius
from polytask.linear._penalties_base import (
    ParamsMixin,
    as_matrix,
    check_positive_int,
    check_real,
    check_same_shape,
    check_step,
)
from polytask.linear._prox import cluster_eigenvalues

__all__ = ["Clustered", "GraphRegularized", "MeanRegularized", "Ridge"]


class _SmoothPenalty(ParamsMixin):
    """Shared plumbing of the smooth penalties."""

    n_blocks: ClassVar[int] = 1
    smooth: ClassVar[bool] = True
    is_norm: ClassVar[bool] = False

    def _name(self) -> str:
        return type(self).__name__

    def gradient(self, W: ArrayLike) -> FloatArray:
        raise NotImplementedError

    def subdiff_distance(self, W: ArrayLike, grad: ArrayLike) -> float:
        """``||grad + gradient(W)||_F``: zero exactly at a stationary point.

        Parameters
        ----------
        W, grad : array_like of shape (n_features, n_tasks)
            Weights and the gradient of the rest of the objective at ``W``.
        """
        owner = self._name()
        Wm = as_matrix(W, owner)
        G = as_matrix(grad, owner, "grad")
        check_same_shape(Wm, G, owner, ("W", "grad"))
        return float(np.linalg.norm(G + self.gradient(Wm)))

    def _gradient_comm(self, W: FloatArray, comm: Comm) -> FloatArray:
        raise NotImplementedError

    def _subdiff_comm(self, W: FloatArray, grad: FloatArray, comm: Comm) -> float:
        return frobenius(grad + self._gradient_comm(W, comm), comm)


@dataclass(eq=False)
class Ridge(_SmoothPenalty):
    """Squared Frobenius norm, ``pen(W) = alpha / 2 * ||W||_F^2``.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation level, ``>= 0``.

    References
    ----------
    A. E. Hoerl and R. W. Kennard. Ridge regression: biased estimation for
    nonorthogonal problems. Technometrics 12(1), 1970.

    Examples
    --------
    >>> pen = Ridge(alpha=2.0)
    >>> W = np.array([[1.0, -2.0], [0.0, 1.0]])
    >>> pen.value(W), pen.gradient(W).tolist(), pen.lipschitz(2, 2)
    (6.0, [[2.0, -4.0], [0.0, 2.0]], 2.0)
    """

    alpha: float = 1.0

    def validate(self) -> None:
        """Check the hyperparameters.

        Raises
        ------
        TypeError, ValueError
            If ``alpha`` is not a finite number ``>= 0``.
        """
        check_real(self.alpha, "alpha", self._name())

    def _value_comm(self, W: FloatArray, comm: Comm) -> float:
        return 0.5 * float(self.alpha) * comm.total(float(np.sum(W * W)))

    def _gradient_comm(self, W: FloatArray, comm: Comm) -> FloatArray:
        return float(self.alpha) * W

    def _prox_comm(self, W: FloatArray, step: float, comm: Comm) -> FloatArray:
        return W / (1.0 + step * float(self.alpha))

    def value(self, W: ArrayLike) -> float:
        """``alpha / 2 * ||W||_F^2``."""
        return self._value_comm(as_matrix(W, self._name()), LocalComm())

    def gradient(self, W: ArrayLike) -> FloatArray:
        """``alpha * W``, shape (n_features, n_tasks)."""
        return self._gradient_comm(as_matrix(W, self._name()), LocalComm())

    def lipschitz(self, n_features: int, n_tasks: int) -> float:
        """``alpha``."""
        return float(self.alpha)

    def prox(self, W: ArrayLike, step: float) -> FloatArray:
        """``W / (1 + step * alpha)``."""
        s = check_step(step, self._name())
        return self._prox_comm(as_matrix(W, self._name()), s, LocalComm())


@dataclass(eq=False)
class MeanRegularized(_SmoothPenalty):
    """Mean-regularised MTL, ``alpha * sum_t ||w_t - w_bar||^2 + beta * ||W||_F^2``.

    ``w_t = W[:, t]`` is task ``t``'s weight vector and ``w_bar`` their mean: tasks are
    pulled towards a common model. With ``P = I - 11^T / T`` the penalty is
    ``alpha ||W P||_F^2 + beta ||W||_F^2``, its gradient ``2 alpha W P + 2 beta W``.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the pull towards the mean, ``>= 0``.
    beta : float, default=0.0
        Ridge level, ``>= 0``.

    References
    ----------
    T. Evgeniou and M. Pontil. Regularized multi-task learning. KDD 2004.

    Examples
    --------
    >>> pen = MeanRegularized(alpha=1.0, beta=0.5)
    >>> W = np.array([[1.0, 3.0], [0.0, 0.0]])
    >>> pen.value(W), pen.lipschitz(2, 2)
    (7.0, 3.0)
    >>> pen.gradient(W).tolist()
    [[-1.0, 5.0], [0.0, 0.0]]
    """

    alpha: float = 1.0
    beta: float = 0.0

    def validate(self) -> None:
        """Check the hyperparameters.

        Raises
        ------
        TypeError, ValueError
            If ``alpha`` or ``beta`` is not a finite number ``>= 0``.
        """
        check_real(self.alpha, "alpha", self._name())
        check_real(self.beta, "beta", self._name())

    @staticmethod
    def _mean(W: FloatArray, comm: Comm) -> FloatArray:
        """The mean task ``w_bar`` over all tasks, shape (n_features, 1)."""
        return (comm.sum(W.sum(axis=1)) / comm.global_tasks(W.shape[1]))[:, None]

    def _value_comm(self, W: FloatArray, comm: Comm) -> float:
        centred = W - self._mean(W, comm)
        sq = comm.sum([np.sum(centred**2), np.sum(W**2)])
        return float(self.alpha) * float(sq[0]) + float(self.beta) * float(sq[1])

    def _gradient_comm(self, W: FloatArray, comm: Comm) -> FloatArray:
        centred = W - self._mean(W, comm)
        return 2.0 * float(self.alpha) * centred + 2.0 * float(self.beta) * W

    def _prox_comm(self, W: FloatArray, step: float, comm: Comm) -> FloatArray:
        mean = self._mean(W, comm)
        a, b = float(self.alpha), float(self.beta)
        return mean / (1.0 + 2.0 * step * b) + (W - mean) / (1.0 + 2.0 * step * (a + b))

    def value(self, W: ArrayLike) -> float:
        """``alpha ||W - w_bar 1^T||_F^2 + beta ||W||_F^2``."""
        return self._value_comm(as_matrix(W, self._name()), LocalComm())

    def gradient(self, W: ArrayLike) -> FloatArray:
        """``2 alpha (W - w_bar 1^T) + 2 beta W``, shape (n_features, n_tasks)."""
        return self._gradient_comm(as_matrix(W, self._name()), LocalComm())

    def lipschitz(self, n_features: int, n_tasks: int) -> float:
        """``2 (alpha + beta)`` (``2 beta`` for a single task): ``P`` has eigenvalues 0, 1."""
        return 2.0 * (float(self.alpha) * (n_tasks > 1) + float(self.beta))

    def prox(self, W: ArrayLike, step: float) -> FloatArray:
        """Closed form: ``mean / (1 + 2 s beta) + (W - mean) / (1 + 2 s (alpha + beta))``."""
        s = check_step(step, self._name())
        return self._prox_comm(as_matrix(W, self._name()), s, LocalComm())


@dataclass(eq=False)
class GraphRegularized(_SmoothPenalty):
    """Graph-regularised MTL, ``pen(W) = alpha * ||W R||_F^2 = alpha tr(W L W^T)``.

    For a task graph with symmetric non-negative weights ``A`` (T x T), ``R`` has one
    column ``sqrt(A_st) (e_s - e_t)`` per edge ``s < t``, so that
    ``pen(W) = alpha * sum_{s<t} A_st ||w_s - w_t||^2`` and ``L = R R^T = D - A`` is the
    graph Laplacian (self-loops cancel). The gradient is ``2 alpha W L``.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation level, ``>= 0``.
    graph : array_like or scipy sparse matrix
        ``kind="adjacency"``: the (n_tasks, n_tasks) symmetric weight matrix ``A >= 0``.
        ``kind="incidence"``: the (n_tasks, n_edges) matrix ``R`` itself.
    kind : {"adjacency", "incidence"}, default="adjacency"
        How to read ``graph``.

    References
    ----------
    J. Zhou, J. Chen and J. Ye. MALSAR: Multi-tAsk Learning via StructurAl
    Regularization (SRMTL). Arizona State University, 2011.
    T. Evgeniou, C. A. Micchelli and M. Pontil. Learning multiple tasks with kernel
    methods. JMLR 6, 2005.

    Examples
    --------
    >>> chain = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    >>> pen = GraphRegularized(alpha=0.5, graph=chain)
    >>> W = np.array([[1.0, 2.0, 4.0]])
    >>> round(pen.value(W), 3), round(pen.lipschitz(1, 3), 3)
    (2.5, 3.0)
    """

    alpha: float = 1.0
    graph: object = None
    kind: Literal["adjacency", "incidence"] = "adjacency"

    def validate(self) -> None:
        """Check the hyperparameters.

        Raises
        ------
        TypeError, ValueError
            If ``alpha`` is not a finite number ``>= 0``, ``kind`` is unknown, or
            ``graph`` is not a finite 2-D matrix of the expected form.
        """
        check_real(self.alpha, "alpha", self._name())
        self.laplacian()

    def laplacian(self) -> FloatArray:
        """The (n_tasks, n_tasks) graph Laplacian ``L = R R^T``.

        Raises
        ------
        TypeError, ValueError
            If ``graph`` or ``kind`` is invalid.
        """
        owner = self._name()
        if self.kind not in ("adjacency", "incidence"):
            raise ValueError(f"{owner}: kind must be 'adjacency' or 'incidence'; got {self.kind!r}")
        if self.graph is None:
            raise ValueError(f"{owner}: graph is required (an adjacency or incidence matrix)")
        graph = self.graph
        if scipy.sparse.issparse(graph):
            graph = graph.toarray()  # type: ignore[attr-defined]
        G = as_matrix(np.asarray(graph), owner, "graph")
        if not np.all(np.isfinite(G)):
            raise ValueError(f"{owner}: graph contains NaN or infinite values")
        if self.kind == "incidence":
            return G @ G.T
        if G.shape[0] != G.shape[1]:
            raise ValueError(
                f"{owner}: graph must be a square (n_tasks, n_tasks) adjacency matrix; "
                f"got shape {G.shape}"
            )
        if np.any(G < 0):
            raise ValueError(f"{owner}: graph must have non-negative weights")
        if not np.allclose(G, G.T, rtol=1e-10, atol=1e-12):
            raise ValueError(f"{owner}: graph must be symmetric (an undirected task graph)")
        sym = 0.5 * (G + G.T)
        return np.diag(sym.sum(axis=1)) - sym

    def _checked_laplacian(self, n_tasks: int) -> FloatArray:
        L = self.laplacian()
        if L.shape[0] != n_tasks:
            raise ValueError(
                f"{self._name()}: graph has {L.shape[0]} tasks but W has {n_tasks}; "
                "expected one graph node per task"
            )
        return L

    def value(self, W: ArrayLike) -> float:
        """``alpha * tr(W L W^T)``."""
        Wm = as_matrix(W, self._name())
        L = self._checked_laplacian(Wm.shape[1])
        return float(self.alpha) * float(np.sum((Wm @ L) * Wm))

    def gradient(self, W: ArrayLike) -> FloatArray:
        """``2 alpha W L``, shape (n_features, n_tasks)."""
        Wm = as_matrix(W, self._name())
        return 2.0 * float(self.alpha) * (Wm @ self._checked_laplacian(Wm.shape[1]))

    def lipschitz(self, n_features: int, n_tasks: int) -> float:
        """``2 alpha lambda_max(L)``."""
        L = self._checked_laplacian(n_tasks)
        return 2.0 * float(self.alpha) * float(max(np.linalg.eigvalsh(L)[-1], 0.0))

    def prox(self, W: ArrayLike, step: float) -> FloatArray:
        """``W (I + 2 step alpha L)^{-1}`` (one symmetric positive definite solve)."""
        s = check_step(step, self._name())
        Wm = as_matrix(W, self._name())
        L = self._checked_laplacian(Wm.shape[1])
        system = np.eye(L.shape[0]) + 2.0 * s * float(self.alpha) * L
        return scipy.linalg.solve(system, Wm.T, assume_a="pos").T


@dataclass(eq=False)
class Clustered(_SmoothPenalty):
    """Convex clustered MTL: ``alpha eta (1 + eta) min_M tr(W (eta I + M)^{-1} W^T)``.

    The minimum is over ``{M : tr(M) = k, 0 <= M <= I}`` (T x T, ``k = n_clusters``) and
    ``eta = beta / alpha``. It is the convex relaxation of k-means clustering of the
    tasks' weight vectors plus a ridge term (Zhou, Chen & Ye, 2011). With
    ``W^T W = U diag(sigma) U^T`` the optimal ``M`` is ``U diag(m) U^T`` where ``m``
    solves a water-filling problem (:func:`~polytask.linear._prox.cluster_eigenvalues`),
    so that

        pen(W) = sum_i sigma_i * beta (alpha + beta) / (beta + alpha m_i),

    a convex, differentiable function of ``W`` with gradient
    ``2 alpha eta (1 + eta) W (eta I + M*)^{-1}`` (Danskin). Every per-direction weight
    lies in ``[beta, alpha + beta]``, so the gradient is ``2 (alpha + beta)``-Lipschitz.

    Parameters
    ----------
    alpha : float, default=1.0
        Clustering strength, ``> 0``.
    beta : float, default=1.0
        Ridge level, ``> 0``.
    n_clusters : int, default=2
        Number of task clusters ``k``, ``1 <= k <= n_tasks``.

    References
    ----------
    J. Zhou, J. Chen and J. Ye. Clustered multi-task learning via alternating structure
    optimization. NIPS 2011.

    Examples
    --------
    >>> pen = Clustered(alpha=1.0, beta=1.0, n_clusters=1)
    >>> W = np.array([[1.0, 1.0, -1.0], [1.0, 1.0, -1.0]])
    >>> round(pen.value(W), 3)
    6.0
    >>> M = pen.cluster_matrix(W)
    >>> round(float(np.trace(M)), 6), pen.lipschitz(2, 3)
    (1.0, 4.0)
    """

    alpha: float = 1.0
    beta: float = 1.0
    n_clusters: int = 2

    def validate(self) -> None:
        """Check the hyperparameters.

        Raises
        ------
        TypeError, ValueError
            If ``alpha`` or ``beta`` is not a finite number ``> 0`` or ``n_clusters`` is
            not an integer ``>= 1``.
        """
        check_real(self.alpha, "alpha", self._name(), positive=True)
        check_real(self.beta, "beta", self._name(), positive=True)
        check_positive_int(self.n_clusters, "n_clusters", self._name())

    def _spectrum(self, W: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """``(Q, sigma, m, weights)`` for the eigen-decomposition of ``W^T W``.

        ``Q`` (n_tasks, r) holds the first ``r`` eigenvectors; ``sigma``, ``m`` and
        ``weights = beta (alpha + beta) / (beta + alpha m)`` have length n_tasks, and
        entries past ``r`` belong to the orthogonal complement of ``Q``, where
        ``sigma = 0``. With fewer features than tasks a thin SVD of ``W`` gives
        ``r = n_features`` directions; otherwise ``r = n_tasks`` from ``eigh(W^T W)``.
        """
        n_features, n_tasks = W.shape
        if self.n_clusters > n_tasks:
            raise ValueError(
                f"{self._name()}: n_clusters={self.n_clusters} exceeds n_tasks={n_tasks}; "
                "expected at most one cluster per task"
            )
        a, b = float(self.alpha), float(self.beta)
        if n_features < n_tasks:
            _, s, Vt = np.linalg.svd(W, full_matrices=False)
            Q = Vt.T
            sigma = np.concatenate([s**2, np.zeros(n_tasks - s.size)])
        else:
            sigma, Q = np.linalg.eigh(W.T @ W)
            sigma = np.maximum(sigma, 0.0)
        m = cluster_eigenvalues(sigma, b / a, self.n_clusters)
        weights = b * (a + b) / (b + a * m)
        return Q, sigma, m, weights

    def value(self, W: ArrayLike) -> float:
        """``sum_i sigma_i(W^T W) * beta (alpha + beta) / (beta + alpha m_i)``."""
        _, sigma, _, weights = self._spectrum(as_matrix(W, self._name()))
        return float(np.dot(sigma, weights))

    def gradient(self, W: ArrayLike) -> FloatArray:
        """``2 alpha eta (1 + eta) W (eta I + M*)^{-1}``, shape (n_features, n_tasks)."""
        Wm = as_matrix(W, self._name())
        Q, _, _, weights = self._spectrum(Wm)
        # W vanishes on the complement of Q, so only Q's directions contribute.
        return 2.0 * ((Wm @ Q) * weights[: Q.shape[1]]) @ Q.T

    def lipschitz(self, n_features: int, n_tasks: int) -> float:
        """``2 (alpha + beta)`` = ``2 alpha eta (1 + eta) / eta``."""
        return 2.0 * (float(self.alpha) + float(self.beta))

    def cluster_matrix(self, W: ArrayLike) -> FloatArray:
        """The optimal ``M*`` (n_tasks, n_tasks) at ``W``; ``tr(M*) = n_clusters``.

        ``M*`` is the relaxation of ``F F^T`` for a normalised cluster-assignment matrix
        ``F``: tasks in the same cluster have large ``M*_st``.
        """
        Q, _, m, _ = self._spectrum(as_matrix(W, self._name()))
        r = Q.shape[1]
        M = (Q * m[:r]) @ Q.T
        if r < m.size:  # the complement shares one eigenvalue (its sigma are all 0)
            M += m[r] * (np.eye(m.size) - Q @ Q.T)
        return M
