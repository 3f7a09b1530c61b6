"""UPGrad: exact projections onto the dual cone, checked against cvxpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polytask.deep.aggregation import (
    AggregationWarning,
    UPGrad,
    UPGradWeighting,
    _dual_cone,
    _linalg,
)
from polytask.deep.aggregation._linalg import dual_cone_weights

from ._references import dual_cone_projection


@pytest.mark.parametrize(("m", "n"), [(2, 3), (3, 5), (5, 3), (6, 6)])
def test_matches_cvxpy_projections(m: int, n: int) -> None:
    rng = np.random.default_rng(m * 10 + n)
    jacobian = rng.standard_normal((m, n)) * rng.uniform(0.3, 3.0, (m, 1))
    rows = dual_cone_weights(jacobian @ jacobian.T)
    scale = float(np.abs(jacobian).max())
    for i in range(m):
        expected = dual_cone_projection(jacobian, jacobian[i])
        np.testing.assert_allclose(rows[i] @ jacobian, expected, atol=1e-6 * scale)
    expected_mean = np.mean([dual_cone_projection(jacobian, g) for g in jacobian], axis=0)
    d = UPGrad()(torch.from_numpy(jacobian)).numpy()
    np.testing.assert_allclose(d, expected_mean, atol=1e-6 * scale)


def test_each_projection_is_in_the_dual_cone() -> None:
    rng = np.random.default_rng(1)
    jacobian = rng.standard_normal((5, 4))
    rows = dual_cone_weights(jacobian @ jacobian.T)
    projections = rows @ jacobian
    assert np.all(jacobian @ projections.T >= -1e-10)
    assert np.all(rows >= np.eye(5) - 1e-15)  # v_i ≥ e_i


def test_non_conflicting_gradients_are_unchanged() -> None:
    jacobian = torch.tensor([[1.0, 0.2], [0.3, 1.0]], dtype=torch.float64)
    weights = UPGradWeighting()(jacobian @ jacobian.T)
    assert torch.allclose(weights, torch.full((2,), 0.5, dtype=torch.float64))


def test_solver_failure_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # both the batched active-set solver and its Lawson-Hanson fallback return garbage
    monkeypatch.setattr(_dual_cone, "primal_dual_active_set",
                        lambda g, k: (np.zeros_like(g), g.copy(), np.zeros(len(g), bool)))
    monkeypatch.setattr(_linalg, "solve_nnls", lambda a, b, what: np.zeros(a.shape[1]))
    with pytest.warns(AggregationWarning, match="violates its optimality conditions"):
        UPGradWeighting()(torch.tensor([[1.0, -0.5], [-0.5, 1.0]]))
