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
from polytask.deep._architectures._stacked_heads import (
    linear_heads,
    stacked_linear,
    stacked_mmoe,
)
from polytask.deep.aggregation import MGDAWeighting, UPGrad
from polytask.deep.architectures import MLP, MMoE, SharedBottom
from polytask.deep.trainer import Trainer
from polytask.deep.weighting import FAMO, EqualWeighting, UncertaintyWeighting
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


def _mmoe(stem: bool = False, towers: dict[str, nn.Module] | None = None,
          gates: dict[str, nn.Module] | None = None) -> MMoE:
    torch.manual_seed(4)
    d = D_H if stem else D_IN
    return MMoE([MLP([d, D_H], activate_last=True) for _ in range(3)],
                towers or {t: MLP([D_H, 1]) for t in NAMES},
                gate_input_dim=None if gates else d, gates=gates,
                stem=MLP([D_IN, D_H], activate_last=True) if stem else None)


@pytest.mark.parametrize("stem", [False, True])
def test_stacked_mmoe_equals_decode_with_its_gradients(stem: bool) -> None:
    model = _mmoe(stem, towers={t: MLP([D_H, 2]) for t in NAMES})  # two outputs each
    x = torch.randn(5, D_IN)
    feats = model.encode(x)
    fast = stacked_mmoe(model, feats, x)
    assert fast is not None
    slow = model.decode(feats, x)
    assert list(fast) == list(slow)
    w = {t: torch.randn_like(slow[t]) for t in slow}
    params = list(model.parameters())
    got = torch.autograd.grad(sum((fast[t] * w[t]).sum() for t in w), params,
                              retain_graph=True)
    want = torch.autograd.grad(sum((slow[t] * w[t]).sum() for t in w), params)
    for t in slow:
        torch.testing.assert_close(fast[t], slow[t])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_stacked_mmoe_declines_other_gates_and_towers() -> None:
    x = torch.randn(5, D_IN)
    deep = _mmoe(towers={t: MLP([D_H, 4, 1]) for t in NAMES})
    widths = _mmoe(towers={t: MLP([D_H, 1 + i % 2]) for i, t in enumerate(NAMES)})
    custom = _mmoe(gates={t: nn.Sequential(nn.Linear(D_IN, 3)) for t in NAMES})
    for model in (deep, widths, custom):
        assert stacked_mmoe(model, model.encode(x), x) is None
    shared = _model()
    assert stacked_mmoe(shared, shared.encode(x), x) is None


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
    """The number of tasks of every stacked evaluation (SharedBottom or MMoE)."""
    calls: list[int] = []
    linear, mmoe = deep_setup.stacked_linear, deep_setup.stacked_mmoe

    def spy_linear(layers: Any, features: Tensor) -> list[Tensor]:
        calls.append(len(layers))
        return linear(layers, features)

    def spy_mmoe(model: Any, features: Any, x: Tensor) -> Any:
        out = mmoe(model, features, x)
        if out is not None:
            calls.append(len(out))
        return out

    monkeypatch.setattr(deep_setup, "stacked_linear", spy_linear)
    monkeypatch.setattr(deep_setup, "stacked_mmoe", spy_mmoe)
    return calls


def _fit(model: nn.Module, method: Any) -> nn.Module:
    tasks = TaskSet([Task(t, kind="binary") for t in NAMES])
    Trainer(max_epochs=2, batch_size=8, progress=False, tensorboard=False, seed=0).fit(
        model, tasks, method, functools.partial(torch.optim.SGD, lr=0.5), _data())
    return model


@pytest.mark.parametrize("arch", ["shared_bottom", "mmoe"])
@pytest.mark.parametrize("make", [lambda: EqualWeighting(NAMES),
                                  lambda: UncertaintyWeighting(NAMES),
                                  lambda: FAMO(NAMES)])  # FAMO: a second forward per step
