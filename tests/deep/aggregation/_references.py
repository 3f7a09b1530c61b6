"""Independent reference solutions (cvxpy) on an explicit Jacobian."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def _solve(problem: cp.Problem) -> None:
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10,
                  tol_feas=1e-10)
    assert problem.status == cp.OPTIMAL, problem.status


def min_norm_point(jacobian: Array) -> tuple[Array, float]:
    """``d = Jᵀw`` minimising ``‖Jᵀw‖`` over the simplex, and ``‖d‖²``."""
    m = jacobian.shape[0]
    w = cp.Variable(m)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(jacobian.T @ w)),
                         [w >= 0, cp.sum(w) == 1])
    _solve(problem)
    d = jacobian.T @ np.asarray(w.value)
    return d, float(d @ d)


def dual_cone_projection(jacobian: Array, g: Array) -> Array:
    """Euclidean projection of ``g`` onto ``{x : J x ≥ 0}``."""
    x = cp.Variable(jacobian.shape[1])
    problem = cp.Problem(cp.Minimize(cp.sum_squares(x - g)), [jacobian @ x >= 0])
    _solve(problem)
    return np.asarray(x.value)


def cagrad_direction(jacobian: Array, c: float) -> Array:
    """CAGrad's primal: ``argmax_{‖d − g0‖ ≤ c‖g0‖} min_i g_iᵀ d`` (no rescaling).

    Solved as the second-order cone program ``max t`` s.t. ``J d ≥ t``,
    ``‖d − g0‖ ≤ c‖g0‖``; with ``c > 0`` the optimum lies on the sphere and equals
    ``g0 + c‖g0‖ g_w/‖g_w‖`` from the dual.
    """
    g0 = jacobian.mean(axis=0)
    radius = c * float(np.linalg.norm(g0))
    d, t = cp.Variable(jacobian.shape[1]), cp.Variable()
    problem = cp.Problem(cp.Maximize(t), [jacobian @ d >= t, cp.norm(d - g0) <= radius])
    _solve(problem)
    return np.asarray(d.value)
