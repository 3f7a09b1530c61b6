"""The trainer reaches the engine's fast path: features in parameter mode, strategy="auto"
under DDP, and the same update as per-task autograd gradients."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Literal

import pytest
import torch
from torch import Tensor, nn

import polytask.deep._step as step_module
import polytask.deep.backward as backward_module
from polytask.data import MultiTaskTorchDataset
from polytask.deep._setup import uses_features
from polytask.deep._step import StepEngine
from polytask.deep.aggregation import (
    MGDA,
    GradVac,
    MGDAWeighting,
    UPGrad,
    UPGradWeighting,
)
from polytask.deep.architectures import (
    CGC,
    MLP,
    PLE,
    CrossStitch,
    MMoE,
    PLELevel,
    SharedBottom,
    SoftSharing,
    TaskGraph,
    TaskNode,
)
from polytask.deep.trainer import Trainer
from polytask.deep.weighting import EqualWeighting, GradNorm
from polytask.tasks import Task, TaskSet

D_IN, D_H = 5, 6
NAMES = ("r", "s", "t")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _block(d_in: int = D_IN) -> nn.Module:
    return MLP([d_in, D_H], activate_last=True)


def _heads(names: tuple[str, ...] = NAMES) -> Mapping[str, nn.Module]:
    return {t: nn.Linear(D_H, 1) for t in names}


ARCHS: dict[str, Callable[[], nn.Module]] = {
    "shared_bottom": lambda: SharedBottom(_block(), _heads()),
    "mmoe": lambda: MMoE([_block() for _ in range(2)], _heads(), gate_input_dim=D_IN),
    "cgc": lambda: CGC([_block()], {t: [_block()] for t in NAMES}, _heads(),
                       gate_input_dim=D_IN),
    "ple": lambda: PLE([PLELevel([_block()], {t: [_block()] for t in NAMES}, D_IN),
                        PLELevel([_block(D_H)], {t: [_block(D_H)] for t in NAMES}, D_H)],
                       _heads()),
    "cross_stitch": lambda: CrossStitch({t: [_block(), _block(D_H)] for t in NAMES}, _heads()),
    "task_graph": lambda: TaskGraph({
        "r": TaskNode(nn.Linear(D_H, 1), inputs="shared"),
        "s": TaskNode(nn.Linear(D_H, 1), inputs="shared"),
        "t": TaskNode(MLP([2, 1]), inputs=("r", "s"), combine="cat"),
    }, encoder=_block()),
}

METHODS: dict[str, Callable[[], Any]] = {
    "EW": lambda: EqualWeighting(list(NAMES)),
    "GradNorm": lambda: GradNorm(list(NAMES)),
    "MGDA": lambda: MGDA(),
    "UPGrad": lambda: UPGrad(),
    "GradVac": lambda: GradVac(beta=0.5, generator=torch.Generator().manual_seed(1)),
}


def _data(n: int = 12, missing: bool = True) -> MultiTaskTorchDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, D_IN, generator=g)
    targets = {t: torch.randn(n, generator=g) for t in NAMES}
    if missing:
        targets["r"][::4] = float("nan")
    return MultiTaskTorchDataset(x, targets)


def _tasks() -> TaskSet:
    """Task ``s`` steps every second step and ``t`` is weighted by 0.5."""
    return TaskSet([Task("r"), Task("s", period=2), Task("t", weight=0.5)])


def _fit(model: nn.Module, method: Any, data: MultiTaskTorchDataset, *, tasks: Any = None,
         epochs: int = 2, batch_size: int = 6, lr: float = 0.1) -> Trainer:
    trainer = Trainer(max_epochs=epochs, batch_size=batch_size, progress=False,
                      tensorboard=False)
    trainer.fit(model, tasks if tasks is not None else _tasks(), method,
                functools.partial(torch.optim.SGD, lr=lr), data)
    return trainer


class ForwardOverride(SharedBottom):
    """Overrides ``forward`` alone: the trainer must keep calling it."""

    def __init__(self) -> None:
        base = SharedBottom(_block(), _heads())
        super().__init__(base.encoder, dict(zip(base.task_names, base.heads, strict=True)))
        self.calls = 0

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        self.calls += 1
        return super().forward(x)


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Keyword arguments of every ``mtl_backward`` call made by the trainer."""
    calls: list[dict[str, Any]] = []
    original = backward_module.mtl_backward

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(backward_module, "mtl_backward", spy)
    return calls