def test_a_loss_weighting_trains_the_same_with_the_fast_path(
        make: Any, arch: str, stack_calls: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    build = _model if arch == "shared_bottom" else _mmoe
    fast = _fit(build(), make())
    assert stack_calls and set(stack_calls) == {N_TASKS}  # the fast path was taken
    stack_calls.clear()
    monkeypatch.setattr(deep_setup.ForwardModule, "_stacked", lambda self, f, x: None)
    monkeypatch.setattr(TaskSet, "losses", functools.partialmethod(
        TaskSet.losses, grouped=False))  # type: ignore[arg-type]
    slow = _fit(build(), make())
    assert not stack_calls
    for (name, a), b in zip(fast.named_parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_per_task_gradient_methods_keep_one_head_per_task(stack_calls: list[int]) -> None:
    _fit(_model(), MGDAWeighting())
    _fit(_mmoe(), MGDAWeighting())
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


def test_experiment_adam_merges_the_groups_that_share_their_settings() -> None:
    from polytask.deep._setup import build_optimizer

    model = SharedBottom(nn.Linear(3, 4), {t: nn.Linear(4, 1) for t in ("a", "b", "c")})
    tasks = TaskSet([Task("a"), Task("b", lr_scale=10.0), Task("c")])
    spec = DeepModelConfig(name="m", optimizer="adam", lr=0.01)
    opt = build_optimizer(optimizer_factory(spec), model, tasks, None)
    assert [g["name"] for g in opt.param_groups] == ["shared and 2 more", "task:b"]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.1])
    held = [{id(p) for p in g["params"]} for g in opt.param_groups]
    assert held[1] == {id(p) for p in model.task_parameters("b")}
    assert held[0] | held[1] == {id(p) for p in model.parameters()}


@pytest.mark.parametrize("mode", ["parameter", "representation"])
@pytest.mark.parametrize("make", [lambda: EqualWeighting(NAMES), lambda: MGDAWeighting(),
                                  lambda: UPGrad()])
def test_fused_adam_trains_like_the_per_tensor_loop(make: Any, mode: str) -> None:
    """The engine's gradients keep their parameters' layout (a transposed ``.grad`` would
    make the fused kernel update the wrong entries: 0.3 apart after 3 epochs)."""
    models = []
    for options in ({"fused": True}, {"foreach": False}):
        model = _model()
        tasks = TaskSet([Task(t, kind="binary") for t in NAMES])
        Trainer(max_epochs=3, batch_size=8, progress=False, tensorboard=False, seed=0,
                mode=mode).fit(model, tasks, make(),
                               functools.partial(torch.optim.AdamW, lr=0.01, **options), _data())
        models.append(model)
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_grad_like_returns_the_parameter_layout() -> None:
    from polytask.deep._backward_impl import grad_like

    param = nn.Parameter(torch.zeros(3, 4))
    transposed = torch.arange(12.0).reshape(4, 3).T
    out = grad_like(param, transposed)
    assert out.stride() == param.stride() and out._base is None
    torch.testing.assert_close(out, transposed)
    flat = torch.arange(12.0, dtype=torch.float64)[None]
    out = grad_like(param, flat[0])  # a view of another shape and dtype
    assert out.dtype == param.dtype and out.shape == param.shape and out._base is None


def test_famo_second_forward_takes_the_stacked_path_too(stack_calls: list[int]) -> None:
    _fit(_model(), EqualWeighting(NAMES))
    one_per_step = len(stack_calls)
    stack_calls.clear()
    _fit(_model(), FAMO(NAMES))
    assert one_per_step > 0 and len(stack_calls) == 2 * one_per_step


def test_evaluation_stacks_the_heads_and_scores_like_the_model(
        stack_calls: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    model, tasks = _model(), TaskSet([Task(t, kind="binary") for t in NAMES])
    trainer = Trainer(max_epochs=1, batch_size=8, progress=False, tensorboard=False)
    fast = trainer.evaluate(model, tasks, _data())
    assert stack_calls and set(stack_calls) == {N_TASKS}
    monkeypatch.setattr(deep_setup.ForwardModule, "_stacked", lambda self, f, x: None)
    slow = trainer.evaluate(model, tasks, _data())
    for t in NAMES:
        for metric, value in slow[t].items():
            assert fast[t][metric] == pytest.approx(value, rel=1e-6, abs=1e-7), (t, metric)
