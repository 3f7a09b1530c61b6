"""GradNorm (Chen et al., 2018)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polytask.deep.weighting import GradNorm, gradnorm_weight_gradient, task_gramian


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.5])
def test_weight_gradient_matches_autograd_of_gradnorm_loss(seed: int, alpha: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    w = torch.rand(4, generator=gen, dtype=torch.float64) + 0.5
    norms = torch.rand(4, generator=gen, dtype=torch.float64) * 3
    ratios = torch.rand(4, generator=gen, dtype=torch.float64) + 0.2
    # reference: the GradNorm L1 loss with the target treated as a constant
    wv = w.clone().requires_grad_()
    g = wv * norms
    target = (g.mean() * (ratios / ratios.mean()) ** alpha).detach()
    (g - target).abs().sum().backward()
    torch.testing.assert_close(gradnorm_weight_gradient(w, norms, ratios, alpha), wv.grad)


def test_one_update_equals_the_hand_computed_step() -> None:
    losses0 = np.array([2.0, 1.0, 4.0])
    losses1 = np.array([1.0, 0.9, 1.0])
    jac = np.array([[1.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    alpha, lr, m = 1.5, 0.1, 3
    gn = GradNorm(3, alpha=alpha, lr=lr).double()
    gram = torch.from_numpy(jac @ jac.T)
    gn.update(torch.from_numpy(losses0), gramian=gram)
    # by hand, first update: L(0) = losses0, all ratios 1, w = 1
    n = np.linalg.norm(jac, axis=1)
    w = np.ones(3)
    w = w - lr * n * np.sign(w * n - np.mean(w * n))
    w = m * w / w.sum()
    np.testing.assert_allclose(gn.task_weights.numpy(), w)
    gn.update(torch.from_numpy(losses1), gramian=gram)
    lt = losses1 / losses0
    r = lt / lt.mean()
    target = np.mean(w * n) * r**alpha
    w = w - lr * n * np.sign(w * n - target)
    w = m * w / w.sum()
    np.testing.assert_allclose(gn.task_weights.numpy(), w)
    np.testing.assert_allclose(gn.initial_losses.numpy(), losses0)


def test_sum_of_weights_stays_n_tasks_and_weights_stay_positive() -> None:
    gen = torch.Generator().manual_seed(0)
    gn = GradNorm(5, alpha=3.0, lr=2.0)  # a huge step to hit the floor
    for _ in range(50):
        losses = torch.rand(5, generator=gen) + 0.01
        jac = torch.randn(5, 7, generator=gen) * torch.rand(5, 1, generator=gen) * 10
        gn.update(losses, gramian=jac @ jac.T)
        w = gn.weights(losses)
        assert float(w.sum()) == pytest.approx(5.0, rel=1e-5)
        assert (w > 0).all()


def test_weights_move_toward_the_task_that_trains_slower() -> None:
    # equal gradient norms; task 0's loss stays flat, task 1's halves every step
    gn = GradNorm(["slow", "fast"], alpha=1.5, lr=0.05)
    gram = torch.eye(2)
    previous = gn.weights(torch.ones(2))
    for t in range(10):
        losses = torch.tensor([1.0, 0.5**t])
        gn.update(losses, gramian=gram)
        w = gn.weights(losses)
        assert w[0] >= previous[0]
        previous = w
    assert w[0] > 1.3 > 0.7 > w[1]


def test_gradnorm_balances_gradient_norms_when_training_a_shared_layer() -> None:
    # Two regression tasks on one shared layer, one with 5x larger targets: GradNorm
    # with alpha = 0 drives w_i ||grad_W L_i|| towards their mean (equal norms).
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x = torch.randn(64, 4, generator=gen)
    y = torch.stack(
        [x @ torch.tensor([1.0, 0.0, -1.0, 0.5]), 5 * (x @ torch.tensor([0.0, 2.0, 1.0, -1.0]))],
        dim=1,
    )
    shared = torch.nn.Linear(4, 8)
    heads = torch.nn.Linear(8, 2)
    gn = GradNorm(2, alpha=0.0, lr=0.005)
    opt = torch.optim.SGD([*shared.parameters(), *heads.parameters()], lr=1e-4)

    def imbalance(w: torch.Tensor, gram: torch.Tensor) -> float:
        g = w * gram.diagonal().sqrt()
        return float(g.max() / g.min())

    start: float | None = None
    for _ in range(50):
        losses = ((heads(torch.relu(shared(x))) - y) ** 2).mean(dim=0)
        gram = task_gramian(losses, [shared.weight])
        if start is None:
            start = imbalance(gn.weights(losses.detach()), gram)
        opt.zero_grad()
        gn(losses).backward()
        opt.step()
        gn.update(losses.detach(), gramian=gram)
    end = imbalance(gn.weights(losses.detach()), gram)
    assert start is not None and start > 4.0
    assert end < 1.5
    assert float(gn.task_weights.sum()) == pytest.approx(2.0, rel=1e-5)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_non_positive_loss_raises_naming_the_task(bad: float) -> None:
    gn = GradNorm(["a", "b"])
    with pytest.raises(ValueError, match=r"losses\[1\] for task 1 \('b'\).*must be > 0"):
        gn.update(torch.tensor([1.0, bad]), gramian=torch.eye(2))


def test_forward_needs_no_gramian_and_reset_forgets_initial_losses() -> None:
    gn = GradNorm(2, lr=0.1)
    assert float(gn(torch.tensor([1.0, 3.0]))) == pytest.approx(4.0)
    gn.update(torch.tensor([1.0, 3.0]), gramian=torch.diag(torch.tensor([1.0, 4.0])))
    assert int(gn.num_updates) == 1
    gn.reset()
    assert int(gn.num_updates) == 0
    gn.update(torch.tensor([5.0, 6.0]), gramian=torch.eye(2))
    assert gn.initial_losses.tolist() == [5.0, 6.0]
    assert "alpha=1.5" in repr(gn)
