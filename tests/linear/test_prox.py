"""Tests of the pure proximal operators in polytask.linear._prox.

Every operator is checked against a generic convex solve with cvxpy (Clarabel, tight
tolerances) and against defining properties (zero maps to zero, non-expansiveness,
exact zeros below the threshold).
"""

from __future__ import annotations

from collections.abc import Callable

import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import brentq

from polytask.linear._prox import (
    cluster_eigenvalues,
    group_soft_threshold_cols,
    group_soft_threshold_rows,
    project_l1_ball,
    project_simplex,
    prox_linf_rows,
    singular_value_threshold,
    soft_threshold,
)

TIGHT = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9}


def solve(problem: cp.Problem) -> None:
    problem.solve(solver=cp.CLARABEL, **TIGHT)
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)


# Each prox function with the cvxpy expression of the function it is the prox of.
PROXES: dict[str, tuple[Callable, Callable]] = {
    "soft_threshold": (soft_threshold, lambda Z: cp.sum(cp.abs(Z))),
    "group_rows": (group_soft_threshold_rows, lambda Z: cp.sum(cp.norm(Z, 2, axis=1))),
    "group_cols": (group_soft_threshold_cols, lambda Z: cp.sum(cp.norm(Z, 2, axis=0))),
    "linf_rows": (prox_linf_rows, lambda Z: cp.sum(cp.max(cp.abs(Z), axis=1))),
    "svt": (singular_value_threshold, lambda Z: cp.normNuc(Z)),
}


def cvx_prox(W: np.ndarray, tau: float, expr: Callable) -> np.ndarray:
    Z = cp.Variable(W.shape)
    solve(cp.Problem(cp.Minimize(0.5 * cp.sum_squares(Z - W) + tau * expr(Z))))
    return np.asarray(Z.value)


@pytest.mark.parametrize("name", sorted(PROXES))
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("tau", [0.3, 1.2])
def test_prox_matches_cvxpy(name: str, seed: int, tau: float) -> None:
    func, expr = PROXES[name]
    W = np.random.default_rng(seed).standard_normal((6, 4))
    np.testing.assert_allclose(func(W, tau), cvx_prox(W, tau, expr), atol=1e-6)


@pytest.mark.parametrize("name", sorted(PROXES))
def test_prox_properties(name: str) -> None:
    func, _ = PROXES[name]
    rng = np.random.default_rng(3)
    assert np.array_equal(func(np.zeros((5, 3)), 0.7), np.zeros((5, 3)))
    A, B = rng.standard_normal((2, 5, 3))
    np.testing.assert_allclose(func(A, 0.0), A, atol=1e-12)
    for tau in (0.1, 0.5, 2.0):
        gap = np.linalg.norm(func(A, tau) - func(B, tau))
        assert gap <= np.linalg.norm(A - B) + 1e-12
    # Large enough thresholds send everything to exactly zero.
    assert np.array_equal(func(A, 100.0), np.zeros_like(A))


def test_soft_threshold_formula_and_exact_zeros() -> None:
    x = np.array([-2.5, -0.4, 0.0, 0.4, 1.0, 3.0])
    expected = [np.sign(v) * max(abs(v) - 1.0, 0.0) for v in x]
    np.testing.assert_allclose(soft_threshold(x, 1.0), expected)
    assert np.count_nonzero(soft_threshold(x, 1.0)) == 2  # |x| <= 1 gives exact zeros


def test_group_thresholds_zero_small_groups_exactly() -> None:
    W = np.array([[3.0, 4.0], [0.6, 0.8], [0.0, 0.0]])  # row norms 5, 1, 0
    Z = group_soft_threshold_rows(W, 1.0)
    assert np.array_equal(Z[1:], np.zeros((2, 2)))
    np.testing.assert_allclose(Z[0], W[0] * (1 - 1 / 5))
    np.testing.assert_allclose(group_soft_threshold_cols(W.T, 1.0), Z.T)


def test_group_soft_threshold_moreau_identity() -> None:
    # prox_{tau ||.||_{2,1}}(x) + Proj_{max_j ||.||_2 <= tau}(x) = x; the projection onto
    # the dual ball is a row-wise radial clip, written here independently.
    rng = np.random.default_rng(5)
    X = rng.standard_normal((8, 3)) * rng.uniform(0.1, 3, size=(8, 1))
    tau = 1.1
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    proj = X * np.minimum(1.0, tau / norms)
    np.testing.assert_allclose(group_soft_threshold_rows(X, tau) + proj, X, atol=1e-12)


