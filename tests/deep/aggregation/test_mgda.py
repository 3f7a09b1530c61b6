"""MGDA: exactness of the min-norm solver, normalizations, failure reporting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polytask.deep.aggregation import MGDA, AggregationWarning, MGDAWeighting, _linalg

from ._asserts import assert_close
from ._references import min_norm_point


def _jacobian(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "generic":
        return rng.standard_normal((4, 7))
    if kind == "wide":  # rank-deficient Gramian: more tasks than dimensions
        return rng.standard_normal((7, 3))
    if kind == "low-rank":  # rank 2 in a 6-dim space
        return rng.standard_normal((5, 2)) @ rng.standard_normal((2, 6))
    if kind == "duplicated":
        base = rng.standard_normal((3, 5))
        return np.vstack([base, base[[0, 2]]])
    if kind == "ill-scaled":  # norms from 1e-3 to 1e3
        return rng.standard_normal((5, 6)) * np.logspace(-3, 3, 5)[:, None]
    # "positive": gradients in a common half-space, so the optimum is interior-ish
    return rng.standard_normal((4, 6)) + 2.0


KINDS = ["generic", "wide", "low-rank", "duplicated", "ill-scaled", "positive"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_generic_qp(kind: str, seed: int) -> None:
    jacobian = _jacobian(kind, seed)
    d_ref, value_ref = min_norm_point(jacobian)
    weights = MGDAWeighting()(torch.from_numpy(jacobian @ jacobian.T)).numpy()
    assert np.all(weights >= 0) and weights.sum() == pytest.approx(1.0, abs=1e-12)
    d = jacobian.T @ weights
    scale = float(np.max(np.sum(jacobian**2, axis=1)))
    assert float(d @ d) <= value_ref + 1e-9 * scale  # never worse than the generic QP
    np.testing.assert_allclose(d, d_ref, atol=1e-6 * np.sqrt(scale))


@pytest.mark.parametrize("kind", KINDS)
def test_kkt_conditions(kind: str) -> None:
    # Optimality on the simplex: (G w)_i ≥ wᵀGw for all i, with equality where w_i > 0.
    jacobian = _jacobian(kind, 5)
    gramian = jacobian @ jacobian.T
    weights = MGDAWeighting()(torch.from_numpy(gramian)).numpy()
    gw, value = gramian @ weights, float(weights @ gramian @ weights)
    tol = 1e-10 * float(np.max(np.diag(gramian)))
    assert np.all(gw >= value - tol)
    assert np.all(np.abs(weights * (gw - value)) <= tol)


def test_known_solution_two_tasks() -> None:
    # Closed form for two tasks: w1 = clip((g2 - g1)·g2 / ‖g1 - g2‖², 0, 1).
    g1, g2 = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([-1.0, 3.0, 0.5])
    w1 = min(max(float(((g2 - g1) @ g2) / (g1 - g2).pow(2).sum()), 0.0), 1.0)
    expected = w1 * g1 + (1 - w1) * g2
    assert_close(MGDA()(torch.stack([g1, g2])), expected, rtol=1e-6, what="two tasks")


def test_pareto_stationary_gives_zero() -> None:
    jacobian = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    assert float(MGDA()(jacobian).norm()) < 1e-12


def test_l2_normalization_is_mgda_on_unit_gradients() -> None:
    rng = np.random.default_rng(3)
    jacobian = rng.standard_normal((4, 6)) * np.array([[0.1], [1.0], [10.0], [3.0]])
    unit = jacobian / np.linalg.norm(jacobian, axis=1, keepdims=True)
    d_ref, _ = min_norm_point(unit)
    d = MGDA("l2")(torch.from_numpy(jacobian)).numpy()
    np.testing.assert_allclose(d, d_ref, atol=1e-6)


@pytest.mark.parametrize("normalization", ["loss", "loss+"])
def test_loss_normalizations(normalization: str) -> None:
    rng = np.random.default_rng(4)
    jacobian = rng.standard_normal((3, 5))
    losses = np.array([0.5, 2.0, 7.0])
    normalizers = losses.copy()
    if normalization == "loss+":
        normalizers *= np.linalg.norm(jacobian, axis=1)
    d_ref, _ = min_norm_point(jacobian / normalizers[:, None])
    d = MGDA(normalization)(torch.from_numpy(jacobian),  # type: ignore[arg-type]
                            losses=torch.from_numpy(losses)).numpy()
    np.testing.assert_allclose(d, d_ref, atol=1e-6)


def test_loss_normalization_errors() -> None:
    weighting = MGDAWeighting("loss")
    gramian = torch.eye(3)
    with pytest.raises(ValueError, match="losses is required"):
        weighting(gramian)
    with pytest.raises(ValueError, match="one value per task"):
        weighting(gramian, losses=torch.ones(2))
    with pytest.raises(ValueError, match="finite and positive"):
        weighting(gramian, losses=torch.tensor([1.0, 0.0, 2.0]))
    with pytest.raises(TypeError, match=r"losses must be a torch\.Tensor"):
        weighting(gramian, losses=[1.0, 1.0, 1.0])  # type: ignore[arg-type]


def test_losses_ignored_without_loss_normalization() -> None:
    jacobian = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert_close(MGDA()(jacobian, losses=torch.ones(3)), MGDA()(jacobian), what="losses")


def test_invalid_normalization() -> None:
    with pytest.raises(ValueError, match="normalization must be one of"):
        MGDAWeighting("max")  # type: ignore[arg-type]


def test_inexact_solution_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # A solver returning a non-optimal point must be flagged, never silently used.
    monkeypatch.setattr(_linalg, "min_norm_in_hull",
                        lambda factor, what="": np.full(factor.shape[0], 1 / factor.shape[0]))
    gramian = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    with pytest.warns(AggregationWarning, match="optimality gap"):
        MGDAWeighting()(gramian)


def test_solver_failure_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_nnls(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Maximum number of iterations reached.")

    monkeypatch.setattr(_linalg, "nnls", failing_nnls)
    with pytest.raises(RuntimeError, match="MGDA: the NNLS active-set solver did not"):
        MGDAWeighting()(torch.tensor([[1.0, 0.2], [0.2, 4.0]]))
