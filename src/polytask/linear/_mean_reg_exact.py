"""Mean-regularised multi-task least squares, solved exactly as linear systems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from polytask.linear._objective import (
    Objective,
    SolverResult,
    blas_threads,
    check_requirements,
)
from polytask.linear._penalties import MeanRegularized

__all__ = ["MeanRegularizedSolver", "solve_mean_regularized"]

FArray = NDArray[np.float64]


def solve_mean_regularized(H: FArray, B: FArray, alpha: float, beta: float) -> FArray:
    r"""Minimiser of ``sum_t (w_t^T H_t w_t / 2 - b_t^T w_t) + alpha sum_t ||w_t - w_bar||^2
    + beta ||W||_F^2``.

    Stationarity in ``w_t`` (the terms ``w_s - w_bar`` sum to zero) reads
    ``(H_t + 2 (alpha + beta) I) w_t = b_t + 2 alpha w_bar``. Writing
    ``A_t = H_t + 2 (alpha + beta) I`` and averaging over tasks gives one system for the
    mean, ``(I - (2 alpha / T) sum_t A_t^{-1}) w_bar = (1 / T) sum_t A_t^{-1} b_t``; then
    every ``w_t`` follows from its own ``d x d`` system. With one Hessian shared by all
    tasks the mean system reduces to ``(H + 2 beta I) w_bar = mean_t b_t``.

    Parameters
    ----------
    H : ndarray of shape (n_features, n_features) or (n_tasks, n_features, n_features)
        Hessian of every task's loss (one matrix when shared).
    B : ndarray of shape (n_features, n_tasks)
        Linear terms ``b_t``.
    alpha, beta : float
        Penalty levels, ``>= 0``.

    Returns
    -------
    ndarray of shape (n_features, n_tasks)

    Notes
    -----
    When the mean system is singular (``beta = 0`` and the pooled Hessian is singular)
    the minimum-norm mean is returned; the objective value is still optimal.

    References
    ----------
    T. Evgeniou and M. Pontil. Regularized multi-task learning. KDD 2004.

    Examples
    --------
    >>> import numpy as np
    >>> H = np.stack([np.eye(2), 3 * np.eye(2)])
    >>> B = np.array([[1.0, 3.0], [2.0, 0.0]])
    >>> W = solve_mean_regularized(H, B, alpha=0.0, beta=0.0)  # independent tasks
    >>> W.round(6).tolist()
    [[1.0, 1.0], [2.0, 0.0]]
    """
    d, T = B.shape
    rho = 2.0 * (alpha + beta)
    eye = np.eye(d)
    if H.ndim == 2:
        mean = np.linalg.lstsq(H + 2.0 * beta * eye, B.mean(axis=1), rcond=None)[0]
        rhs = B + 2.0 * alpha * mean[:, None]
        return np.linalg.lstsq(H + rho * eye, rhs, rcond=None)[0]
    A = H + rho * eye
    rhs = np.concatenate([B.T[:, :, None], np.broadcast_to(eye, (T, d, d))], axis=2)
    sol = np.linalg.solve(A, rhs)  # [A_t^{-1} b_t | A_t^{-1}] for every task
    Ainv_b, Ainv = sol[:, :, 0], sol[:, :, 1:]
    M = eye - (2.0 * alpha / T) * Ainv.sum(axis=0)
    mean = np.linalg.lstsq(M, Ainv_b.mean(axis=0), rcond=None)[0]
    return (Ainv_b + 2.0 * alpha * (Ainv @ mean)).T


@dataclass
class MeanRegularizedSolver:
    """Exact solver for the squared loss with :class:`MeanRegularized` (one linear solve).

    Solves ``F(W) + alpha sum_t ||w_t - w_bar||^2 + beta ||W||_F^2`` through
    :func:`solve_mean_regularized`: one ``d x d`` system per task and one for the mean
    (a single one of each for a complete shared design). The certificate is the
    relative gradient norm ``||grad||_F / ||grad at 0||_F`` at the solution, reported in
    ``stop_crit``; ``n_iter`` is 1.

    Parameters
    ----------
    tol : float, default=1e-6
        The result is flagged ``converged`` when the certificate is below ``tol`` (a
        larger value means the linear systems were ill-conditioned).

    Attributes
    ----------
    required : dict
        Methods the solver needs from each object, checked by :meth:`solve`.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import MeanRegularized, MeanRegularizedSolver, SquaredLoss
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.normal(size=(20, 3)) for _ in range(4)]
    >>> ys = [x @ np.ones(3) + 0.1 * rng.normal(size=20) for x in Xs]
    >>> datafit = SquaredLoss().initialize(Xs, ys)
    >>> res = MeanRegularizedSolver().solve(datafit, MeanRegularized(alpha=1.0, beta=0.1))
    >>> res.converged, res.W.shape
    (True, (3, 4))
    """

    tol: float = 1e-6

    required: ClassVar[dict[str, tuple[str, ...]]] = {
        "datafit": ("quadratic_terms", "state", "value", "gradient"),
        "penalty": ("value", "gradient", "subdiff_distance"),
    }

    def solve(
        self,
        datafit: Any,
        penalty: Any,
        W0: FArray | None = None,
        smooth: Sequence[Any] = (),
    ) -> SolverResult:
        """Solve exactly (``W0`` is ignored: no iteration to warm-start).

        Parameters
        ----------
        datafit : initialized SquaredLoss
        penalty : MeanRegularized
        W0 : ignored
        smooth : sequence, default=()
            Must be empty.

        Returns
        -------
        SolverResult

        Raises
        ------
        ValueError
            If the penalty is not a MeanRegularized, smooth penalties are given, or the
            datafit lacks ``quadratic_terms`` (is not a squared loss).
        """
        if len(smooth) > 0 or not isinstance(penalty, MeanRegularized):
            raise ValueError(
                "MeanRegularizedSolver solves the squared loss with one MeanRegularized "
                f"penalty only; got {type(penalty).__name__} and {len(smooth)} smooth "
                "penalties. Use FISTA for other combinations."
            )
        check_requirements(
            "MeanRegularizedSolver", self.required, {"datafit": [datafit], "penalty": [penalty]}
        )
        obj = Objective(datafit, penalty, ())
        H, B = datafit.quadratic_terms()
        with blas_threads(obj.d):
            W = solve_mean_regularized(H, B, float(penalty.alpha), float(penalty.beta))
        S = datafit.state(W)
        grad = datafit.gradient(W, S)
        objective = float(datafit.value(W, S) + penalty.value(W))
        crit = float(penalty.subdiff_distance(W, grad)) / obj.grad0_norm
        return SolverResult(
            W=W,
            V=W,
            n_iter=1,
            objective=objective,
            dual_gap=None,
            stop_crit=crit,
            converged=crit <= self.tol,
        )