def test_linf_rows_zero_and_clip_pattern() -> None:
    W = np.array([[0.3, -0.2, 0.1], [3.0, -2.0, 0.5]])
    Z = prox_linf_rows(W, 1.0)
    assert np.array_equal(Z[0], np.zeros(3))  # ||row||_1 = 0.6 <= 1
    # Entries above the level are clipped to exactly the same magnitude.
    assert abs(Z[1, 0]) == abs(Z[1, 1])
    np.testing.assert_allclose(Z[1], [2.0, -2.0, 0.5])  # theta = 2 by hand
    # Moreau: W - prox is the l1-ball projection of radius tau.
    np.testing.assert_allclose(W - Z, project_l1_ball(W, 1.0), atol=1e-12)


def test_svt_reduces_rank() -> None:
    rng = np.random.default_rng(2)
    U, _ = np.linalg.qr(rng.standard_normal((6, 4)))
    V, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    W = U @ np.diag([5.0, 2.0, 0.5, 0.1]) @ V.T
    Z = singular_value_threshold(W, 1.0)
    np.testing.assert_allclose(np.linalg.svd(Z, compute_uv=False), [4.0, 1.0, 0, 0], atol=1e-12)
    assert np.linalg.matrix_rank(Z) == 2


def cvx_l1_projection(v: np.ndarray, radius: float) -> np.ndarray:
    z = cp.Variable(v.shape)
    solve(cp.Problem(cp.Minimize(cp.sum_squares(z - v)), [cp.norm1(z) <= radius]))
    return np.asarray(z.value)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("radius", [0.5, 2.0])
def test_project_l1_ball_matches_cvxpy_and_bisection(seed: int, radius: float) -> None:
    v = np.random.default_rng(seed).standard_normal(7) * 1.5
    z = project_l1_ball(v, radius)
    np.testing.assert_allclose(z, cvx_l1_projection(v, radius), atol=1e-7)
    if np.abs(v).sum() > radius:
        theta = brentq(lambda t: np.maximum(np.abs(v) - t, 0).sum() - radius, 0, np.abs(v).max())
        np.testing.assert_allclose(z, np.sign(v) * np.maximum(np.abs(v) - theta, 0), atol=1e-10)
        assert np.isclose(np.abs(z).sum(), radius)


def test_project_l1_ball_rows_inside_and_zero_radius() -> None:
    V = np.array([[0.2, -0.1, 0.3], [4.0, -1.0, 0.0], [1.0, 1.0, 1.0]])
    Z = project_l1_ball(V, 1.0)
    np.testing.assert_array_equal(Z[0], V[0])  # already inside
    for row, z in zip(V, Z, strict=True):
        np.testing.assert_allclose(z, project_l1_ball(row, 1.0))
    np.testing.assert_allclose(Z[2], [1 / 3] * 3)
    assert np.array_equal(project_l1_ball(V, 0.0), np.zeros_like(V))


@pytest.mark.parametrize("seed", range(3))
def test_project_simplex_matches_cvxpy(seed: int) -> None:
    v = np.random.default_rng(seed).standard_normal(6)
    z = cp.Variable(6)
    solve(cp.Problem(cp.Minimize(cp.sum_squares(z - v)), [z >= 0, cp.sum(z) == 2.0]))
    np.testing.assert_allclose(project_simplex(v, 2.0), np.asarray(z.value), atol=1e-7)
    np.testing.assert_allclose(
        project_simplex(np.stack([v, -v]), 2.0)[0], np.asarray(z.value), atol=1e-7
    )


def cvx_cluster_eigenvalues(sigma: np.ndarray, eta: float, k: float) -> tuple[np.ndarray, float]:
    m = cp.Variable(sigma.size)
    objective = cp.sum(cp.multiply(sigma, cp.inv_pos(eta + m)))
    problem = cp.Problem(cp.Minimize(objective), [cp.sum(m) == k, m >= 0, m <= 1])
    solve(problem)
    return np.asarray(m.value), float(problem.value)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("eta", "k"), [(0.1, 1), (0.5, 2), (2.0, 3), (0.05, 2.5)])
def test_cluster_eigenvalues_matches_cvxpy(seed: int, eta: float, k: float) -> None:
    sigma = np.random.default_rng(seed).exponential(size=5) ** 2
    m = cluster_eigenvalues(sigma, eta, k)
    m_ref, opt = cvx_cluster_eigenvalues(sigma, eta, k)
    assert np.isclose(m.sum(), k, atol=1e-12)
    assert np.all((m >= 0) & (m <= 1))
    # The exact solution is never worse than the interior-point one (up to its
    # feasibility slack); the flat objective leaves the solver's m accurate to ~1e-4.
    assert np.sum(sigma / (eta + m)) == pytest.approx(opt, rel=1e-8)
    np.testing.assert_allclose(m, m_ref, atol=1e-4)


