"""MMoE-style synthetic tasks and the SyntheticTasks container: promised structure, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from polytask.data.synthetic import SyntheticTasks, group_sparse, low_rank, mmoe_synthetic


def _shared(tasks: SyntheticTasks) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)`` of a shared-design problem (narrowed for the type checker)."""
    assert isinstance(tasks.X, np.ndarray) and isinstance(tasks.Y, np.ndarray)
    return tasks.X, tasks.Y


def _label_correlation(tasks: SyntheticTasks) -> float:
    return float(np.asarray(np.corrcoef(_shared(tasks)[1].T))[0, 1])


def _cosines(W: np.ndarray) -> np.ndarray:
    unit = W / np.linalg.norm(W, axis=0)
    return unit.T @ unit


def _singular_correlation() -> np.ndarray:
    """A 4x4 correlation matrix of rank 2 (PSD but not PD)."""
    V = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]])
    return V @ V.T


CORRELATIONS = [
    0.0,
    0.5,
    -0.3,
    1.0,
    -1.0,
    np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.5], [-0.2, 0.5, 1.0]]),
    _singular_correlation(),
]


@pytest.mark.parametrize("correlation", CORRELATIONS)
@pytest.mark.parametrize("c", [0.5, 2.0])
def test_weight_cosines_equal_the_requested_correlation(correlation, c):
    tasks = mmoe_synthetic(5, n_features=12, correlation=correlation, c=c, random_state=1)
    R = tasks.truth["correlation"]
    rho = correlation
    expected = rho if np.ndim(rho) else np.array([[1.0, rho], [rho, 1.0]])
    np.testing.assert_allclose(R, expected, atol=1e-15)
    W = tasks.truth["W"]
    np.testing.assert_allclose(_cosines(W), R, atol=1e-12)
    np.testing.assert_allclose(tasks.truth["weight_cosine"], R, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), c, rtol=1e-12)


def test_scalar_correlation_applies_to_every_pair():
    tasks = mmoe_synthetic(5, n_features=8, n_tasks=4, correlation=0.25, random_state=0)
    expected = np.full((4, 4), 0.25) + 0.75 * np.eye(4)
    np.testing.assert_allclose(_cosines(tasks.truth["W"]), expected, atol=1e-12)
    assert _shared(tasks)[1].shape == (5, 4)
    assert tasks.task_names == ("task_0", "task_1", "task_2", "task_3")


@pytest.mark.parametrize("n_sin", [0, 3])
def test_labels_follow_the_model(n_sin):
    tasks = mmoe_synthetic(50, n_features=6, n_tasks=3, n_sin=n_sin, noise=0.0, random_state=2)
    t = tasks.truth
    X, Y = _shared(tasks)
    assert t["alpha"].shape == t["beta"].shape == (n_sin,)
    for task in range(3):
        z = X @ t["W"][:, task]
        expected = z.copy()
        for a, b in zip(t["alpha"], t["beta"], strict=True):
            expected += np.sin(a * z + b)
        np.testing.assert_allclose(Y[:, task], expected, rtol=1e-12, atol=1e-12)