@pytest.fixture
def autograd_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per autograd pass (``torch.autograd.grad`` / ``backward``)."""
    calls: list[str] = []
    grad, backward = torch.autograd.grad, torch.autograd.backward

    def counted_grad(*args: Any, **kwargs: Any) -> Any:
        calls.append("grad")
        return grad(*args, **kwargs)

    def counted_backward(*args: Any, **kwargs: Any) -> Any:
        calls.append("backward")
        return backward(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counted_grad)
    monkeypatch.setattr(torch.autograd, "backward", counted_backward)
    return calls


# ---------------------------------------------------------------- which path
@pytest.mark.parametrize("arch", list(ARCHS))
def test_parameter_mode_hands_the_features_to_the_engine(arch: str,
                                                         engine_calls: list[dict[str, Any]]
                                                         ) -> None:
    torch.manual_seed(0)
    _fit(ARCHS[arch](), UPGrad(), _data(), epochs=1)
    assert len(engine_calls) == 2  # 12 examples, batches of 6
    for kwargs in engine_calls:
        assert kwargs["mode"] == "parameter"
        assert kwargs["features"] is not None and len(kwargs["features"]) >= 1
        assert all(f.grad_fn is not None for f in kwargs["features"])


def test_models_without_a_usable_representation_keep_the_per_task_passes(
        engine_calls: list[dict[str, Any]]) -> None:
    torch.manual_seed(0)
    towers = {t: nn.Sequential(_block(), nn.Linear(D_H, 1)) for t in NAMES}
    _fit(SoftSharing(towers, strength=0.1), UPGrad(), _data(), epochs=1)
    override = ForwardOverride()
    _fit(override, UPGrad(), _data(), epochs=1)
    assert override.calls == 2  # its own forward ran at every step
    assert len(engine_calls) == 4
    assert all(kwargs["features"] is None for kwargs in engine_calls)


@pytest.mark.parametrize(
    ("make", "representation", "expected"),
    [(lambda: SharedBottom(_block(), _heads()), False, True),
     (lambda: SharedBottom(_block(), _heads()), True, True),
     (lambda: ForwardOverride(), False, False),
     (lambda: ForwardOverride(), True, True),  # representation mode: encode/decode always
     (lambda: SoftSharing({t: _block() for t in NAMES}, strength=0.1), False, False),
     (lambda: nn.Linear(2, 2), False, False)],
)
def test_uses_features(make: Callable[[], nn.Module], representation: bool,
                       expected: bool) -> None:
    assert uses_features(make(), representation) is expected


def test_frozen_shared_parameters_disable_the_features() -> None:
    model = SharedBottom(_block(), _heads())
    for p in model.shared_parameters():
        p.requires_grad_(False)
    assert uses_features(model, False) is False


# ---------------------------------------------------------------- cost
@pytest.mark.parametrize("method", ["UPGrad", "GradVac", "GradNorm"])
def test_fast_path_runs_two_passes_whatever_the_number_of_tasks(
        method: str, autograd_calls: list[str]) -> None:
    """Features: one pass through the heads, one batched pass through the encoder; the
    per-task path runs at least one pass per task."""
    counts = {}
    g = torch.Generator().manual_seed(0)
    for names in (("r", "s"), ("r", "s", "t", "u", "v")):
        tasks = TaskSet([Task(t) for t in names])
        data = MultiTaskTorchDataset(torch.randn(6, D_IN, generator=g),
                                     {t: torch.randn(6, generator=g) for t in names})
        for label, model in (("fast", SharedBottom(_block(), _heads(names))),
                             ("plain", _override(_heads(names)))):
            made = GradNorm(list(names)) if method == "GradNorm" else METHODS[method]()
            autograd_calls.clear()
            _fit(model, made, data, tasks=tasks, epochs=1)  # one step
            counts[label, len(names)] = len(autograd_calls)
    extra = 1 if method == "GradNorm" else 0  # the loss weighting's own objective
    assert counts["fast", 2] == counts["fast", 5] == 2 + extra
    assert counts["plain", 2] >= 2 + extra
    assert counts["plain", 5] >= 5 + extra


def _override(heads: Mapping[str, nn.Module]) -> nn.Module:
    class Plain(SharedBottom):
        def forward(self, x: Tensor) -> dict[str, Tensor]:
            return super().forward(x)

    return Plain(_block(), heads)


# ---------------------------------------------------------------- the update
def _reference_step(model: SharedBottom, data: MultiTaskTorchDataset, tasks: TaskSet,
                    weighting: Callable[[Tensor], Tensor], lr: float) -> None:
    """One SGD step from explicit per-task autograd gradients: shared ``Jᵀ w``, heads
    the gradient of ``Σ c_t L_t`` (``c_t`` = task weight)."""
    shared = list(model.shared_parameters())
    heads = [p for t in tasks.names for p in model.task_parameters(t)]
    losses = tasks.losses(model(data.x), data.targets)
    assert isinstance(losses, Tensor)
    c = torch.tensor([t.weight for t in tasks])
    rows = []
    for i in range(len(tasks)):
        grads = torch.autograd.grad(c[i] * losses[i], shared, retain_graph=True)
        rows.append(torch.cat([g.flatten() for g in grads]))
    jac = torch.stack(rows)
    w = weighting(jac @ jac.T)
    update = jac.T @ w
    head_grads = torch.autograd.grad((c * losses).sum(), heads)
    with torch.no_grad():
        offset = 0
        for p in shared:
            p.sub_(lr * update[offset: offset + p.numel()].reshape(p.shape))
            offset += p.numel()
        for p, g in zip(heads, head_grads, strict=True):
            p.sub_(lr * g)


@pytest.mark.parametrize(("method", "weighting"),
                         [(UPGrad, UPGradWeighting), (MGDA, MGDAWeighting)])
def test_parameter_mode_step_equals_per_task_autograd(method: Any, weighting: Any,
                                                      engine_calls: list[dict[str, Any]]
                                                      ) -> None:
    tasks = TaskSet([Task("r"), Task("s"), Task("t", weight=0.5)])
    data = _data(n=8)
    torch.manual_seed(0)
    model = SharedBottom(_block(), _heads())
    torch.manual_seed(0)
    reference = SharedBottom(_block(), _heads())
    _reference_step(reference, data, tasks, weighting(), lr=0.1)
    _fit(model, method(), data, tasks=tasks, epochs=1, batch_size=8)
    assert engine_calls and engine_calls[0]["features"] is not None  # the fast path ran
    moved = 0.0
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
        moved = max(moved, float((p.detach() - _initial(name)).abs().max()))
    assert moved > 1e-3


def _initial(name: str) -> Tensor:
    torch.manual_seed(0)
    return dict(SharedBottom(_block(), _heads()).named_parameters())[name].detach()


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("arch", list(ARCHS))
def test_features_path_equals_the_per_task_path(monkeypatch: pytest.MonkeyPatch, arch: str,
                                                method: str) -> None:
    """The engine's fast path (features) and the trainer's explicit per-task path (no
    features, the one DDP uses) give the same run; periods, a task weight and missing
    labels make the Gramian change from step to step."""
    runs = []
    for explicit in (False, True):
        monkeypatch.setattr(StepEngine, "_force_explicit", explicit)
        torch.manual_seed(0)
        model = ARCHS[arch]()
        _fit(model, METHODS[method](), _data())
        runs.append(model)
    for (name, p), q in zip(runs[0].named_parameters(), runs[1].parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


# ---------------------------------------------------------------- DDP path
@pytest.mark.parametrize(("method", "mode"),
                         [("UPGrad", "parameter"), ("UPGrad", "representation"),
                          ("GradNorm", "parameter")])
def test_explicit_path_takes_per_task_gradients_with_strategy_auto(
        monkeypatch: pytest.MonkeyPatch, method: str,
        mode: Literal["parameter", "representation"]) -> None:
    strategies: list[str] = []
    original = step_module.per_task_gradients

    def spy(*args: Any, **kwargs: Any) -> Tensor:
        strategies.append(kwargs.get("strategy", "batched"))
        return original(*args, **kwargs)

    monkeypatch.setattr(step_module, "per_task_gradients", spy)
    monkeypatch.setattr(StepEngine, "_force_explicit", True)
    monkeypatch.setattr(StepEngine, "_structured_heads", False)
    torch.manual_seed(0)
    trainer = Trainer(max_epochs=1, batch_size=6, mode=mode, progress=False,
                      tensorboard=False)
    trainer.fit(SharedBottom(_block(), _heads()), _tasks(), METHODS[method](),
                functools.partial(torch.optim.SGD, lr=0.1), _data())
    assert strategies and set(strategies) == {"auto"}
