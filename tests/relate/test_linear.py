"""Parameter relatedness of linear multi-task models."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.pairwise import cosine_similarity

from polytask.data import clustered
from polytask.linear import Clustered
from polytask.relate import (
    clustered_task_structure,
    mean_regularized_distances,
    task_weights,
    trace_norm_task_covariance,
    weight_cosine,
    weight_distance,
)


@pytest.mark.parametrize(("d", "T", "seed"), [(5, 3, 0), (2, 6, 1), (10, 4, 2)])
def test_cosine_and_distance_match_sklearn_and_scipy(d: int, T: int, seed: int) -> None:
    W = np.random.default_rng(seed).normal(size=(d, T))
    np.testing.assert_allclose(weight_cosine(W), cosine_similarity(W.T), atol=1e-12)
    np.testing.assert_allclose(weight_distance(W), cdist(W.T, W.T), atol=1e-12)


def test_estimator_coef_is_the_transpose_of_w() -> None:
    W = np.random.default_rng(3).normal(size=(4, 3))
    est = SimpleNamespace(coef_=W.T)
    np.testing.assert_array_equal(task_weights(est), W)
    np.testing.assert_allclose(weight_cosine(est), weight_cosine(W))
    np.testing.assert_allclose(weight_distance(est), weight_distance(W))


def test_zero_task_is_flagged() -> None:
    W = np.array([[1.0, 0.0, 2.0], [1.0, 0.0, -1.0]])
    cos, zero = weight_cosine(W, return_mask=True)
    assert zero.tolist() == [False, True, False]
    assert (cos[1] == 0).all() and np.isfinite(cos).all()


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (np.ones(3), "2-D"),
        (np.array([[1.0, np.nan]]), "finite"),
        (SimpleNamespace(coef_=np.array([[np.inf, 1.0]])), "coef_"),
    ],
)
def test_task_weights_errors(weights: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        task_weights(weights)


@pytest.mark.parametrize(
    ("d", "T", "seed", "tol"),
    [(6, 3, 0, 1e-4), (5, 5, 2, 1e-4), (3, 5, 1, 1e-3)],  # rank-deficient: singular optimum
)
def test_trace_norm_covariance_solves_the_variational_problem(
    d: int, T: int, seed: int, tol: float
) -> None:
    cp = pytest.importorskip("cvxpy")
    W = np.random.default_rng(seed).normal(size=(d, T))
    omega = trace_norm_task_covariance(W)
    assert np.trace(omega) == pytest.approx(1.0)
    assert np.linalg.eigvalsh(omega).min() > -1e-10
    # ||W||_*^2 = min { tr(W Omega^{-1} W^T) : Omega PSD, tr Omega = 1 }
    O = cp.Variable((T, T), PSD=True)
    problem = cp.Problem(cp.Minimize(cp.matrix_frac(W.T, O)), [cp.trace(O) == 1])
    problem.solve()
    nuclear = np.linalg.svd(W, compute_uv=False).sum()
    assert problem.value == pytest.approx(nuclear**2, rel=tol)
    np.testing.assert_allclose(omega, O.value, atol=20 * tol)
    value = np.trace(W @ np.linalg.pinv(omega) @ W.T)
    assert value == pytest.approx(nuclear**2, rel=1e-8)


@pytest.mark.parametrize("eps", [1e-3, 0.5])
def test_smoothed_covariance_matches_sqrtm(eps: float) -> None:
    W = np.random.default_rng(4).normal(size=(2, 4))  # rank 2 < 4 tasks
    root = np.real(scipy.linalg.sqrtm(W.T @ W + eps * np.eye(4)))
    np.testing.assert_allclose(
        trace_norm_task_covariance(W, eps=eps), root / np.trace(root), atol=1e-10
    )


def test_covariance_errors() -> None:
    with pytest.raises(ValueError, match="eps > 0"):
        trace_norm_task_covariance(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="eps"):
        trace_norm_task_covariance(np.ones((3, 2)), eps=-1.0)
    assert np.trace(trace_norm_task_covariance(np.zeros((3, 2)), eps=1.0)) == pytest.approx(1.0)


@pytest.mark.parametrize(("n_clusters", "seed"), [(2, 0), (3, 1), (4, 2)])
def test_clustered_structure_recovers_planted_clusters(n_clusters: int, seed: int) -> None:
    truth = clustered(20, n_features=30, n_tasks=8, n_clusters=n_clusters,
                      within_cluster_std=0.1, random_state=seed).truth
    W = truth["centers"][:, truth["clusters"]] + 0.05 * np.random.default_rng(seed).normal(
        size=(30, 8)
    )
    res = clustered_task_structure(W, n_clusters=n_clusters, random_state=0)
    assert adjusted_rand_score(truth["clusters"], res.labels) == 1.0
    assert res.labels[0] == 0  # numbered by first appearance
    assert np.trace(res.cluster_matrix) == pytest.approx(n_clusters)
    np.testing.assert_allclose(
        res.cluster_matrix, Clustered(n_clusters=n_clusters).cluster_matrix(W), atol=1e-12
    )


def test_clustered_structure_single_cluster_and_errors() -> None:
    W = np.random.default_rng(0).normal(size=(4, 3))
    assert clustered_task_structure(W, 1).labels.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="n_clusters"):
        clustered_task_structure(W, 4)
    with pytest.raises(ValueError, match="n_clusters"):
        clustered_task_structure(W, 0)
    with pytest.raises(ValueError, match="alpha"):
        clustered_task_structure(W, 2, alpha=-1.0)
    with pytest.raises(TypeError, match="random_state"):
        clustered_task_structure(W, 2, random_state="zero")  # type: ignore[arg-type]


def test_mean_regularized_distances() -> None:
    W = np.random.default_rng(5).normal(size=(4, 5))
    mean = W.mean(axis=1)
    expected = [np.linalg.norm(W[:, t] - mean) for t in range(5)]
    np.testing.assert_allclose(mean_regularized_distances(W), expected)
