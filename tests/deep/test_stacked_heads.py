"""Stacked linear heads: same outputs and gradients, used only for one-objective steps."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import polytask.deep._setup as deep_setup
from polytask._config_models import DeepModelConfig
from polytask._fit_deep import optimizer_factory
from polytask.data import MultiTaskTorchDataset
from polytask.deep._architectures._stacked_heads import linear_heads, stacked_linear
from polytask.deep.aggregation import MGDAWeighting
from polytask.deep.architectures import MLP, SharedBottom
from polytask.deep.trainer import Trainer
from polytask.deep.weighting import EqualWeighting, UncertaintyWeighting
from polytask.tasks import Task, TaskSet

pytestmark = pytest.mark.usefixtures("torch_one_thread")

D_IN, D_H, N_TASKS = 6, 8, 12
NAMES = [f"t{i}" for i in range(N_TASKS)]


class _Scaled(nn.Linear):
    """A Linear subclass: its forward may differ, so it must not be stacked."""


def test_linear_heads_accepts_only_plain_linear_layers() -> None:
    plain = [nn.Linear(4, 1), MLP([4, 2]), nn.Sequential(nn.Linear(4, 3))]
    assert linear_heads(plain) == [plain[0], plain[1][0], plain[2][0]]
    assert linear_heads([nn.Linear(4, 1)]) is None  # one head: nothing to stack
    assert linear_heads([nn.Linear(4, 1), MLP([4, 3, 1])]) is None
    assert linear_heads([nn.Linear(4, 1), _Scaled(4, 1)]) is None
    assert linear_heads([nn.Linear(4, 1), nn.Linear(5, 1)]) is None
    assert linear_heads([nn.Linear(4, 1), nn.Linear(4, 1, bias=False)]) is None
    assert linear_heads([nn.Linear(4, 1), nn.Linear(4, 1).double()]) is None
    hooked = nn.Linear(4, 1)
    hooked.register_forward_hook(lambda *_: None)
    assert linear_heads([nn.Linear(4, 1), hooked]) is None


@pytest.mark.parametrize("bias", [True, False])
def test_stacked_linear_equals_each_head_with_its_gradients(bias: bool) -> None:
    torch.manual_seed(0)
    layers = [nn.Linear(D_H, k, bias=bias) for k in (1, 3, 1, 2)]
    z = torch.randn(7, D_H, requires_grad=True)
    outs = stacked_linear(layers, z)
    refs = [layer(z) for layer in layers]
    w = [torch.randn_like(r) for r in refs]
    params = [z, *(p for layer in layers for p in layer.parameters())]
    got = torch.autograd.grad(sum((o * c).sum() for o, c in zip(outs, w, strict=True)), params)
    want = torch.autograd.grad(sum((r * c).sum() for r, c in zip(refs, w, strict=True)), params)
    for o, r in zip(outs, refs, strict=True):
        torch.testing.assert_close(o, r)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def _model() -> SharedBottom:
    torch.manual_seed(1)
    return SharedBottom(MLP([D_IN, D_H], activate_last=True),
                        {t: MLP([D_H, 1]) for t in NAMES})


def _data() -> MultiTaskTorchDataset:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(40, D_IN, generator=g)
    targets = {t: (torch.rand(40, generator=g) < 0.5).float() for t in NAMES}
    for i, t in enumerate(NAMES):
        targets[t][i::5] = float("nan")  # missing labels, different per task
    return MultiTaskTorchDataset(x, targets)


@pytest.fixture
def stack_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = deep_setup.stacked_linear

    def spy(layers: Any, features: Tensor) -> list[Tensor]:
        calls.append(len(layers))
        return original(layers, features)

    monkeypatch.setattr(deep_setup, "stacked_linear", spy)
    return calls


def _fit(model: nn.Module, method: Any) -> nn.Module:
    tasks = TaskSet([Task(t, kind="binary") for t in NAMES])
    Trainer(max_epochs=2, batch_size=8, progress=False, tensorboard=False, seed=0).fit(
        model, tasks, method, functools.partial(torch.optim.SGD, lr=0.5), _data())
    return model


@pytest.mark.parametrize("make", [lambda: EqualWeighting(NAMES),
                                  lambda: UncertaintyWeighting(NAMES)])
def test_a_loss_weighting_trains_the_same_with_the_fast_path(
        make: Any, stack_calls: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _fit(_model(), make())
    assert stack_calls and set(stack_calls) == {N_TASKS}  # the fast path was taken
    stack_calls.clear()
    monkeypatch.setattr(deep_setup, "linear_heads", lambda heads: None)
    monkeypatch.setattr(TaskSet, "losses", functools.partialmethod(
        TaskSet.losses, grouped=False))  # type: ignore[arg-type]
    slow = _fit(_model(), make())
    assert not stack_calls
    for (name, a), b in zip(fast.named_parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_per_task_gradient_methods_keep_one_head_per_task(stack_calls: list[int]) -> None:
    _fit(_model(), MGDAWeighting())
    assert not stack_calls


def test_experiment_adam_is_fused_unless_the_configuration_chooses() -> None:
    params = [nn.Parameter(torch.zeros(3))]
    spec = DeepModelConfig(name="m", architecture="shared_bottom", optimizer="adamw")
    assert optimizer_factory(spec)(params).defaults["fused"] is True
    chosen = dataclasses.replace(spec, optimizer_params={"foreach": True})
    opt = optimizer_factory(chosen)(params)
    assert not opt.defaults["fused"] and opt.defaults["foreach"] is True
    sgd = dataclasses.replace(spec, optimizer="sgd")
    assert isinstance(optimizer_factory(sgd)(params), torch.optim.SGD)
    groups = [{"params": (q for q in [nn.Parameter(torch.zeros(2))]), "lr": 0.1}]
    opt = optimizer_factory(spec)(groups)  # per-task groups, params given as a generator
    assert opt.defaults["fused"] is True
    assert opt.param_groups[0]["lr"] == 0.1 and len(opt.param_groups[0]["params"]) == 1
    # no fused kernel for complex parameters: the default implementation is used
    odd = [nn.Parameter(torch.zeros(3, dtype=torch.complex64))]
    assert not optimizer_factory(spec)(odd).defaults["fused"]
