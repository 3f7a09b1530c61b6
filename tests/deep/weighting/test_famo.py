"""FAMO (Liu, Feng, Stone & Liu, 2023)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polytask.deep.weighting import FAMO, famo_logit_gradient


def _softmax_jvp_reference(xi: torch.Tensor, decrease: torch.Tensor) -> torch.Tensor:
    """(∂z/∂ξ)ᵀ Δ by autograd, independent of the library's closed form."""
    x = xi.clone().requires_grad_()
    (torch.softmax(x, dim=0) * decrease).sum().backward()
    assert x.grad is not None
    return x.grad


@pytest.mark.parametrize("seed", range(4))
def test_logit_gradient_is_the_softmax_vjp_of_the_log_decrease(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    xi = torch.randn(5, generator=gen, dtype=torch.float64)
    before = torch.rand(5, generator=gen, dtype=torch.float64) + 0.1
    after = torch.rand(5, generator=gen, dtype=torch.float64) + 0.1
    expected = _softmax_jvp_reference(xi, before.log() - after.log())
    torch.testing.assert_close(famo_logit_gradient(xi, before, after), expected)


@pytest.mark.parametrize("gamma, lr", [(0.0, 0.5), (1e-3, 0.025), (0.1, 2.0)])
def test_sgd_update_is_algorithm_1(gamma: float, lr: float) -> None:
    gen = torch.Generator().manual_seed(0)
    famo = FAMO(3, gamma=gamma, lr=lr, logit_optimizer="sgd").double()
    xi = torch.zeros(3, dtype=torch.float64)
    for _ in range(5):
        before = torch.rand(3, generator=gen, dtype=torch.float64) + 0.1
        after = before * (0.5 + torch.rand(3, generator=gen, dtype=torch.float64))
        famo.update(before, losses_after=after)
        # ξ ← ξ − β (δ + γ ξ)
        xi = xi - lr * (_softmax_jvp_reference(xi, before.log() - after.log()) + gamma * xi)
        torch.testing.assert_close(famo.logits, xi)


def test_adam_update_matches_torch_adam_with_l2_decay() -> None:
    gen = torch.Generator().manual_seed(1)
    famo = FAMO(4, gamma=1e-2, lr=0.05).double()
    xi = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    reference = torch.optim.Adam([xi], lr=0.05, weight_decay=1e-2)
    for _ in range(8):
        before = torch.rand(4, generator=gen, dtype=torch.float64) + 0.1
        after = before * (0.5 + torch.rand(4, generator=gen, dtype=torch.float64))
        famo.update(before, losses_after=after)
        xi.grad = _softmax_jvp_reference(xi.detach(), before.log() - after.log())
        reference.step()
        torch.testing.assert_close(famo.logits, xi.detach())


def test_model_gradient_is_the_normalised_log_loss_gradient() -> None:
    gen = torch.Generator().manual_seed(2)
    theta = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    a = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 1.0]], dtype=torch.float64)
    famo = FAMO(2, eps=0.0).double()  # the paper's formula, no shift
    famo.logits.copy_(torch.tensor([0.7, -0.2], dtype=torch.float64))
    losses = (a @ theta) ** 2 * torch.tensor([1.0, 50.0], dtype=torch.float64) + 0.5
    (grad,) = torch.autograd.grad(famo(losses), theta, retain_graph=True)
    z = np.exp([0.7, -0.2]) / np.exp([0.7, -0.2]).sum()
    ell = losses.detach().numpy()
    c = 1.0 / np.sum(z / ell)
    per_task = [
        torch.autograd.grad(losses[i], theta, retain_graph=True)[0].numpy() for i in range(2)
    ]
    expected = c * sum(z[i] * per_task[i] / ell[i] for i in range(2))
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-10)
    assert float(famo.weights(losses.detach()).sum()) == pytest.approx(1.0)


def test_faster_task_loses_weight_under_constant_rates() -> None:
    famo = FAMO(["fast", "slow"], logit_optimizer="sgd", lr=1.0)
    losses = torch.tensor([1.0, 1.0])
    previous = 0.5
    for _ in range(10):
        after = losses * torch.tensor([np.exp(-0.1), np.exp(-0.01)], dtype=torch.float32)
        famo.update(losses, losses_after=after)
        losses = after
        z_fast = float(torch.softmax(famo.logits, dim=0)[0])
        assert z_fast < previous
        previous = z_fast


