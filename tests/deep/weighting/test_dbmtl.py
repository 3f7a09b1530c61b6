"""DB-MTL (Lin et al., 2023)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polytask.deep.weighting import DBMTL, dbmtl_scales, task_gramian


def _problem(
    scales: tuple[float, ...] = (1.0, 1000.0, 0.01), seed: int = 0
) -> tuple[torch.nn.Module, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    net.double()
    x = torch.randn(20, 4, generator=gen, dtype=torch.float64)
    y = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    losses = ((net(x) - y) ** 2).mean(dim=0) * torch.tensor(scales, dtype=torch.float64)
    return net, losses


def _log_loss_gradients(net: torch.nn.Module, losses: torch.Tensor) -> list[torch.Tensor]:
    params = list(net.parameters())
    out = []
    for i in range(losses.shape[0]):
        grads = torch.autograd.grad(torch.log(losses[i]), params, retain_graph=True)
        out.append(torch.cat([g.flatten() for g in grads]))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_scaled_log_gradients_have_equal_norms(seed: int) -> None:
    # The defining property of gradient-magnitude balancing (beta = 0: no smoothing).
    net, losses = _problem(seed=seed)
    method = DBMTL(3, beta=0.0, eps=0.0).double()
    gram = task_gramian(losses, net.parameters())
    alpha = method.weights(losses.detach(), gramian=gram) * losses.detach()
    g_log = _log_loss_gradients(net, losses)
    norms = torch.stack(
        [torch.linalg.vector_norm(a * g) for a, g in zip(alpha, g_log, strict=True)]
    )
    largest = max(float(torch.linalg.vector_norm(g)) for g in g_log)
    torch.testing.assert_close(norms, torch.full((3,), largest, dtype=torch.float64))
    # and the model gradient is their sum
    params = list(net.parameters())
    grad = torch.cat(
        [
            g.flatten()
            for g in torch.autograd.grad(method(losses, gramian=gram), params, retain_graph=True)
        ]
    )
    torch.testing.assert_close(grad, sum(a * g for a, g in zip(alpha, g_log, strict=True)))


@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_model_gradient_is_invariant_to_the_scale_of_each_loss(beta: float) -> None:
    grads = []
    for scales in [(1.0, 1.0, 1.0), (1e-3, 50.0, 7.0)]:
        net, losses = _problem(scales)
        method = DBMTL(3, beta=beta).double()
        gram = task_gramian(losses, net.parameters())
        grads.append(
            torch.cat(
                [
                    g.flatten()
                    for g in torch.autograd.grad(
                        method(losses, gramian=gram), list(net.parameters())
                    )
                ]
            )
        )
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("beta, sigma", [(0.9, 0.5), (0.5, 0.0), (0.0, 0.5)])
def test_moving_average_of_norms_follows_the_recursion(beta: float, sigma: float) -> None:
    gen = torch.Generator().manual_seed(1)
    method = DBMTL(2, beta=beta, beta_sigma=sigma, eps=0.0).double()
    ema = np.zeros(2)
    for t in range(1, 7):
        losses = torch.rand(2, generator=gen, dtype=torch.float64) + 0.2
        jac = torch.randn(2, 4, generator=gen, dtype=torch.float64)
        gram = jac @ jac.T
        norms = np.linalg.norm(jac.numpy(), axis=1) / losses.numpy()
        beta_t = beta / t**sigma
        ema = beta_t * ema + (1 - beta_t) * norms
        expected_weights = ema.max() / ema / losses.numpy()
        np.testing.assert_allclose(method.weights(losses, gramian=gram).numpy(), expected_weights)
        method.update(losses, gramian=gram)
        np.testing.assert_allclose(method.norm_ema.numpy(), ema)
    assert int(method.num_updates) == 6


def test_scales_closed_form() -> None:
    n = torch.tensor([0.5, 2.0, 1.0, 0.0])
    torch.testing.assert_close(dbmtl_scales(n, eps=1e-8), torch.tensor([4.0, 1.0, 2.0, 2.0 / 1e-8]))


def test_non_positive_loss_raises_naming_the_task() -> None:
    method = DBMTL(["a", "b"])
    with pytest.raises(ValueError, match=r"losses\[1\] for task 1 \('b'\).*must be > 0"):
        method(torch.tensor([1.0, 0.0]), gramian=torch.eye(2))
    with pytest.raises(ValueError, match=r"losses\[0\] for task 0 \('a'\).*must be > 0"):
        method.update(torch.tensor([-1.0, 1.0]), gramian=torch.eye(2))
    assert "beta=0.9" in repr(method)
