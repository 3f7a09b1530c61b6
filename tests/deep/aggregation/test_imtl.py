"""IMTL-G: equal projections onto every task direction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polytask.deep.aggregation import IMTLG, IMTLGWeighting


def _projections(jacobian: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return (jacobian @ d) / jacobian.norm(dim=1)


@pytest.mark.parametrize(("m", "n"), [(2, 3), (3, 3), (4, 7), (6, 9)])
def test_equal_projections_and_unit_sum(m: int, n: int) -> None:
    rng = np.random.default_rng(m * n)
    for _ in range(5):
        jacobian = torch.from_numpy(rng.standard_normal((m, n)) * rng.uniform(0.1, 10, (m, 1)))
        weights = IMTLGWeighting()(jacobian @ jacobian.T)
        assert float(weights.sum()) == pytest.approx(1.0, abs=1e-10)
        projections = _projections(jacobian, weights @ jacobian)
        scale = float(projections.abs().max())
        assert float(projections.max() - projections.min()) <= 1e-9 * scale


def test_two_tasks_closed_form() -> None:
    # For two tasks, d is along u1 + u2 with d·u1 = d·u2 (the angle bisector).
    g1, g2 = torch.tensor([3.0, 0.0]), torch.tensor([1.0, 2.0])
    d = IMTLG()(torch.stack([g1, g2]))
    bisector = g1 / g1.norm() + g2 / g2.norm()
    cross = float(d[0] * bisector[1] - d[1] * bisector[0])
    assert cross == pytest.approx(0.0, abs=1e-6)


def test_zero_gradient_gets_zero_weight() -> None:
    jacobian = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 2.0, 0.0]],
                            dtype=torch.float64)
    weights = IMTLGWeighting()(jacobian @ jacobian.T)
    assert float(weights[1]) == 0.0
    kept = jacobian[[0, 2]]
    projections = _projections(kept, weights @ jacobian)
    assert float(projections[0]) == pytest.approx(float(projections[1]), rel=1e-10)


def test_duplicated_gradients_still_balance() -> None:
    base = torch.tensor([[1.0, 0.0], [0.3, 1.0]], dtype=torch.float64)
    jacobian = torch.cat([base, base[:1]])
    d = IMTLG()(jacobian)
    projections = _projections(jacobian, d)
    assert float(projections.max() - projections.min()) <= 1e-10


def test_can_conflict_with_every_task() -> None:
    # The documented caveat: a small gradient nearly in the span of two large ones
    # forces a negative common projection, so J d < 0 for every task.
    tilt = 0.2
    small = 0.01 * torch.tensor([math.cos(tilt) / math.sqrt(2), math.cos(tilt) / math.sqrt(2),
                                 math.sin(tilt)])
    jacobian = torch.stack([torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]),
                            small]).double()
    d = IMTLG()(jacobian)
    projections = _projections(jacobian, d)
    assert float(projections.max() - projections.min()) <= 1e-10
    assert bool((jacobian @ d < 0).all())
