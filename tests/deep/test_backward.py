"""Tests of the per-task gradient engine against independent references.

Every reference is computed with one plain ``torch.autograd.grad`` call per task (or a
plain ``backward`` of a summed loss), never with the engine itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from polytask.deep.aggregation import (
    MGDA,
    Aggregator,
    GradVacWeighting,
    MeanWeighting,
    MGDAWeighting,
    PCGradWeighting,
    SumWeighting,
    UPGrad,
    UPGradWeighting,
)
from polytask.deep.architectures import MLP, SharedBottom
from polytask.deep.backward import (
    mtl_backward,
    per_task_gradients,
    task_gramian,
)
from polytask.deep.weighting import (
    EqualWeighting,
    GradNorm,
    StaticWeighting,
    UncertaintyWeighting,
)

DT = torch.float64
STRATEGIES: list[Any] = ["auto", "batched", "loop"]


class Net(nn.Module):
    """Shared encoder + heads; ``rows < n_in`` in the middle layer exercises the kernel form."""

    def __init__(self, n_tasks: int = 3, wide: int = 12, bias: bool = True, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = nn.Sequential(
            nn.Linear(5, wide, bias=bias), nn.Tanh(), nn.Linear(wide, 4), nn.ReLU(),
            nn.LayerNorm(4),
        ).to(DT)
        self.heads = nn.ModuleList(nn.Linear(4, 1).to(DT) for _ in range(n_tasks))
        gen = torch.Generator().manual_seed(seed + 1)
        self.x = torch.randn(7, 5, generator=gen, dtype=DT)
        self.y = torch.randn(7, n_tasks, generator=gen, dtype=DT)

    def shared(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def head_params(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def losses(self) -> tuple[Tensor, Tensor]:
        z = self.encoder(self.x)
        out = [(h(z)[:, 0] - self.y[:, i]).pow(2).mean() for i, h in enumerate(self.heads)]
        return z, torch.stack(out)

    def zero(self) -> None:
        for p in self.parameters():
            p.grad = None

    def grads(self) -> list[Tensor]:
        return [torch.zeros_like(p) if p.grad is None else p.grad.clone()
                for p in self.parameters()]


def reference_jacobian(losses: Tensor, params: Sequence[Tensor]) -> Tensor:
    rows = []
    for i in range(losses.shape[0]):
        grads = torch.autograd.grad(losses[i], params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                               for g, p in zip(grads, params, strict=True)]))
    return torch.stack(rows)


def assert_close_lists(a: Sequence[Any], b: Sequence[Any], tol: float = 1e-10) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=tol, rtol=tol)


# ----------------------------------------------------------- per_task_gradients
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("stacked", [True, False])
def test_per_task_gradients_equal_separate_grads(strategy: Any, stacked: bool) -> None:
    net = Net()
    _, losses = net.losses()
    if not stacked:  # not built by torch.stack: no per-task roots
        losses = losses * 1.0
    expected = reference_jacobian(losses, net.shared())
    got = per_task_gradients(losses, net.shared(), strategy=strategy, retain_graph=True)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def surrogate(losses: Tensor) -> Tensor:
    """Element-wise operations with constants after the stack (what the trainer does)."""
    scaled = (losses * torch.tensor([1.0, 0.0, 3.0], dtype=DT) / 2.0).float().double() * 2
    return scaled - scaled.detach() + torch.tensor([5.0, 6.0, 7.0], dtype=DT)


def test_roots_are_found_through_elementwise_operations() -> None:
    from polytask.deep._graph import task_roots

    _, losses = Net().losses()
    roots = task_roots(surrogate(losses))
    assert roots is not None and not roots.direct and len(roots.edges) == 3
    assert task_roots(losses * losses.detach().sum()) is not None
    assert task_roots(losses * losses) is None  # two differentiable inputs
    assert task_roots(losses.sum() * torch.ones(3, dtype=DT)) is None


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("mode", ["parameter", "representation"])
def test_elementwise_chain_after_stack(strategy: Any, mode: Any) -> None:
    net = Net()
    z, losses = net.losses()
    wrapped = surrogate(losses)
    jac = reference_jacobian(wrapped, net.shared())
    torch.testing.assert_close(per_task_gradients(wrapped, net.shared(), strategy=strategy,
                                                  retain_graph=True), jac)
    jz = torch.stack([torch.autograd.grad(wrapped[i], z, retain_graph=True)[0].reshape(-1)
                      for i in range(3)])
    ref = jac if mode == "parameter" else jz
    expected_heads = torch.autograd.grad(wrapped.sum(), net.head_params(), retain_graph=True)
    result = mtl_backward(wrapped, net.shared(), net.head_params(), method=SumWeighting(),
                          mode=mode, features=z, strategy=strategy)
    assert result.gramian is not None
    torch.testing.assert_close(result.gramian, ref @ ref.T, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in net.shared()]),  # type: ignore[union-attr]
                               jac.sum(0))
    got_heads = [torch.zeros_like(p) if p.grad is None else p.grad for p in net.head_params()]
    assert_close_lists(got_heads, list(expected_heads))  # task 1 has scale 0: zero gradient


def test_per_task_gradients_unused_parameter_gives_zeros() -> None:
    net = Net()
    unused = nn.Parameter(torch.ones(3, dtype=DT))
    _, losses = net.losses()
    got = per_task_gradients(losses, [*net.shared(), unused])
    assert torch.equal(got[:, -3:], torch.zeros(3, 3, dtype=DT))


# ------------------------------------------------------------------ task_gramian
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("exploit_linear", [True, False])
@pytest.mark.parametrize(("wide", "bias"), [(12, True), (3, True), (12, False)])
def test_task_gramian_equals_jjt(strategy: Any, exploit_linear: bool, wide: int,
                                 bias: bool) -> None:
    net = Net(wide=wide, bias=bias)
    _, losses = net.losses()
    jac = reference_jacobian(losses, net.shared())
    got = task_gramian(losses, net.shared(), strategy=strategy, exploit_linear=exploit_linear)
    torch.testing.assert_close(got, jac @ jac.T, atol=1e-10, rtol=1e-10)


def test_task_gramian_tied_weight_and_3d_inputs() -> None:
    torch.manual_seed(3)
    lin = nn.Linear(4, 4).to(DT)  # used twice: its gradient has two contributions
    heads = [nn.Linear(4, 1).to(DT) for _ in range(3)]
    x = torch.randn(2, 6, 4, dtype=DT)  # 3-D input: linear sees a flattened 2-D matrix
    z = torch.tanh(lin(torch.tanh(lin(x)))).mean(1)
    losses = torch.stack([h(z).pow(2).mean() for h in heads])
    jac = reference_jacobian(losses, list(lin.parameters()))
    got = task_gramian(losses, lin.parameters())
    torch.testing.assert_close(got, jac @ jac.T, atol=1e-10, rtol=1e-10)


# ------------------------------------------------------------------ mtl_backward
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("mode", "with_features"),
                         [("parameter", False), ("parameter", True), ("representation", True)])
def test_mean_weighting_equals_mean_loss_backward(mode: Any, strategy: Any,
                                                  with_features: bool) -> None:
    net = Net()
    z, losses = net.losses()
    losses.mean().backward(inputs=net.shared(), retain_graph=True)
    losses.sum().backward(inputs=net.head_params())  # heads: unit weights
    expected = net.grads()
    net.zero()
    z, losses = net.losses()
    result = mtl_backward(losses, net.shared(), [h.parameters() for h in net.heads],
                          method=MeanWeighting(), mode=mode,  # type: ignore[arg-type]
                          features=z if with_features else None, strategy=strategy)
    assert_close_lists(net.grads(), expected)
    torch.testing.assert_close(result.weights, torch.full((3,), 1 / 3, dtype=DT))


@pytest.mark.parametrize("method", [SumWeighting(), EqualWeighting(3)])
@pytest.mark.parametrize("mode", ["parameter", "representation"])
def test_sum_methods_equal_summed_loss_backward(method: object, mode: Any) -> None:
    net = Net()
    _, losses = net.losses()
    losses.sum().backward()
    expected = net.grads()
    net.zero()
    z, losses = net.losses()
    mtl_backward(losses, net.shared(), net.head_params(), method=method,
                 mode=mode, features=z)  # type: ignore[arg-type]
    assert_close_lists(net.grads(), expected)


@pytest.mark.parametrize("method", [UPGradWeighting(), MGDAWeighting(), MGDA()])
@pytest.mark.parametrize("mode", ["parameter", "representation"])
def test_single_task_equals_plain_backward(method: object, mode: Any) -> None:
    net = Net(n_tasks=1)
    _, losses = net.losses()
    losses.sum().backward()
    expected = net.grads()
    net.zero()
    z, losses = net.losses()
    result = mtl_backward(losses, net.shared(), net.head_params(), method=method, mode=mode,
                          features=z)  # type: ignore[arg-type]
    assert_close_lists(net.grads(), expected)
    assert result.weights is not None and result.weights.tolist() == pytest.approx([1.0])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_parameter_mgda_equals_aggregator_on_explicit_jacobian(strategy: Any) -> None:
    net = Net(n_tasks=4)
    _, losses = net.losses()
    jac = reference_jacobian(losses, net.shared())
    direction = MGDA()(jac)
    result = mtl_backward(losses, net.shared(), net.head_params(), method=MGDAWeighting(),
                          strategy=strategy)
    got = torch.cat([p.grad.reshape(-1) for p in net.shared()])  # type: ignore[union-attr]
    torch.testing.assert_close(got, direction, atol=1e-9, rtol=1e-9)
    assert result.gramian is not None
    torch.testing.assert_close(result.gramian, jac @ jac.T, atol=1e-10, rtol=1e-10)
    cos = result.cosine
    assert cos is not None
    norms = jac.norm(dim=1)
    torch.testing.assert_close(cos, (jac @ jac.T) / torch.outer(norms, norms))


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("method", [UPGrad(), MGDAWeighting()])
def test_representation_mode_equals_aggregated_feature_jacobian(strategy: Any,
                                                                method: object) -> None:
    net = Net(n_tasks=4)
    z, losses = net.losses()
    jz = torch.stack([torch.autograd.grad(losses[i], z, retain_graph=True)[0].reshape(-1)
                      for i in range(4)])
    d_z = UPGrad()(jz) if isinstance(method, UPGrad) else MGDA()(jz)
    expected = torch.autograd.grad(z, net.shared(), d_z.reshape(z.shape), retain_graph=True)
    result = mtl_backward(losses, net.shared(), net.head_params(), method=method,
                          mode="representation", features=z, strategy=strategy)
    assert_close_lists([p.grad for p in net.shared()], list(expected), tol=1e-9)  # type: ignore[misc]
    assert result.gramian is not None
    torch.testing.assert_close(result.gramian, jz @ jz.T, atol=1e-10, rtol=1e-10)


def test_representation_mode_with_a_shared_node_falls_back_correctly() -> None:
    net = Net()
    z = net.encoder(net.x)
    shared_view = z * 2.0  # one node read by every head: per-node hooks cannot separate
    losses = torch.stack([h(shared_view)[:, 0].pow(2).mean() for h in net.heads])
    jz = torch.stack([torch.autograd.grad(losses[i], z, retain_graph=True)[0].reshape(-1)
                      for i in range(3)])
    result = mtl_backward(losses, net.shared(), net.head_params(), method=SumWeighting(),
                          mode="representation", features=z)
    assert result.gramian is not None
    torch.testing.assert_close(result.gramian, jz @ jz.T, atol=1e-10, rtol=1e-10)


def test_feature_consumers_separate_heads_only_when_exclusive() -> None:
    from polytask.deep._graph import feature_consumers, task_roots

    net = Net()
    z, losses = net.losses()
    roots = task_roots(losses)
    assert roots is not None
    found = feature_consumers(roots, [z])
    assert found is not None and all(len(per_task) == 1 for per_task in found)
    shared_view = z * 2.0
    losses = torch.stack([h(shared_view)[:, 0].sum() for h in net.heads])
    roots = task_roots(losses)
    assert roots is not None and feature_consumers(roots, [z]) is None


def test_generic_aggregator_gets_explicit_jacobian() -> None:
    class FirstRow(Aggregator):
        def __call__(self, jacobian: Tensor) -> Tensor:
            return jacobian[0]

    for mode in ("parameter", "representation"):
        net = Net()
        z, losses = net.losses()
        expected = torch.autograd.grad(losses[0], net.shared(), retain_graph=True)
        result = mtl_backward(losses, net.shared(), net.head_params(), method=FirstRow(),
                              mode=mode, features=z)  # type: ignore[arg-type]
        assert result.weights is None and result.gramian is None
        assert_close_lists([p.grad for p in net.shared()], list(expected))  # type: ignore[misc]


def test_head_weights_method_scales_each_head() -> None:
    net = Net()
    _, losses = net.losses()
    weights = torch.tensor([0.5, 2.0, 3.0], dtype=DT)
    expected = torch.autograd.grad((weights * losses).sum(), net.head_params(),
                                   retain_graph=True)
    mtl_backward(losses, net.shared(), net.head_params(), method=lambda g: weights,
                 head_weights="method")
    assert_close_lists([p.grad for p in net.head_params()], list(expected))  # type: ignore[misc]


def test_task_params_inferred_from_the_graph() -> None:
    net = Net()
    _, losses = net.losses()
    losses.sum().backward()
    expected = net.grads()
    net.zero()
    z, losses = net.losses()
    mtl_backward(losses, net.shared(), method=SumWeighting(), mode="representation", features=z)
    assert_close_lists(net.grads(), expected)


def test_gradients_accumulate_and_retain_graph() -> None:
    net = Net()
    _, losses = net.losses()
    mtl_backward(losses, net.shared(), net.head_params(), method=SumWeighting(),
                 retain_graph=True)
    once = net.grads()
    mtl_backward(losses, net.shared(), net.head_params(), method=SumWeighting())
    assert_close_lists(net.grads(), [2 * g for g in once])


def test_task_without_labels_gives_no_nan() -> None:
    net = Net()
    z = net.encoder(net.x)
    out = [(h(z)[:, 0] - net.y[:, i]).pow(2).mean() for i, h in enumerate(net.heads)]
    out[1] = net.heads[1](z).sum() * 0.0  # what TaskSet.losses does for an absent task
    losses = torch.stack(out)
    for method in (MGDAWeighting(), UPGradWeighting(), MeanWeighting()):
        net.zero()
        result = mtl_backward(losses, net.shared(), net.head_params(), method=method,
                              retain_graph=True)
        assert all(torch.isfinite(g).all() for g in net.grads())
        assert result.weights is not None and torch.isfinite(result.weights).all()
        assert result.cosine is not None and torch.isfinite(result.cosine).all()
    net.zero()
    result = mtl_backward(losses, net.shared(), net.head_params(), method=MGDAWeighting(),
                          skip_zero_gradient_tasks=True)
    assert result.weights is not None and result.weights[1] == 0
    assert result.gramian is not None
    keep = torch.tensor([0, 2])
    sub = MGDAWeighting()(result.gramian[keep][:, keep])
    torch.testing.assert_close(result.weights[keep], sub)
    assert float(torch.cat([p.grad.reshape(-1) for p in net.shared()]).norm()) > 0  # type: ignore[union-attr]


def test_stateful_gradvac_threads_its_state() -> None:
    net = Net()
    _, losses = net.losses()
    jac = reference_jacobian(losses, net.shared())
    weighting = GradVacWeighting(beta=0.5)
    expected, expected_state = weighting(jac @ jac.T, weighting.init_state(3),
                                         generator=torch.Generator().manual_seed(4))
    result = mtl_backward(losses, net.shared(), net.head_params(), method=weighting,
                          generator=torch.Generator().manual_seed(4))
    assert result.weights is not None
    torch.testing.assert_close(result.weights, expected, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(result.state.targets, expected_state.targets,
                               atol=1e-9, rtol=1e-9)


def test_pcgrad_generator_is_forwarded() -> None:
    net = Net(n_tasks=4)
    _, losses = net.losses()
    jac = reference_jacobian(losses, net.shared())
    expected = PCGradWeighting()(jac @ jac.T, generator=torch.Generator().manual_seed(9))
    result = mtl_backward(losses, net.shared(), net.head_params(), method=PCGradWeighting(),
                          generator=torch.Generator().manual_seed(9))
    assert result.weights is not None
    torch.testing.assert_close(result.weights, expected, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("mode", ["parameter", "representation"])
def test_loss_weightings(mode: Any) -> None:
    net = Net()
    uw = UncertaintyWeighting(3).to(DT)
    z, losses = net.losses()
    uw(losses).backward()
    expected = net.grads() + [p.grad.clone() for p in uw.parameters()]  # type: ignore[union-attr]
    net.zero()
    uw.zero_grad()
    z, losses = net.losses()
    result = mtl_backward(losses, net.shared(), net.head_params(), method=uw, mode=mode,
                          features=z)  # type: ignore[arg-type]
    assert_close_lists(net.grads() + [p.grad for p in uw.parameters()], expected)  # type: ignore[operator]
    assert result.gramian is None and result.weights is not None
    z, losses = net.losses()
    ref = (reference_jacobian(losses, net.shared()) if mode == "parameter"
           else torch.stack([torch.autograd.grad(losses[i], z, retain_graph=True)[0].reshape(-1)
                             for i in range(3)]))
    result = mtl_backward(losses, net.shared(), net.head_params(), method=GradNorm(3),
                          mode=mode, features=z)  # type: ignore[arg-type]
    assert result.gramian is not None
    torch.testing.assert_close(result.gramian, ref @ ref.T, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("head_weights", ["unit", "method"])
def test_loss_weighting_head_weights(head_weights: Any) -> None:
    net = Net()
    weights = torch.tensor([0.5, 2.0, 3.0], dtype=DT)
    _, losses = net.losses()
    (weights * losses).sum().backward(inputs=net.shared(), retain_graph=True)
    head_w = torch.ones(3, dtype=DT) if head_weights == "unit" else weights
    (head_w * losses).sum().backward(inputs=net.head_params())
    expected = net.grads()
    net.zero()
    _, losses = net.losses()
    result = mtl_backward(losses, net.shared(), None, method=StaticWeighting([0.5, 2.0, 3.0]),
                          head_weights=head_weights)
    assert_close_lists(net.grads(), expected)
    assert result.weights is not None
    assert result.weights.tolist() == pytest.approx([0.5, 2.0, 3.0])


def test_shared_bottom_architecture() -> None:
    torch.manual_seed(0)
    model = SharedBottom(MLP([6, 16, 8], activate_last=True),
                         {t: MLP([8, 4, 1]) for t in "abc"}).to(DT)
    x, y = torch.randn(5, 6, dtype=DT), torch.randn(5, 3, dtype=DT)

    def losses_of(z: Tensor) -> Tensor:
        preds = model.decode(z, x)
        return torch.stack([(preds[t][:, 0] - y[:, i]).pow(2).mean()
                            for i, t in enumerate(model.task_names)])

    z = model.encode(x)
    assert isinstance(z, Tensor)
    losses = losses_of(z)
    jac = reference_jacobian(losses, list(model.shared_parameters()))
    direction = UPGrad()(jac)
    mtl_backward(losses, model.shared_parameters(),
                 [model.task_parameters(t) for t in model.task_names],
                 method=UPGradWeighting(), features=z)
    got = torch.cat([p.grad.reshape(-1) for p in model.shared_parameters()])  # type: ignore[union-attr]
    torch.testing.assert_close(got, direction, atol=1e-8, rtol=1e-8)
