"""UncertaintyWeighting (Kendall, Gal & Cipolla, 2018)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from polytask.deep.weighting import UncertaintyWeighting


def _grad(uw: UncertaintyWeighting) -> np.ndarray:
    assert uw.log_variances.grad is not None
    return uw.log_variances.grad.numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_wrt_log_variances_matches_closed_form(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    losses = torch.rand(4, generator=gen, dtype=torch.float64) * 5 + 0.01
    s = torch.randn(4, generator=gen, dtype=torch.float64)
    uw = UncertaintyWeighting(4).double()
    with torch.no_grad():
        uw.log_variances.copy_(s)
    uw(losses).backward()
    expected = 1.0 - np.exp(-s.numpy()) * losses.numpy()
    np.testing.assert_allclose(_grad(uw), expected, rtol=1e-12)


def test_objective_matches_formula_and_finite_differences() -> None:
    losses = np.array([0.3, 2.0, 7.5])
    s0 = np.array([0.1, -0.4, 1.2])

    def objective(s: np.ndarray) -> float:
        return float(np.sum(np.exp(-s) * losses + s))

    uw = UncertaintyWeighting(3).double()
    with torch.no_grad():
        uw.log_variances.copy_(torch.from_numpy(s0))
    total = uw(torch.from_numpy(losses))
    assert float(total.detach()) == pytest.approx(objective(s0), rel=1e-12)
    total.backward()
    h = 1e-6
    fd = [(objective(s0 + h * e) - objective(s0 - h * e)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(_grad(uw), fd, rtol=1e-6)


def test_optimum_is_log_of_the_loss() -> None:
    losses = np.array([0.05, 1.0, 40.0])

    def objective(s: np.ndarray) -> float:
        return float(np.sum(np.exp(-s) * losses + s))

    scipy_opt = minimize(objective, np.zeros(3), method="BFGS").x
    np.testing.assert_allclose(scipy_opt, np.log(losses), atol=1e-4)
    # the same optimum when the module is trained by a torch optimizer
    uw = UncertaintyWeighting(3).double()
    opt = torch.optim.Adam(uw.parameters(), lr=0.2)
    target = torch.from_numpy(losses)
    for _ in range(250):
        opt.zero_grad()
        uw(target).backward()
        opt.step()
    np.testing.assert_allclose(uw.log_variances.detach().numpy(), np.log(losses), atol=1e-3)


def test_noisier_task_gets_smaller_weight_when_trained_jointly() -> None:
    # Two regression heads on shared features; task 1 has 10x the label noise.
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x = torch.randn(256, 3, generator=gen)
    beta = torch.tensor([[1.0, -1.0], [2.0, 0.5], [-1.0, 1.0]])
    noise = torch.randn(256, 2, generator=gen) * torch.tensor([0.1, 1.0])
    y = x @ beta + noise
    model = torch.nn.Linear(3, 2)
    uw = UncertaintyWeighting(["clean", "noisy"])
    opt = torch.optim.Adam([*model.parameters(), *uw.parameters()], lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        losses = ((model(x) - y) ** 2).mean(dim=0)
        uw(losses).backward()
        opt.step()
    w = uw.weights(losses.detach())
    assert w[0] > 10 * w[1]
    # at the joint optimum s_i = log L_i
    torch.testing.assert_close(
        uw.log_variances.detach(), losses.detach().log(), atol=0.05, rtol=0.0
    )


def test_init_and_reset() -> None:
    uw = UncertaintyWeighting(2, init_log_variance=np.log(2.0))
    torch.testing.assert_close(uw.weights(torch.ones(2)), torch.full((2,), 0.5))
    with torch.no_grad():
        uw.log_variances.add_(3.0)
    uw.update(torch.ones(2))  # a no-op for UW
    uw.reset()
    torch.testing.assert_close(uw.weights(torch.ones(2)), torch.full((2,), 0.5))
    assert "init_log_variance" in repr(uw)
