"""Exact solvers for the small Gramian problems shared by several methods.

All functions take a symmetric positive semi-definite float64 Gramian ``G`` of shape
``(m, m)`` and work on a factor ``P`` with ``P Pᵀ = G``: row ``p_i`` of ``P`` is a
representation of task gradient ``g_i`` in ``R^m`` with the same inner products, so any
problem stated on the rows of ``J`` can be solved on the rows of ``P`` instead.

The quadratic programs are reduced to non-negative least squares (NNLS) and solved with
the Lawson–Hanson active-set method (``scipy.optimize.nnls``), which terminates with an
exact solution of the KKT system; every solution is then checked against its own
optimality conditions and an :class:`AggregationWarning` is emitted if that check fails.

References
----------
.. [1] C. L. Lawson and R. J. Hanson, *Solving Least Squares Problems*, SIAM, 1995.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import nnls

from ._base import AggregationWarning, Array

KKT_TOL = 1e-9
"""Tolerance of the optimality checks, relative to the largest squared gradient norm."""


def psd_factor(gramian: Array) -> Array:
    """Return ``P`` of shape ``(m, m)`` with ``P Pᵀ = G`` (negative eigenvalues clipped)."""
    eigvals, eigvecs = np.linalg.eigh(gramian)
    result: Array = eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))
    return result


def max_diag(gramian: Array) -> float:
    """Largest squared gradient norm ``max_i G_ii`` (0 for a zero Gramian)."""
    return float(np.max(np.diag(gramian))) if gramian.size else 0.0


def solve_nnls(a: Array, b: Array, what: str) -> Array:
    """``argmin_{x ≥ 0} ‖a x − b‖`` by Lawson–Hanson; raise if it does not terminate."""
    try:
        x, _ = nnls(a, b, maxiter=50 * max(a.shape[1], 1))
    except RuntimeError as err:  # scipy signals an exhausted iteration budget this way
        raise RuntimeError(
            f"{what}: the NNLS active-set solver did not terminate ({err})."
        ) from err
    result: Array = np.asarray(x, dtype=np.float64)
    return result


def min_norm_in_hull(factor: Array, what: str = "min-norm solver") -> Array:
    """Weights ``w`` in the simplex minimising ``‖Pᵀ w‖`` for a factor ``P`` (rows ``p_i``).

    Uses the reduction ``min_{u ≥ 0} ‖Pᵀu‖² + (1 − 1ᵀu)²``: writing ``u = t w`` with
    ``w`` in the simplex, the optimal ``t`` is ``1/(1 + ‖Pᵀw‖²)`` and the value
    ``‖Pᵀw‖²/(1 + ‖Pᵀw‖²)`` increases with ``‖Pᵀw‖``, so ``w = u/1ᵀu`` is the
    minimum-norm point of the convex hull of the rows.  ``u ≠ 0`` because ``u = 0`` has
    value 1 while any ``u = w/(1 + ‖Pᵀw‖²)`` has value below 1.
    """
    m = factor.shape[0]
    system = np.vstack([factor.T, np.ones((1, m))])
    target = np.zeros(system.shape[0])
    target[-1] = 1.0
    u = solve_nnls(system, target, what)
    total = float(u.sum())
    if not total > 0.0:
        raise RuntimeError(f"{what}: the NNLS solution is zero, which cannot be optimal.")
    result: Array = u / total
    return result


def simplex_gap(gramian: Array, weights: Array) -> float:
    """Frank–Wolfe gap ``wᵀGw − min_i (Gw)_i`` of ``min_{w∈Δ} wᵀGw`` (0 at the optimum)."""
    gw = gramian @ weights
    return float(weights @ gw - np.min(gw))


def min_norm_weights(gramian: Array, what: str = "MGDA") -> Array:
    """Exact ``argmin_{w ∈ Δ} wᵀ G w`` over the probability simplex ``Δ``.

    The Gramian is rescaled by its largest diagonal entry (the minimiser is invariant to
    scaling) and its negative eigenvalues, rounding errors of a PSD matrix, are clipped.
    A zero Gramian, for which every ``w`` is optimal, gives uniform weights.  The
    Frank–Wolfe gap certifies the result; an :class:`AggregationWarning` reports a gap
    above ``KKT_TOL``.
    """
    m = gramian.shape[0]
    scale = max_diag(gramian)
    if m == 1:
        return np.ones(1)
    if scale <= 0.0:
        return np.full(m, 1.0 / m)
    factor = psd_factor(gramian / scale)
    weights = min_norm_in_hull(factor, what)
    # Certify the problem actually solved: rounding can leave G slightly indefinite,
    # and its factor is the nearest PSD matrix, P Pᵀ.
    gap = simplex_gap(factor @ factor.T, weights)
    if gap > KKT_TOL:
        warnings.warn(
            f"{what}: the min-norm solution has optimality gap {gap:.3g} > {KKT_TOL:g} "
            "(relative to the largest squared gradient norm).",
            AggregationWarning,
            stacklevel=3,
        )
    return weights


def dual_cone_projection(factor: Array, coefficients: Array, what: str) -> Array:
    """Weights ``v ≥ c`` of the projection of ``Jᵀc`` onto the dual cone ``{x : J x ≥ 0}``.

    By Lagrange duality of ``min_x ‖x − Jᵀc‖²`` s.t. ``J x ≥ 0``, the projection is
    ``Jᵀ v`` with ``v = c + λ`` and ``λ = argmin_{λ ≥ 0} ‖Pᵀ(c + λ)‖²`` (one NNLS on the
    factor ``P``).  Its KKT conditions (``G v ≥ 0``, ``λ ⊙ G v = 0``) are checked and an
    :class:`AggregationWarning` reports a violation above ``KKT_TOL``.
    """
    lam = solve_nnls(factor.T, -(factor.T @ coefficients), what)
    weights: Array = coefficients + lam
    slack = factor @ (factor.T @ weights)  # = J x / scale: ≥ 0, and 0 where λ > 0
    violation = max(-float(np.min(slack)), float(np.max(np.abs(lam * slack))))
    if violation > KKT_TOL:
        warnings.warn(
            f"{what}: a projection onto the dual cone violates its optimality conditions "
            f"by {violation:.3g} > {KKT_TOL:g}.",
            AggregationWarning,
            stacklevel=4,
        )
    return weights


def dual_cone_weights(gramian: Array, what: str = "UPGrad") -> Array:
    """Weights of the projections of every ``g_i`` onto the dual cone ``{x : J x ≥ 0}``.

    Row ``i`` of the result is ``v_i = argmin_{v ≥ e_i} vᵀ G v``, so that ``Jᵀ v_i`` is
    the Euclidean projection of ``g_i`` onto the dual cone (see
    :func:`dual_cone_projection`).  A zero Gramian gives the identity.

    Returns
    -------
    ndarray of shape (m, m)
        Row ``i`` holds the weights of the projection of task ``i``'s gradient.
    """
    m = gramian.shape[0]
    scale = max_diag(gramian)
    if scale <= 0.0:
        return np.eye(m)
    factor = psd_factor(gramian / scale)
    return np.stack([dual_cone_projection(factor, row, what) for row in np.eye(m)])