def _quadratics(theta: torch.Tensor) -> torch.Tensor:
    # very different scales (100 vs 0.01); task 1 is also slower in log terms
    return torch.stack(
        [100.0 * ((theta[0] - 1) ** 2 + 0.1), 0.01 * ((0.3 * theta[1] - 1) ** 2 + 0.1)]
    )


def _train(objective: FAMO | None, steps: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """SGD on FAMO's objective, or on the frozen-uniform-z objective when None."""
    theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([theta], lr=2.0)
    start = _quadratics(theta).detach()
    for _ in range(steps):
        losses = _quadratics(theta)
        opt.zero_grad()
        if objective is None:  # c Σ z_i log L_i with z = (½, ½)
            c = 1.0 / (0.5 / losses.detach()).sum()
            (c * 0.5 * losses.log().sum()).backward()
        else:
            objective(losses).backward()
        opt.step()
        if objective is not None:
            with torch.no_grad():
                objective.update(losses.detach(), losses_after=_quadratics(theta))
    return start.log() - _quadratics(theta).detach().log(), theta


def test_weights_move_to_balance_the_relative_decrease() -> None:
    famo = FAMO(2, lr=0.1).double()
    adaptive, _ = _train(famo)
    frozen, _ = _train(None)
    z = torch.softmax(famo.logits, dim=0)
    assert z[1] > 0.7  # the slow task gained weight
    assert (adaptive > 0).all()
    frozen_ratio = float(frozen[0] / frozen[1])
    adaptive_ratio = float(adaptive[0] / adaptive[1])
    assert frozen_ratio > 5.0
    assert adaptive_ratio < frozen_ratio / 1.5  # log decreases closer together


@pytest.mark.parametrize(("bad", "eps", "expected"),
                         [(0.0, 0.0, "> 0"), (-0.5, 0.0, "> 0"), (-0.5, 1e-8, ">= 0")])
def test_invalid_losses_raise_naming_the_task(bad: float, eps: float, expected: str) -> None:
    famo = FAMO(["a", "b"], eps=eps)
    losses = torch.tensor([bad, 1.0])
    for call in (
        lambda: famo(losses),
        lambda: famo.weights(losses),
        lambda: famo.update(losses, losses_after=torch.ones(2)),
    ):
        with pytest.raises(ValueError,
                           match=rf"losses\[0\] for task 0 \('a'\).*must be {expected}"):
            call()
    with pytest.raises(ValueError, match=rf"losses_after\[1\] for task 1 \('b'\).*{expected}"):
        famo.update(torch.ones(2), losses_after=torch.tensor([1.0, bad]))
    with pytest.raises(ValueError, match=r"losses_after must have shape \(2,\)"):
        famo.update(torch.ones(2), losses_after=torch.ones(3))
    assert int(famo.num_updates) == 0


def test_a_zero_loss_is_shifted_by_eps_as_in_the_authors_code() -> None:
    """A float32 BCE that rounds to 0 must not stop training: every formula reads L + eps."""
    eps = 1e-3
    famo = FAMO(["a", "b", "c"], eps=eps, logit_optimizer="sgd", lr=1.0).double()
    famo.logits.copy_(torch.tensor([0.2, -0.1, 0.4], dtype=torch.float64))
    losses = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    shifted = losses.detach() + eps
    z = torch.softmax(famo.logits, dim=0)
    c = 1.0 / (z / shifted).sum()
    torch.testing.assert_close(famo.weights(losses), c * z / shifted)
    (grad,) = torch.autograd.grad(famo(losses), losses)
    torch.testing.assert_close(grad, c * z / shifted)  # d/dL of c Σ z log(L + eps)
    after = torch.tensor([0.0, 0.25, 2.0], dtype=torch.float64)
    before = famo.logits.clone()
    famo.update(losses.detach(), losses_after=after)
    drop = torch.log(shifted) - torch.log(after + eps)
    delta = z * (drop - (z * drop).sum())
    torch.testing.assert_close(famo.logits, before - (delta + famo.gamma * before))
    with pytest.raises(ValueError, match="eps must be"):
        FAMO(2, eps=-1.0)
