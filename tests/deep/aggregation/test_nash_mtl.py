"""Nash-MTL: the bargaining equation G α = 1/α, and its unsolvable cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polytask.deep.aggregation import AggregationWarning, NashMTL, NashMTLWeighting, _nash_mtl


def _gramian(m: int, n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    jacobian = rng.standard_normal((m, n)) * rng.uniform(0.1, 10.0, (m, 1))
    return torch.from_numpy(jacobian @ jacobian.T)


def _relative_residual(gramian: torch.Tensor, alpha: torch.Tensor) -> float:
    return float((gramian @ alpha - 1 / alpha).norm() / (1 / alpha).norm())


@pytest.mark.parametrize(("m", "n"), [(2, 2), (3, 8), (5, 6), (8, 12)])
def test_solves_the_bargaining_equation(m: int, n: int) -> None:
    for seed in range(5):
        gramian = _gramian(m, n, 10 * seed + m)
        alpha = NashMTLWeighting()(gramian)
        assert bool((alpha > 0).all())
        assert _relative_residual(gramian, alpha) <= 1e-10
        assert float(alpha @ gramian @ alpha) == pytest.approx(m, rel=1e-9)  # ‖d‖² = m


def test_normalized_variant_solves_the_normalized_equation() -> None:
    gramian = _gramian(4, 6, 1)
    alpha = NashMTLWeighting(normalize=True)(gramian)
    assert _relative_residual(gramian / torch.linalg.norm(gramian), alpha) <= 1e-10


def test_duplicate_gradients_share_the_weight() -> None:
    g = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    jacobian = torch.cat([g, g[:1]])
    gramian = jacobian @ jacobian.T
    alpha = NashMTLWeighting()(gramian)
    assert _relative_residual(gramian, alpha) <= 1e-10
    assert float(alpha[0]) == pytest.approx(float(alpha[2]), rel=1e-9)


def test_no_solution_warns_and_returns_zero() -> None:
    jacobian = torch.tensor([[1.0, 2.0], [-1.0, -2.0], [0.5, 0.1]], dtype=torch.float64)
    with pytest.warns(AggregationWarning, match="no direction improves every task"):
        d = NashMTL()(jacobian)
    assert torch.equal(d, torch.zeros(2, dtype=torch.float64))


def test_zero_gradient_is_left_out() -> None:
    jacobian = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.3, 2.0]], dtype=torch.float64)
    alpha = NashMTLWeighting()(jacobian @ jacobian.T)
    assert float(alpha[1]) == 0.0
    kept = jacobian[[0, 2]]
    assert _relative_residual(kept @ kept.T, alpha[[0, 2]]) <= 1e-10


def test_non_convergence_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_nash_mtl, "NASH_TOL", 0.0)  # unreachable: Newton must give up
    with pytest.warns(AggregationWarning, match="Newton's method stopped"):
        alpha = NashMTLWeighting()(_gramian(3, 4, 0))
    assert bool(torch.isfinite(alpha).all())


def test_normalize_type_is_checked() -> None:
    with pytest.raises(TypeError, match="normalize must be a bool"):
        NashMTLWeighting(normalize="yes")  # type: ignore[arg-type]
