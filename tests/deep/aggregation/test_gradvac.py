"""GradVac: Gramian form against a direct implementation, state handling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polytask.deep.aggregation import GradVac, GradVacState, GradVacWeighting, PCGrad
from polytask.deep.aggregation._gradvac import gradvac_step

from ._asserts import assert_close


def direct_gradvac(jacobian: np.ndarray, targets: np.ndarray, orders: list[list[int]],
                   beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Wang et al.'s update rule written on the gradients themselves."""
    targets = targets.copy()
    total = np.zeros(jacobian.shape[1])
    for i, order in enumerate(orders):
        g = jacobian[i].copy()
        for j in order:
            gj = jacobian[j]
            cos = g @ gj / (np.linalg.norm(g) * np.linalg.norm(gj))
            goal = targets[i, j]
            if cos < goal:
                g = g + gj * np.linalg.norm(g) * (
                    goal * math.sqrt(1 - cos**2) - cos * math.sqrt(1 - goal**2)
                ) / (np.linalg.norm(gj) * math.sqrt(1 - goal**2))
            targets[i, j] = (1 - beta) * targets[i, j] + beta * cos
        total += g
    return total, targets


@pytest.mark.parametrize(("m", "n"), [(2, 3), (3, 5), (5, 4)])
def test_matches_direct_implementation_over_steps(m: int, n: int) -> None:
    rng = np.random.default_rng(m + n)
    targets = np.zeros((m, m))
    ours = targets.copy()
    for _ in range(4):  # thread the state through several steps
        jacobian = rng.standard_normal((m, n)) + 0.3
        orders = [list(rng.permutation([j for j in range(m) if j != i])) for i in range(m)]
        expected, targets = direct_gradvac(jacobian, targets, orders, beta=0.4)
        coefficients, ours = gradvac_step(jacobian @ jacobian.T, ours, orders, 0.4, 1e-16)
        np.testing.assert_allclose(coefficients.sum(axis=0) @ jacobian, expected, atol=1e-10)
        np.testing.assert_allclose(ours, targets, atol=1e-12)


def test_adjusted_similarity_reaches_the_target() -> None:
    jacobian = torch.tensor([[1.0, 0.0, 0.5], [-0.8, 1.0, 0.0]], dtype=torch.float64)
    state = GradVacState(torch.full((2, 2), 0.5, dtype=torch.float64))
    coefficients, _ = gradvac_step((jacobian @ jacobian.T).numpy(), state.targets.numpy(),
                                   [[1], [0]], 0.1, 1e-16)
    adjusted = torch.from_numpy(coefficients) @ jacobian
    for i, j in [(0, 1), (1, 0)]:
        cos = float(adjusted[i] @ jacobian[j] / (adjusted[i].norm() * jacobian[j].norm()))
        assert cos == pytest.approx(0.5, abs=1e-12)


def test_state_is_an_ema_of_the_similarities() -> None:
    jacobian = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    aggregator = GradVac(beta=0.25)
    state = aggregator.init_state(2)
    assert torch.equal(state.targets, torch.zeros(2, 2, dtype=torch.float64))
    cos = 1 / math.sqrt(2)  # no adjustment (cos > target), so φ is the raw similarity
    d, state = aggregator(jacobian, state)
    assert_close(d, jacobian.sum(0), what="no adjustment")
    assert float(state.targets[0, 1]) == pytest.approx(0.25 * cos)
    _, state = aggregator(jacobian, state)
    assert float(state.targets[1, 0]) == pytest.approx(0.25 * cos * 0.75 + 0.25 * cos)


def test_zero_targets_reduce_to_pcgrad() -> None:
    # With targets 0, the vaccine makes conflicting pairs orthogonal: PCGrad's projection.
    jacobian = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    aggregator = GradVac()
    d, _ = aggregator(jacobian, aggregator.init_state(4),
                      generator=torch.Generator().manual_seed(7))
    expected = PCGrad()(jacobian, generator=torch.Generator().manual_seed(7))
    assert_close(d, expected, rtol=1e-9, what="GradVac(0) vs PCGrad")


def test_two_tasks_order_free() -> None:
    jacobian = torch.randn(2, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    weighting = GradVacWeighting(beta=0.3)
    state = GradVacState(torch.tensor([[0.0, 0.4], [0.6, 0.0]], dtype=torch.float64))
    swapped = GradVacState(torch.tensor([[0.0, 0.6], [0.4, 0.0]], dtype=torch.float64))
    gramian = jacobian @ jacobian.T
    w, new = weighting(gramian, state)
    w_swapped, new_swapped = weighting(gramian.flip(0).flip(1), swapped)
    assert_close(w_swapped, w.flip(0), what="weights")
    assert_close(new_swapped.targets, new.targets.flip(0).flip(1), what="targets")


def test_zero_gradient_pairs_are_skipped() -> None:
    jacobian = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.5]], dtype=torch.float64)
    aggregator = GradVac(beta=0.5)
    d, state = aggregator(jacobian, aggregator.init_state(3))
    assert bool(torch.isfinite(d).all())
    assert float(state.targets[0, 1]) == 0.0 and float(state.targets[1, 0]) == 0.0


def test_state_and_hyperparameter_errors() -> None:
    weighting = GradVacWeighting()
    with pytest.raises(ValueError, match="beta must be in"):
        GradVacWeighting(beta=0.0)
    with pytest.raises(ValueError, match="beta must be in"):
        GradVac(beta=1.5)
    with pytest.raises(TypeError, match="beta must be a float"):
        GradVacWeighting(beta="0.5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_tasks must be a positive integer"):
        weighting.init_state(0)
    with pytest.raises(TypeError, match="state must be a GradVacState"):
        weighting(torch.eye(2), torch.zeros(2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="state holds targets for 3 tasks"):
        weighting(torch.eye(2), weighting.init_state(3))
    with pytest.raises(ValueError, match="jacobian contains NaN"):
        GradVac()(torch.tensor([[float("nan")]]), weighting.init_state(1))