def _population_label_correlation(rho, c, alpha, beta, noise, n_nodes=80):
    """Corr(g(z1) + e1, g(z2) + e2) for (z1, z2) ~ N(0, c²[[1, ρ], [ρ, 1]]), by quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    weights = weights / weights.sum()
    s1, s2 = np.meshgrid(nodes, nodes, indexing="ij")
    w2 = np.outer(weights, weights)

    def g(z):
        return z + np.sin(z[..., None] * alpha + beta).sum(axis=-1)

    g1 = g(c * s1)
    g2 = g(c * (rho * s1 + np.sqrt(1 - rho**2) * s2))
    mean = np.sum(w2 * g1)
    var = np.sum(w2 * g1**2) - mean**2 + noise**2
    return (np.sum(w2 * g1 * g2) - mean**2) / var


def test_label_correlation_grows_with_rho_and_matches_its_population_value():
    n, rhos = 20_000, [0.0, 0.25, 0.5, 0.75, 1.0]
    measured = []
    for rho in rhos:  # same seed: same X, U, alpha, beta and noise for every rho
        tasks = mmoe_synthetic(n, n_features=10, correlation=rho, noise=0.1, random_state=7)
        measured.append(_label_correlation(tasks))
        t = tasks.truth
        expected = _population_label_correlation(rho, 1.0, t["alpha"], t["beta"], 0.1)
        # sampling s.e. of a correlation is about (1 - r²)/sqrt(n) <= 0.007 here
        assert measured[-1] == pytest.approx(expected, abs=0.03)
    assert np.all(np.diff(measured) > 0)


@pytest.mark.parametrize("rho", [-0.6, 0.0, 0.3, 0.9])
@pytest.mark.parametrize("kwargs", [{"n_sin": 0}, {"alpha_std": 0.0}])
def test_label_correlation_without_nonlinearity_is_rho_shrunk_by_noise(rho, kwargs):
    n, c, noise = 20_000, 1.5, 0.5
    tasks = mmoe_synthetic(n, 10, None, rho, c, noise=noise, random_state=3, **kwargs)
    expected = rho * c**2 / (c**2 + noise**2)
    tolerance = 5 * (1 - expected**2) / np.sqrt(n) + 1e-3
    assert _label_correlation(tasks) == pytest.approx(expected, abs=tolerance)


def test_default_settings_match_the_paper():
    tasks = mmoe_synthetic(10, random_state=0)
    X, Y = _shared(tasks)
    assert X.shape == (10, 100) and Y.shape == (10, 2)
    assert tasks.truth["alpha"].size == 10 and tasks.truth["noise"] == 0.01
    assert tasks.truth["weight_cosine"][0, 1] == pytest.approx(0.5)


class TestSeeding:
    def test_same_seed_same_data(self):
        a = mmoe_synthetic(20, n_features=5, random_state=11)
        b = mmoe_synthetic(20, n_features=5, random_state=np.random.default_rng(11))
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.Y, b.Y)
        np.testing.assert_array_equal(a.truth["W"], b.truth["W"])

    def test_different_seed_different_data(self):
        a = mmoe_synthetic(20, n_features=5, random_state=11)
        b = mmoe_synthetic(20, n_features=5, random_state=12)
        assert not np.allclose(a.X, b.X) and not np.allclose(a.truth["W"], b.truth["W"])

    def test_a_generator_is_advanced(self):
        rng = np.random.default_rng(0)
        a = mmoe_synthetic(20, n_features=5, random_state=rng)
        b = mmoe_synthetic(20, n_features=5, random_state=rng)
        assert not np.allclose(a.Y, b.Y)


class TestMMoEErrors:
    @pytest.mark.parametrize("rho", [1.5, -1.01, np.nan])
    def test_scalar_out_of_range(self, rho):
        with pytest.raises(ValueError, match=r"correlation must be finite and >= -1.0 and <= 1.0"):
            mmoe_synthetic(10, n_features=5, correlation=rho)

    def test_scalar_impossible_for_many_tasks(self):
        with pytest.raises(ValueError, match=r"correlation=-0.6 is impossible .* 3 tasks.*-0.5"):
            mmoe_synthetic(10, n_features=5, n_tasks=3, correlation=-0.6)

    def test_not_symmetric(self):
        with pytest.raises(ValueError, match="correlation must be a symmetric matrix"):
            mmoe_synthetic(10, n_features=5, correlation=[[1.0, 0.2], [0.3, 1.0]])

    def test_not_unit_diagonal(self):
        with pytest.raises(ValueError, match="correlation must have a unit diagonal"):
            mmoe_synthetic(10, n_features=5, correlation=[[2.0, 0.2], [0.2, 1.0]])

    def test_not_psd(self):
        R = [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]
        with pytest.raises(ValueError, match=r"positive semidefinite.*smallest eigenvalue is -"):
            mmoe_synthetic(10, n_features=5, correlation=R)

    @pytest.mark.parametrize("R", [np.eye(3)[:2], np.ones(3), np.empty((0, 0))])
    def test_not_square(self, R):
        with pytest.raises(ValueError, match="correlation must be a float or a square"):
            mmoe_synthetic(10, n_features=5, correlation=R)

    def test_matrix_disagrees_with_n_tasks(self):
        with pytest.raises(ValueError, match=r"correlation is 3x3 but n_tasks=2"):
            mmoe_synthetic(10, n_features=5, n_tasks=2, correlation=np.eye(3))

    def test_matrix_not_finite(self):
        with pytest.raises(ValueError, match="correlation contains NaN"):
            mmoe_synthetic(10, n_features=5, correlation=[[1.0, np.nan], [np.nan, 1.0]])

    def test_matrix_not_numeric(self):
        with pytest.raises(TypeError, match="correlation must be a float or a"):
            mmoe_synthetic(10, n_features=5, correlation="high")

    def test_too_few_features(self):
        with pytest.raises(ValueError, match="n_features=2 is smaller than n_tasks=3"):
            mmoe_synthetic(10, n_features=2, n_tasks=3)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"c": 0.0}, "c must be finite and > 0.0"),
            ({"n_sin": -1}, "n_sin must be >= 0"),
            ({"noise": -0.1}, "noise must be finite and >= 0.0"),
            ({"alpha_std": -1.0}, "alpha_std must be finite and >= 0.0"),
            ({"n_samples": 0}, "n_samples must be >= 1"),
            ({"n_features": 0}, "n_features must be >= 1"),
            ({"n_tasks": 0}, "n_tasks must be >= 1"),
            ({"random_state": -1}, "random_state must be a non-negative int"),
        ],
    )
    def test_out_of_range(self, kwargs, match):
        args = {"n_samples": 10, "n_features": 5, **kwargs}
        with pytest.raises(ValueError, match=match):
            mmoe_synthetic(**args)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"n_samples": 10.0}, "n_samples must be an int"),
            ({"n_sin": True}, "n_sin must be an int"),
            ({"c": "1"}, "c must be a real number"),
            ({"random_state": 1.5}, "random_state must be an int, a numpy.random.Generator"),
        ],
    )
    def test_wrong_type(self, kwargs, match):
        args = {"n_samples": 10, "n_features": 5, **kwargs}
        with pytest.raises(TypeError, match=match):
            mmoe_synthetic(**args)


class TestSyntheticTasks:
    def test_properties(self):
        shared = group_sparse(12, n_features=4, n_tasks=3, n_active=2, random_state=0)
        per_task = group_sparse([3, 5, 7], n_features=4, n_tasks=3, n_active=2, random_state=0)
        assert shared.shared_design and not per_task.shared_design
        assert shared.n_tasks == per_task.n_tasks == 3
        assert shared.n_features == per_task.n_features == 4
        assert shared.kind == "regression"

    def test_task_accessor(self):
        shared = mmoe_synthetic(6, n_features=4, n_tasks=3, random_state=0)
        X, Y = _shared(shared)
        for key in (1, "task_1", np.int64(1)):
            X_t, y_t = shared.task(key)
            np.testing.assert_array_equal(X_t, X)
            np.testing.assert_array_equal(y_t, Y[:, 1])
        per_task = group_sparse([2, 5], n_features=3, n_tasks=2, n_active=1, random_state=0)
        X_1, y_1 = per_task.task("task_1")
        np.testing.assert_array_equal(X_1, per_task.X[1])
        np.testing.assert_array_equal(y_1, per_task.Y[1])

    def test_task_accessor_errors(self):
        tasks = mmoe_synthetic(6, n_features=4, random_state=0)
        match = r"unknown task 'b'; known tasks: \['task_0', 'task_1'\]"
        with pytest.raises(ValueError, match=match):
            tasks.task("b")
        with pytest.raises(ValueError, match=r"task index 2 out of range \[0, 1\]"):
            tasks.task(2)
        with pytest.raises(TypeError, match="task must be an int or a str"):
            tasks.task(1.0)  # type: ignore[arg-type]

    def test_repr_is_short(self):
        per_task = group_sparse([2, 5], n_features=3, n_tasks=2, n_active=1, random_state=0)
        text = repr(per_task)
        assert "task_sizes=[2, 5]" in text and "n_features=3" in text and len(text) < 200

    def test_frozen(self):
        tasks = low_rank(5, n_features=3, n_tasks=2, rank=1, random_state=0)
        with pytest.raises(dataclasses.FrozenInstanceError):
            tasks.X = np.zeros((5, 3))  # type: ignore[misc]
        assert isinstance(tasks, SyntheticTasks)


def _multitask_data():
    try:
        from polytask.data import MultiTaskData
    except ImportError:  # written concurrently; skip only while it does not exist
        pytest.skip("polytask.data.MultiTaskData is not importable yet")
    return MultiTaskData


def test_to_data_shared_design():
    MultiTaskData = _multitask_data()
    tasks = mmoe_synthetic(15, n_features=4, n_tasks=3, random_state=0)
    data = tasks.to_data()
    assert isinstance(data, MultiTaskData)
    assert data.form == "shared" and data.task_names == tasks.task_names
    assert set(data.kinds.values()) == {"regression"}
    X, Y = _shared(tasks)
    for t, name in enumerate(tasks.task_names):
        X_t, y_t = data.task(name)
        np.testing.assert_array_equal(X_t, X)
        np.testing.assert_array_equal(y_t, Y[:, t])


def test_to_data_per_task_designs():
    _multitask_data()
    tasks = group_sparse([4, 9], n_features=3, n_tasks=2, n_active=1, random_state=0)
    data = tasks.to_data()
    assert data.form == "per_task"
    assert data.task_sizes == {"task_0": 4, "task_1": 9}
    for t, name in enumerate(tasks.task_names):
        X_t, y_t = data.task(name)
        np.testing.assert_array_equal(X_t, tasks.X[t])
        np.testing.assert_array_equal(y_t, tasks.Y[t])
