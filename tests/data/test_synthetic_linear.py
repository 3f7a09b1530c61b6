"""Structured linear generators: the promised W, designs, sizes, seeding and errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from polytask.data.synthetic import SyntheticTasks, clustered, dirty, group_sparse, low_rank

GENERATORS: dict[str, tuple[Callable[..., SyntheticTasks], dict[str, Any]]] = {
    "group_sparse": (group_sparse, {"n_active": 3}),
    "low_rank": (low_rank, {"rank": 2}),
    "clustered": (clustered, {"n_clusters": 2}),
    "dirty": (dirty, {"n_shared_active": 2, "n_task_specific": 2}),
}


def _make(name, n_samples=20, n_features=10, n_tasks=4, **kwargs) -> SyntheticTasks:
    fn, structure = GENERATORS[name]
    return fn(n_samples, n_features, n_tasks, **{**structure, **kwargs})


def _shared(tasks: SyntheticTasks) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)`` of a shared-design problem (narrowed for the type checker)."""
    assert isinstance(tasks.X, np.ndarray) and isinstance(tasks.Y, np.ndarray)
    return tasks.X, tasks.Y


@pytest.mark.parametrize("name", GENERATORS)
class TestCommon:
    def test_shared_design_responses_are_linear(self, name):
        tasks = _make(name, noise=0.0, random_state=0)
        X, Y = _shared(tasks)
        assert X.shape == (20, 10) and Y.shape == (20, 4)
        assert X.dtype == Y.dtype == np.float64
        np.testing.assert_allclose(Y, X @ tasks.truth["W"], atol=1e-12)
        assert tasks.truth["W"].shape == (10, 4)

    def test_per_task_sizes_are_respected(self, name):
        tasks = _make(name, n_samples=[3, 8, 5, 11], noise=0.0, random_state=0)
        assert not tasks.shared_design
        assert [x.shape for x in tasks.X] == [(3, 10), (8, 10), (5, 10), (11, 10)]
        assert [y.shape for y in tasks.Y] == [(3,), (8,), (5,), (11,)]
        for t in range(4):
            X_t, y_t = tasks.task(t)
            np.testing.assert_allclose(y_t, X_t @ tasks.truth["W"][:, t], atol=1e-12)

    def test_int_size_with_separate_designs(self, name):
        tasks = _make(name, n_samples=6, shared_design=False, random_state=0)
        assert [x.shape for x in tasks.X] == [(6, 10)] * 4
        assert not np.allclose(tasks.X[0], tasks.X[1])  # independent designs

    def test_noise_level(self, name):
        tasks = _make(name, n_samples=5000, noise=0.5, random_state=1)
        X, Y = _shared(tasks)
        residual = Y - X @ tasks.truth["W"]
        assert tasks.truth["noise"] == 0.5
        # the sample std of 20000 N(0, 0.25) draws is within 0.5 · 4/sqrt(2·20000) = 0.01
        assert residual.std() == pytest.approx(0.5, abs=0.01)

    def test_same_seed_same_data(self, name):
        a, b = _make(name, random_state=5), _make(name, random_state=np.random.default_rng(5))
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.Y, b.Y)
        np.testing.assert_array_equal(a.truth["W"], b.truth["W"])

    def test_different_seed_different_data(self, name):
        a, b = _make(name, random_state=5), _make(name, random_state=6)
        assert not np.allclose(a.X, b.X) and not np.allclose(a.truth["W"], b.truth["W"])

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"n_samples": -1}, "n_samples must be >= 1"),
            ({"n_samples": 0}, "n_samples must be >= 1"),
            ({"n_samples": [4, 4, -2, 4]}, r"n_samples\[2\] must be >= 1"),
            ({"n_samples": [4, 4]}, "n_samples gives 2 per-task sizes but n_tasks=4"),
            ({"n_samples": [4] * 4, "shared_design": True}, "shared_design=True needs an int"),
            ({"n_features": 0}, "n_features must be >= 1"),
            ({"n_tasks": 0}, "n_tasks must be >= 1"),
            ({"noise": -0.1}, "noise must be finite and >= 0.0"),
            ({"noise": np.inf}, "noise must be finite"),
            ({"feature_correlation": 1.0}, r"feature_correlation must be in \(-1, 1\)"),
            ({"feature_correlation": -1.5}, "feature_correlation must be finite and >= -1.0"),
            ({"random_state": -3}, "random_state must be a non-negative int"),
        ],
    )
    def test_bad_values(self, name, kwargs, match):
        with pytest.raises(ValueError, match=match):
            _make(name, **kwargs)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"n_samples": 5.5}, "n_samples must be an int or a sequence"),
            ({"n_samples": "20"}, "n_samples must be an int or a sequence"),
            ({"n_samples": [4, 4.5, 4, 4]}, r"n_samples\[1\] must be an int"),
            ({"shared_design": "yes"}, "shared_design must be a bool or None"),
            ({"n_features": 10.0}, "n_features must be an int"),
            ({"noise": "low"}, "noise must be a real number"),
            ({"random_state": "seed"}, "random_state must be an int, a numpy.random.Generator"),
        ],
    )
    def test_bad_types(self, name, kwargs, match):
        with pytest.raises(TypeError, match=match):
            _make(name, **kwargs)


