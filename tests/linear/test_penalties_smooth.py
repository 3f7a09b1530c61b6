"""Tests of the smooth penalties of polytask.linear.

References: finite differences (scipy's check_grad), loops written from the papers'
formulas, cvxpy (Clarabel) for the quadratic proxes and for the clustered-MTL SDP.
"""

from __future__ import annotations

from typing import Any

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse
from scipy.optimize import check_grad

from polytask.linear._penalties import (
    Clustered,
    GraphRegularized,
    MeanRegularized,
    Ridge,
)

TIGHT = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9}


def solve(problem: cp.Problem) -> float:
    problem.solve(solver=cp.CLARABEL, **TIGHT)
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
    return float(problem.value)


# name -> (class, Omega as a cvxpy expression, Omega* as a cvxpy expression)


def structured(seed: int, shape: tuple[int, int] = (6, 4)) -> np.ndarray:
    """A random matrix with rows of very different scales (so proxes zero some out)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * rng.uniform(0.05, 2.0, size=(shape[0], 1))


# ---------------------------------------------------------------- smooth penalties
CHAIN = np.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 2.0, 0.0], [0.0, 2.0, 0.0, 0.5], [0, 0, 0.5, 0]])


def chain_incidence() -> np.ndarray:
    cols = []
    for s in range(4):
        for t in range(s + 1, 4):
            if CHAIN[s, t] > 0:
                col = np.zeros(4)
                col[s], col[t] = np.sqrt(CHAIN[s, t]), -np.sqrt(CHAIN[s, t])
                cols.append(col)
    return np.array(cols).T


SMOOTH: dict[str, Any] = {
    "Ridge": Ridge(alpha=0.7),
    "MeanRegularized": MeanRegularized(alpha=1.3, beta=0.2),
    "GraphAdjacency": GraphRegularized(alpha=0.6, graph=CHAIN),
    "GraphIncidence": GraphRegularized(alpha=0.6, graph=chain_incidence(), kind="incidence"),
    "Clustered1": Clustered(alpha=1.0, beta=0.3, n_clusters=1),
    "Clustered2": Clustered(alpha=2.0, beta=0.5, n_clusters=2),
    "Clustered4": Clustered(alpha=0.5, beta=0.1, n_clusters=4),
}
SMOOTH_NAMES = sorted(SMOOTH)


@pytest.mark.parametrize("name", SMOOTH_NAMES)
@pytest.mark.parametrize("shape", [(6, 4), (2, 4)])
def test_smooth_gradient_check_grad(name: str, shape: tuple[int, int]) -> None:
    pen = SMOOTH[name]
    pen.validate()
    assert (pen.n_blocks, pen.smooth, pen.is_norm) == (1, True, False)
    w0 = np.random.default_rng(0).standard_normal(shape).ravel()
    err = check_grad(
        lambda w: pen.value(w.reshape(shape)),
        lambda w: pen.gradient(w.reshape(shape)).ravel(),
        w0,
    )
    assert err <= 1e-5 * max(1.0, float(np.linalg.norm(pen.gradient(w0.reshape(shape)))))


@pytest.mark.parametrize("name", SMOOTH_NAMES)
def test_smooth_lipschitz_bound(name: str) -> None:
    pen = SMOOTH[name]
    L = pen.lipschitz(6, 4)
    rng = np.random.default_rng(1)
    ratios = []
    for _ in range(30):
        A, B = rng.standard_normal((2, 6, 4)) * rng.uniform(0.01, 3)
        ratio = np.linalg.norm(pen.gradient(A) - pen.gradient(B)) / np.linalg.norm(A - B)
        ratios.append(ratio)
    assert max(ratios) <= L * (1 + 1e-12)


@pytest.mark.parametrize("name", ["Ridge", "MeanRegularized", "GraphAdjacency"])
def test_quadratic_lipschitz_is_attained(name: str) -> None:
    # For a quadratic g(W) = <W, W H> the best constant is 2 lambda_max(H) (Ridge: H = a/2 I);
    # build H independently and check the bound is attained along its top eigenvector.
    pen = SMOOTH[name]
    E = np.eye(4)
    H = np.array([[pen.value(np.outer([1.0], E[s] + E[t])) for t in range(4)] for s in range(4)])
    diag = np.array([pen.value(np.outer([1.0], E[s])) for s in range(4)])
    H = (H - diag[:, None] - diag[None, :]) / 2  # polarisation: H_st for s != t
    np.fill_diagonal(H, diag)
    top = np.linalg.eigh(H)[1][:, -1]
    D = np.outer(np.ones(6), top)
    ratio = np.linalg.norm(pen.gradient(D)) / np.linalg.norm(D)
    assert ratio == pytest.approx(pen.lipschitz(6, 4), rel=1e-10)


def test_mean_regularized_value_loop() -> None:
    W = structured(3)
    alpha, beta = 1.7, 0.4
    w_bar = sum(W[:, t] for t in range(4)) / 4
    ref = sum(
        alpha * np.sum((W[:, t] - w_bar) ** 2) + beta * np.sum(W[:, t] ** 2) for t in range(4)
    )
    assert MeanRegularized(alpha, beta).value(W) == pytest.approx(ref)
    assert MeanRegularized(alpha, beta).lipschitz(6, 1) == pytest.approx(2 * beta)


def test_graph_value_loop_incidence_sparse_and_self_loops() -> None:
    W = structured(4)
    ref = sum(
        CHAIN[s, t] * np.sum((W[:, s] - W[:, t]) ** 2) for s in range(4) for t in range(s + 1, 4)
    )
    assert SMOOTH["GraphAdjacency"].value(W) == pytest.approx(0.6 * ref)
    assert SMOOTH["GraphIncidence"].value(W) == pytest.approx(0.6 * ref)
    looped = CHAIN + np.diag([1.0, 2.0, 0.0, 3.0])
    assert GraphRegularized(0.6, looped).value(W) == pytest.approx(0.6 * ref)
    sparse = GraphRegularized(0.6, scipy.sparse.csr_matrix(CHAIN))
    assert sparse.value(W) == pytest.approx(0.6 * ref)
    np.testing.assert_allclose(sparse.laplacian(), chain_incidence() @ chain_incidence().T)


@pytest.mark.parametrize("name", ["Ridge", "MeanRegularized", "GraphAdjacency"])
def test_quadratic_prox_matches_cvxpy(name: str) -> None:
    pen = SMOOTH[name]
    W, step = structured(5), 0.8
    Z = cp.Variable(W.shape)
    if name == "Ridge":
        g = pen.alpha / 2 * cp.sum_squares(Z)
    elif name == "MeanRegularized":
        g = pen.alpha * cp.sum_squares(Z - cp.sum(Z, axis=1, keepdims=True) / 4)
        g = g + pen.beta * cp.sum_squares(Z)
    else:
        g = pen.alpha * cp.sum_squares(Z @ chain_incidence())
    solve(cp.Problem(cp.Minimize(cp.sum_squares(Z - W) / (2 * step) + g)))
    Zp = pen.prox(W, step)
    np.testing.assert_allclose(Zp, np.asarray(Z.value), atol=1e-6)
    assert pen.subdiff_distance(Zp, (Zp - W) / step) <= 1e-10


@pytest.mark.parametrize("name", SMOOTH_NAMES)
def test_smooth_subdiff_distance(name: str) -> None:
    pen = SMOOTH[name]
    W = structured(6)
    g = pen.gradient(W)
    assert pen.subdiff_distance(W, -g) <= 1e-12
    assert pen.subdiff_distance(W, np.zeros_like(W)) == pytest.approx(np.linalg.norm(g))


def cvx_cluster_sdp(W: np.ndarray, eta: float, k: int) -> tuple[np.ndarray, float]:
    T = W.shape[1]
    M = cp.Variable((T, T), symmetric=True)
    objective = cp.matrix_frac(W.T, eta * np.eye(T) + M)
    constraints = [M >> 0, np.eye(T) - M >> 0, cp.trace(M) == k]
    opt = solve(cp.Problem(cp.Minimize(objective), constraints))
    return np.asarray(M.value), opt


@pytest.mark.parametrize(
    ("alpha", "beta", "k", "seed", "shape"),
    [
        (1.0, 0.3, 1, 0, (6, 4)),
        (2.0, 0.5, 2, 1, (6, 4)),
        (0.5, 0.4, 3, 2, (6, 4)),
        (1.0, 0.2, 2, 3, (2, 5)),  # fewer features than tasks: thin-SVD path
    ],
)
def test_clustered_matches_sdp(
    alpha: float, beta: float, k: int, seed: int, shape: tuple[int, int]
) -> None:
    W = structured(seed, shape)
    eta = beta / alpha
    pen = Clustered(alpha, beta, k)
    M_ref, opt = cvx_cluster_sdp(W, eta, k)
    np.testing.assert_allclose(pen.cluster_matrix(W), M_ref, atol=2e-5)
    assert pen.value(W) == pytest.approx(alpha * eta * (1 + eta) * opt, rel=1e-7)


def test_clustered_rank_below_k_matches_sdp_optimum() -> None:
    # rank(W) = 2 < k = 3: M* is not unique, but ours must be feasible and optimal.
    W, eta, k = structured(4, (2, 5)), 0.5, 3
    pen = Clustered(alpha=1.0, beta=eta, n_clusters=k)
    M = pen.cluster_matrix(W)
    eig = np.linalg.eigvalsh(M)
    assert np.trace(M) == pytest.approx(k) and eig.min() > -1e-12 and eig.max() < 1 + 1e-12
    _, opt = cvx_cluster_sdp(W, eta, k)
    ours = np.trace(W @ np.linalg.solve(eta * np.eye(5) + M, W.T))
    assert ours == pytest.approx(opt, rel=1e-7)
    assert pen.value(W) == pytest.approx(eta * (1 + eta) * opt, rel=1e-7)


def test_clustered_matrix_recovers_clusters_and_bounds() -> None:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((8, 2)) * 3
    W = centres[:, [0, 0, 0, 1, 1, 1]] + 0.05 * rng.standard_normal((8, 6))
    pen = Clustered(alpha=1.0, beta=0.1, n_clusters=2)
    M = pen.cluster_matrix(W)
    eig = np.linalg.eigvalsh(M)
    assert np.trace(M) == pytest.approx(2.0)
    assert eig.min() >= -1e-12 and eig.max() <= 1 + 1e-12
    same = M[np.ix_([0, 1, 2], [0, 1, 2])].mean(), M[np.ix_([3, 4, 5], [3, 4, 5])].mean()
    across = M[np.ix_([0, 1, 2], [3, 4, 5])].mean()
    assert min(same) > 0.3 > abs(across)
    frob = np.sum(W**2)
    assert 0.1 * frob <= pen.value(W) <= 1.1 * frob


def test_clustered_rank_deficient_and_zero() -> None:
    pen = Clustered(alpha=1.0, beta=0.5, n_clusters=3)
    W = np.outer(np.arange(1.0, 4.0), [1.0, -1.0, 2.0, 0.5])  # rank 1 < k
    assert (
        check_grad(
            lambda w: pen.value(w.reshape(3, 4)),
            lambda w: pen.gradient(w.reshape(3, 4)).ravel(),
            W.ravel(),
        )
        < 1e-5
    )
    M = pen.cluster_matrix(W)
    assert np.trace(M) == pytest.approx(3.0)
    assert np.array_equal(pen.gradient(np.zeros((3, 4))), np.zeros((3, 4)))
    assert pen.value(np.zeros((3, 4))) == 0.0