def test_cluster_eigenvalues_kkt() -> None:
    # Stationarity: sigma_i / (eta + m_i)^2 is the same for all 0 < m_i < 1, no larger
    # where m_i = 0 and no smaller where m_i = 1.
    sigma = np.array([25.0, 9.0, 4.0, 1.0, 0.25, 0.01])
    m = cluster_eigenvalues(sigma, 0.3, 2)
    slope = sigma / (0.3 + m) ** 2
    free = (m > 0) & (m < 1)
    assert free.sum() >= 2
    np.testing.assert_allclose(slope[free], slope[free][0], rtol=1e-10)
    assert np.all(slope[m == 0] <= slope[free][0] + 1e-12)
    assert np.all(slope[m == 1] >= slope[free][0] - 1e-12)


def test_cluster_eigenvalues_edge_cases() -> None:
    np.testing.assert_allclose(cluster_eigenvalues([3.0, 1.0, 0.0], 0.5, 3), [1, 1, 1])
    # Fewer positive eigenvalues than clusters: they saturate, the rest share the trace.
    np.testing.assert_allclose(
        cluster_eigenvalues([4.0, 0.0, 0.0, 0.0], 0.5, 2), [1, 1 / 3, 1 / 3, 1 / 3]
    )
    np.testing.assert_allclose(cluster_eigenvalues(np.zeros(4), 1.0, 2), [0.5] * 4)
    # Equal eigenvalues share equally.
    np.testing.assert_allclose(cluster_eigenvalues([2.0, 2.0, 2.0], 0.2, 1), [1 / 3] * 3)


BAD_THRESHOLD = [
    (-0.1, ValueError),
    (np.nan, ValueError),
    (np.inf, ValueError),
    (True, TypeError),
    ("1", TypeError),
]


@pytest.mark.parametrize("name", sorted(PROXES))
@pytest.mark.parametrize(("bad", "error"), BAD_THRESHOLD)
def test_prox_threshold_errors(name: str, bad: object, error: type) -> None:
    func, _ = PROXES[name]
    with pytest.raises(error, match="threshold"):
        func(np.ones((2, 2)), bad)


@pytest.mark.parametrize(
    "func",
    [
        group_soft_threshold_rows,
        group_soft_threshold_cols,
        prox_linf_rows,
        singular_value_threshold,
    ],
)
def test_matrix_prox_needs_2d(func: Callable) -> None:
    with pytest.raises(ValueError, match="W must be 2-D"):
        func(np.ones(3), 1.0)
    with pytest.raises(TypeError, match="W must be an array of numbers"):
        func([["a", "b"]], 1.0)


def test_projection_errors() -> None:
    with pytest.raises(ValueError, match="radius must be a finite number >= 0"):
        project_l1_ball([1.0], -1.0)
    with pytest.raises(ValueError, match="v must be 1-D or 2-D"):
        project_l1_ball(np.ones((2, 2, 2)), 1.0)
    with pytest.raises(ValueError, match="radius must be > 0"):
        project_simplex([1.0], 0.0)
    with pytest.raises(ValueError, match="v must be 1-D or 2-D"):
        project_simplex(np.ones((2, 2, 2)))


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([1.0, -1.0], 1.0, 1), ValueError, "sigma must hold finite eigenvalues >= 0"),
        (([1.0, np.nan], 1.0, 1), ValueError, "sigma must hold finite eigenvalues >= 0"),
        ((np.ones((2, 2)), 1.0, 1), ValueError, "sigma must be 1-D"),
        (([], 1.0, 1), ValueError, "sigma is empty"),
        (([1.0, 2.0], 0.0, 1), ValueError, "eta must be > 0"),
        (([1.0, 2.0], -1.0, 1), ValueError, "eta must be a finite number"),
        (([1.0, 2.0], 1.0, 3), ValueError, "n_clusters must be in"),
        (([1.0, 2.0], 1.0, 0), ValueError, "n_clusters must be in"),
        (([1.0, 2.0], 1.0, "2"), TypeError, "n_clusters must be a real number"),
    ],
)
def test_cluster_eigenvalues_errors(args: tuple, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        cluster_eigenvalues(*args)