@pytest.mark.parametrize("rho", [-0.5, 0.3, 0.8])
def test_feature_correlation_is_ar1(rho):
    X, _ = _shared(group_sparse(20_000, 4, 1, 1, feature_correlation=rho, random_state=0))
    C = np.asarray(np.corrcoef(X.T))
    expected = rho ** np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
    np.testing.assert_allclose(C, expected, atol=0.03)  # s.e. of each entry <= 1/sqrt(n)
    np.testing.assert_allclose(X.var(axis=0), 1.0, atol=0.05)


@pytest.mark.parametrize("n_active", [0, 1, 4, 12])
def test_group_sparse_row_support(n_active):
    tasks = group_sparse(5, n_features=12, n_tasks=3, n_active=n_active, random_state=n_active)
    W, support = tasks.truth["W"], tasks.truth["support"]
    assert support.shape == (n_active,)
    assert np.all(np.diff(support) > 0)  # sorted, distinct
    np.testing.assert_array_equal(np.flatnonzero(np.any(W != 0, axis=1)), support)
    assert np.all((np.abs(W[support]) >= 0.5) & (np.abs(W[support]) <= 1.5))  # every task


@pytest.mark.parametrize(
    ("n_features", "n_tasks", "rank"), [(10, 6, 1), (10, 6, 3), (10, 6, 6), (4, 9, 4)]
)
def test_low_rank_has_the_requested_rank(n_features, n_tasks, rank):
    t = low_rank(5, n_features, n_tasks, rank=rank, random_state=0).truth
    assert t["rank"] == rank
    assert np.linalg.matrix_rank(t["W"]) == rank
    np.testing.assert_allclose(t["W"], t["left_factor"] @ t["right_factor"].T)


@pytest.mark.parametrize(("n_tasks", "n_clusters"), [(6, 1), (6, 2), (7, 3), (5, 5)])
def test_clustered_structure(n_tasks, n_clusters):
    t = clustered(5, 30, n_tasks, n_clusters, within_cluster_std=0.1, random_state=0).truth
    W, ids, centers = t["W"], t["clusters"], t["centers"]
    assert ids.shape == (n_tasks,) and centers.shape == (30, n_clusters)
    counts = np.bincount(ids, minlength=n_clusters)
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1  # balanced, none empty
    dist = np.linalg.norm(W[:, :, None] - W[:, None, :], axis=0)
    same = ids[:, None] == ids[None, :]
    off_diagonal = ~np.eye(n_tasks, dtype=bool)
    if n_clusters > 1 and np.any(same & off_diagonal):
        assert dist[same & off_diagonal].max() < dist[~same].min()
    # deviations from the centres have the requested spread (30·n_tasks draws)
    assert np.std(W - centers[:, ids]) == pytest.approx(0.1, rel=0.25)


def test_clustered_zero_spread_gives_identical_tasks_in_a_cluster():
    t = clustered(5, 8, 6, 2, within_cluster_std=0.0, random_state=0).truth
    np.testing.assert_array_equal(t["W"], t["centers"][:, t["clusters"]])


@pytest.mark.parametrize(("n_shared", "n_specific"), [(0, 3), (3, 0), (3, 2), (4, 8)])
def test_dirty_decomposition(n_shared, n_specific):
    t = dirty(5, 12, 4, n_shared, n_specific, random_state=1).truth
    W, B, S, support = t["W"], t["B"], t["S"], t["shared_support"]
    np.testing.assert_array_equal(B + S, W)
    assert support.shape == (n_shared,)
    np.testing.assert_array_equal(np.flatnonzero(np.any(B != 0, axis=1)), support)
    assert np.all(B[support] != 0)  # shared rows are active in every task
    np.testing.assert_array_equal((S != 0).sum(axis=0), [n_specific] * 4)
    assert not np.any(S[support])  # task-specific entries avoid the shared rows


class TestStructureErrors:
    def test_n_active_larger_than_n_features(self):
        with pytest.raises(ValueError, match=r"n_active must be in \[0, 10\]; got 11"):
            group_sparse(5, 10, 2, n_active=11)

    @pytest.mark.parametrize("rank", [0, 5])
    def test_rank_out_of_range(self, rank):
        with pytest.raises(ValueError, match=rf"rank must be in \[1, 4\]; got {rank}"):
            low_rank(5, 10, 4, rank=rank)

    @pytest.mark.parametrize("n_clusters", [0, 5])
    def test_n_clusters_out_of_range(self, n_clusters):
        with pytest.raises(ValueError, match=rf"n_clusters must be in \[1, 4\]; got {n_clusters}"):
            clustered(5, 10, 4, n_clusters=n_clusters)

    def test_negative_within_cluster_std(self):
        with pytest.raises(ValueError, match=r"within_cluster_std must be finite and >= 0\.0"):
            clustered(5, 10, 4, 2, within_cluster_std=-0.1)

    def test_dirty_shared_too_large(self):
        with pytest.raises(ValueError, match=r"n_shared_active must be in \[0, 10\]"):
            dirty(5, 10, 4, n_shared_active=11, n_task_specific=0)

    def test_dirty_specific_does_not_fit(self):
        with pytest.raises(ValueError, match=r"n_task_specific .* must be in \[0, 2\]; got 3"):
            dirty(5, 10, 4, n_shared_active=8, n_task_specific=3)

    def test_negative_n_active(self):
        with pytest.raises(ValueError, match=r"n_active must be in \[0, 10\]; got -1"):
            group_sparse(5, 10, 2, n_active=-1)
