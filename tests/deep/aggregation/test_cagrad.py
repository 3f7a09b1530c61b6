"""CAGrad: exact dual solution against the primal cone program solved by cvxpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polytask.deep.aggregation import AggregationWarning, CAGrad, CAGradWeighting, Mean, _cagrad

from ._asserts import assert_close
from ._references import cagrad_direction


def _jacobian(m: int, n: int, seed: int, shift: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)) * rng.uniform(0.2, 5.0, (m, 1)) + shift


@pytest.mark.parametrize(("m", "n", "shift"), [(2, 4, 0.0), (3, 5, 0.0), (4, 6, 1.0),
                                               (5, 5, 0.3)])
@pytest.mark.parametrize("c", [0.2, 0.5, 0.9])
def test_matches_cvxpy_primal(m: int, n: int, shift: float, c: float) -> None:
    # The primal max_{‖d − g0‖ ≤ c‖g0‖} min_i g_iᵀd is flat near its optimum, so cvxpy's
    # interior-point d is only accurate to ~sqrt(its gap): compare the optimal value
    # tightly and d loosely; the KKT test below certifies d itself.
    jacobian = _jacobian(m, n, 100 * m + n, shift)
    expected = cagrad_direction(jacobian, c)
    d = CAGrad(c=c, rescale=False)(torch.from_numpy(jacobian)).numpy()
    g0 = jacobian.mean(axis=0)
    scale = float(np.linalg.norm(expected)) * float(np.abs(jacobian).max())
    assert np.linalg.norm(d - g0) <= c * np.linalg.norm(g0) * (1 + 1e-12)
    assert np.min(jacobian @ d) >= np.min(jacobian @ expected) - 1e-9 * scale
    np.testing.assert_allclose(d, expected, atol=1e-4 * float(np.linalg.norm(expected)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("c", [0.3, 0.8])
def test_kkt_certificate(seed: int, c: float) -> None:
    # d = g0 + ρ Jᵀw/‖Jᵀw‖ is primal optimal iff w ≥ 0 (in the simplex) is supported on
    # the tasks attaining min_i g_iᵀd and ‖d − g0‖ = ρ.
    m = 5
    jacobian = _jacobian(m, 7, seed, 0.5)
    weights = CAGradWeighting(c=c, rescale=False)(torch.from_numpy(jacobian @ jacobian.T))
    excess = weights.numpy() - 1.0 / m  # = (ρ/‖g_w‖) w
    d = weights.numpy() @ jacobian
    g0 = jacobian.mean(axis=0)
    assert np.all(excess >= -1e-12)
    assert np.linalg.norm(d - g0) == pytest.approx(c * np.linalg.norm(g0), rel=1e-10)
    improvements = jacobian @ d
    support = excess > 1e-9 * excess.max()
    spread = improvements[support].max() - improvements.min()
    assert spread <= 1e-9 * np.abs(improvements).max()


def test_rescale_divides_by_one_plus_c_squared() -> None:
    jacobian = torch.from_numpy(_jacobian(3, 4, 1, 0.0))
    assert_close(CAGrad(c=0.6)(jacobian), CAGrad(c=0.6, rescale=False)(jacobian) / 1.36,
                 what="rescale")


def test_zero_radius_is_the_mean() -> None:
    jacobian = torch.from_numpy(_jacobian(4, 3, 2, 0.0))
    assert_close(CAGrad(c=0.0)(jacobian), Mean()(jacobian), what="c = 0")


def test_stays_in_the_ball_around_the_mean() -> None:
    jacobian = torch.from_numpy(_jacobian(4, 6, 3, 0.0))
    g0 = jacobian.mean(0)
    for c in (0.1, 0.4, 0.8):
        d = CAGrad(c=c, rescale=False)(jacobian)
        assert float((d - g0).norm()) == pytest.approx(c * float(g0.norm()), rel=1e-9)


def test_hull_containing_the_optimum_at_zero_gives_the_mean() -> None:
    # A zero-gradient task puts 0 in the hull, and here no point does better: the dual
    # optimum is g_w = 0, and as the mean conflicts with no task it is the update.
    jacobian = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    assert_close(CAGrad(c=0.4)(jacobian), jacobian.mean(0) / 1.16, what="degenerate")


@pytest.mark.parametrize("kind", ["zero-row", "antiparallel"])
@pytest.mark.parametrize("seed", range(3))
def test_degenerate_hull_still_attains_the_primal_optimum(kind: str, seed: int) -> None:
    # With 0 in the hull the optimum may be x* = 0, where the closed form is undefined;
    # the update must still be feasible and attain cvxpy's optimal value.
    rng = np.random.default_rng(seed)
    jacobian = rng.standard_normal((3, 3))
    extra = np.zeros(3) if kind == "zero-row" else -2.0 * jacobian[0]
    jacobian = np.vstack([jacobian, extra])
    c = 1.2
    expected = cagrad_direction(jacobian, c)
    d = CAGrad(c=c, rescale=False)(torch.from_numpy(jacobian)).numpy()
    g0 = jacobian.mean(axis=0)
    assert np.linalg.norm(d - g0) <= c * np.linalg.norm(g0) * (1 + 1e-12)
    assert np.min(jacobian @ d) >= np.min(jacobian @ expected) - 1e-9


def test_inexact_dual_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cagrad, "cagrad_hull_weights",
                        lambda factor, rho: np.array([0.0, 1.0]))
    with pytest.warns(AggregationWarning, match="optimality gap"):
        CAGradWeighting(c=0.5)(torch.tensor([[1.0, -0.2], [-0.2, 2.0]]))


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"c": -0.1}, ValueError, "c must be a finite non-negative"),
    ({"c": float("inf")}, ValueError, "c must be a finite non-negative"),
    ({"c": "0.4"}, TypeError, "c must be a non-negative float"),
    ({"rescale": 1}, TypeError, "rescale must be a bool"),
])
def test_hyperparameter_errors(kwargs: dict[str, object], error: type[Exception],
                               match: str) -> None:
    with pytest.raises(error, match=match):
        CAGradWeighting(**kwargs)  # type: ignore[arg-type]
