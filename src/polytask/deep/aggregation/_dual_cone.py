r"""All the projections of one step onto the dual cone, solved together.

UPGrad needs, for every task ``i``, the weights ``v_i = e_i + λ_i`` of the projection of
``g_i`` onto the dual cone ``{x : J x ≥ 0}``, where ``λ_i`` solves the box-constrained
quadratic program

.. math:: \min_{λ \ge 0} \tfrac12 λ^\top G λ + c_i^\top λ, \qquad c_i = G e_i,

whose optimality conditions are the linear complementarity problem

.. math:: λ \ge 0, \quad μ = G λ + c_i \ge 0, \quad λ \odot μ = 0

(``μ = G v_i`` is ``J x / scale`` at the projection).  The ``m`` problems share ``G``,
so they are solved *together*, by a primal-dual active-set method (a semismooth Newton
method for the complementarity conditions): given the set ``F`` of free coordinates,
``λ_F`` solves ``G_FF λ_F = −c_F`` and ``λ = 0`` elsewhere; the next free set is
``{j : λ_j > μ_j}``; the method stops when the set repeats, which makes ``(λ, μ)`` an
exact solution of the complementarity conditions.  One iteration is one batched
``(m, k, k)`` linear solve for all the problems, ``k`` the largest free set (each
problem's ``G_FF``, padded with identity rows and columns), so there is no Python-level
work per problem.  Started from
``λ = 0``, the first free set is the set of tasks that conflict with ``g_i``; on
Gramians of nearly orthogonal or weakly conflicting gradients the method stops after
two or three iterations.

The method is only used on a numerically positive definite Gramian (every principal
submatrix ``G_FF`` is then invertible with a condition number at most that of ``G``).
Each solution is certified by its own optimality conditions.  A problem that does not
stop within the iteration budget or fails the certificate, and every problem of a
(numerically) singular Gramian, is handed to the exact Lawson–Hanson solves of
:mod:`~polytask.deep.aggregation._linalg` (``dual_cone_projection``,
``dual_cone_weights``), which report their own failures with an
:class:`~polytask.deep.aggregation.AggregationWarning`.  Both paths solve the same
problem on the same rescaled Gramian, so the weights agree to rounding.

References
----------
.. [1] P. Quinton and V. Rey, "Jacobian Descent for Multi-Objective Optimization",
   arXiv:2406.16232, 2024.
.. [2] M. Hintermüller, K. Ito and K. Kunisch, "The primal-dual active set strategy as a
   semismooth Newton method", *SIAM J. Optim.* 13(3), 2002.
.. [3] C. L. Lawson and R. J. Hanson, *Solving Least Squares Problems*, SIAM, 1995.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from . import _linalg
from ._base import Array

MIN_EIGENVALUE = 1e-8
"""Smallest eigenvalue of ``G / max_i G_ii`` for which the batched method is used."""

ITERATION_FACTOR = 2
"""The batched method runs at most ``ITERATION_FACTOR * m + 4`` iterations."""

Mask = NDArray[np.bool_]


def primal_dual_active_set(gramian: Array, max_iter: int) -> tuple[Array, Array, Mask]:
    """Solve ``min_{λ_i ≥ 0} ½ λ_iᵀ G λ_i + (G e_i)ᵀ λ_i`` for every ``i`` at once.

    Parameters
    ----------
    gramian : ndarray of shape (m, m)
        Symmetric positive definite ``G`` (scaled so that ``max_i G_ii = 1``).
    max_iter : int
        Iteration budget, shared by all the problems (at least 1).

    Returns
    -------
    lam : ndarray of shape (m, m)
        Row ``i`` is ``λ_i`` of the last iteration (``λ_F > 0`` and ``λ = 0`` off the
        free set where ``stopped``; arbitrary elsewhere).
    slack : ndarray of shape (m, m)
        Row ``i`` is ``μ_i = G (e_i + λ_i)``, computed from ``lam``.
    stopped : ndarray of shape (m,)
        Whether problem ``i``'s free set repeated in the last iteration, i.e. whether
        ``(λ_i, μ_i)`` solves its complementarity conditions.
    """
    # From λ = 0 the multipliers are μ = c_i = G e_i (row i of G): the first free set
    # is the set of tasks that conflict with task i.  A problem whose set repeats would
    # keep the same λ (and set) when solved again: it is left as it is from then on.
    m = gramian.shape[0]
    free: Mask = gramian < 0.0
    lam: Array = np.zeros((m, m))
    slack: Array = gramian.copy()  # row i = (G v_i)ᵀ with v_i = e_i + λ_i
    stopped: Mask = np.zeros(m, dtype=bool)
    for _ in range(max(max_iter, 1)):
        rows = np.flatnonzero(~stopped)
        lam_r = _free_set_solve(gramian, free[rows], gramian[rows])
        lam[rows] = lam_r
        slack[rows] = lam_r @ gramian + gramian[rows]
        # next free set {j : λ_j > μ_j}, with μ_F = 0 by construction
        new_free = lam_r > np.where(free[rows], 0.0, slack[rows])
        stopped[rows] = (new_free == free[rows]).all(axis=1)
        free[rows] = new_free
        if stopped.all():
            break
    return lam, slack, stopped


def _free_set_solve(gramian: Array, free: Mask, rows: Array | None = None) -> Array:
    """Row ``r``: ``λ_F = −(G_FF)⁻¹ c_F`` on problem ``r``'s free set ``F``, 0 elsewhere.

    ``free`` holds the free sets of the problems whose linear terms ``c_i = G e_i`` are
    the rows ``rows`` of ``G`` (all of them when None). The systems are gathered to the
    largest free set ``k`` (padded with identity rows) and solved as one ``(r, k, k)``
    batch: ``r k³`` work instead of ``m⁴`` (about half the tasks conflict on ToxCast's
    617 assays).
    """
    c = gramian if rows is None else rows
    n, m = free.shape
    k = int(free.sum(axis=1).max()) if n else 0
    lam = np.zeros((n, m))
    if k == 0:
        return lam
    order = np.argsort(~free, axis=1, kind="stable")[:, :k]  # free coordinates first
    valid = np.take_along_axis(free, order, axis=1)
    keep = valid.astype(gramian.dtype)
    systems = gramian[order[:, :, None], order[:, None, :]]
    systems *= keep[:, :, None]  # padding: identity rows and columns (in place, no copies)
    systems *= keep[:, None, :]
    diagonal = np.arange(k)
    systems[:, diagonal, diagonal] += 1.0 - keep
    rhs = np.where(valid, -np.take_along_axis(c, order, axis=1), 0.0)  # c_F = G[i, F]
    sol = np.linalg.solve(systems, rhs[:, :, None])[:, :, 0]
    np.put_along_axis(lam, order, np.where(valid, sol, 0.0), axis=1)
    return lam


def kkt_violation(lam: Array, slack: Array) -> Array:
    """Largest violation of ``μ_i ≥ 0`` and ``λ_i ⊙ μ_i = 0`` for each row ``i``.

    ``lam`` and ``slack`` have shape ``(m, m)`` (rows ``λ_i`` and ``μ_i = G v_i``); the
    result has shape ``(m,)`` and is 0 at an exact solution.
    """
    negative = np.maximum(-slack.min(axis=1), 0.0)
    result: Array = np.maximum(negative, np.abs(lam * slack).max(axis=1))
    return result


def dual_cone_weights_batched(gramian: Array, what: str = "UPGrad") -> Array:
    """Weights of the projections of every ``g_i`` onto the dual cone, solved together.

    Same contract and result as
    :func:`~polytask.deep.aggregation._linalg.dual_cone_weights`: row ``i`` of the
    ``(m, m)`` result is ``v_i = argmin_{v ≥ e_i} vᵀ G v`` and a zero Gramian gives the
    identity.  The problems are solved by :func:`primal_dual_active_set`; those it does
    not certify (and every problem of a numerically singular Gramian) are solved by
    Lawson–Hanson instead.
    """
    m = gramian.shape[0]
    scale = _linalg.max_diag(gramian)
    if scale <= 0.0:
        return np.eye(m)
    scaled = gramian / scale
    if not float(np.linalg.eigvalsh(scaled)[0]) > MIN_EIGENVALUE:
        return _linalg.dual_cone_weights(gramian, what)
    lam, slack, stopped = primal_dual_active_set(scaled, ITERATION_FACTOR * m + 4)
    good = stopped & (kkt_violation(lam, slack) <= _linalg.KKT_TOL)
    weights: Array = np.eye(m) + lam
    if not good.all():
        factor = _linalg.psd_factor(scaled)
        eye = np.eye(m)
        for i in np.flatnonzero(~good):
            weights[i] = _linalg.dual_cone_projection(factor, eye[i], what)
    return weights
