"""The representation Gramian of linear heads from their output cotangents."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

import polytask.deep._setup as deep_setup
import polytask.deep._step as step_module
from polytask.data import MultiTaskTorchDataset
from polytask.deep._head_gramian import linear_head_gramian
from polytask.deep._step import StepEngine
from polytask.deep.aggregation import MGDA, CAGrad, GradVac, NashMTL, PCGrad, UPGrad
from polytask.deep.architectures import MLP, SharedBottom
from polytask.deep.trainer import Trainer
from polytask.deep.weighting import GradNorm
from polytask.tasks import Task, TaskSet

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _explicit_gramian(losses, z):
    rows = [torch.autograd.grad(loss, z, retain_graph=True, allow_unused=True)[0]
            for loss in losses]
    J = torch.stack([torch.zeros_like(z).flatten() if r is None else r.flatten()
                     for r in rows]).double()
    return J @ J.T


@pytest.mark.parametrize("widths", [(1, 1, 1), (1, 3, 2)])
def test_matches_the_gramian_of_the_explicit_jacobian(widths):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(7, 4, generator=g, requires_grad=True)
    weights = [torch.randn(k, 4, generator=g, dtype=torch.float64) for k in widths]
    preds = [z.double() @ w.T + 0.3 for w in weights]
    targets = [torch.randn(7, k, generator=g, dtype=torch.float64) for k in widths]
    losses = [((p - y).tanh() ** 2).sum() for p, y in zip(preds, targets, strict=True)]
    cots = [torch.autograd.grad(loss, p, retain_graph=True)[0]
            for loss, p in zip(losses, preds, strict=True)]
    torch.testing.assert_close(linear_head_gramian(cots, weights), _explicit_gramian(losses, z))


def test_a_task_without_gradient_gives_a_zero_row():
    z = torch.randn(5, 3, requires_grad=True)
    weights = [torch.randn(1, 3), torch.randn(1, 3)]
    preds = [z @ w.T for w in weights]
    cot = torch.autograd.grad(preds[0].square().sum(), preds[0])[0]
    gram = linear_head_gramian([cot, None], weights)
    assert gram[1].abs().max() == 0 and gram[0, 0] > 0
    assert linear_head_gramian([None, None], weights).abs().max() == 0
    with pytest.raises(ValueError, match="width 1 for a head of 2 outputs"):
        linear_head_gramian([None, cot], [weights[0], torch.randn(2, 3)])


def _setup(n=24, n_tasks=4):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=g)
    names = [f"t{i}" for i in range(n_tasks)]
    targets = {t: (x[:, i] + 0.3 * torch.randn(n, generator=g) > 0).float()
               for i, t in enumerate(names)}
    targets["t0"] = x[:, 0] + torch.randn(n, generator=g)  # one regression task
    targets["t1"][::3] = float("nan")  # missing labels
    targets["k"] = torch.randint(0, 3, (n,), generator=g)  # a 3-class task: 3 head outputs
    tasks = TaskSet([Task(t, kind="regression" if t == "t0" else "binary",
                          period=2 if t == "t2" else 1) for t in names]
                    + [Task("k", kind="multiclass", n_outputs=3)])
    return tasks, MultiTaskTorchDataset(x, targets), names


def _model(names):
    heads = {t: nn.Linear(8, 1) for t in names} | {"k": nn.Linear(8, 3)}
    return SharedBottom(MLP([5, 8], activate_last=True), heads)


METHODS = {
    "UPGrad": lambda: UPGrad(),
    "MGDA": lambda: MGDA(),
    "CAGrad": lambda: CAGrad(c=0.4),
    "PCGrad": lambda: PCGrad(generator=torch.Generator().manual_seed(2)),
    "NashMTL": lambda: NashMTL(),
    "GradVac": lambda: GradVac(beta=0.5, generator=torch.Generator().manual_seed(1)),
    "GradNorm": lambda: GradNorm(["t0", "t1", "t2", "t3", "k"], alpha=1.5),
}


@pytest.mark.parametrize("method", list(METHODS))
def test_training_with_the_structured_gramian_equals_the_jacobian_path(monkeypatch, method):
    tasks, data, names = _setup()
    calls, stacked = [], []
    original, stack = step_module.linear_head_gramian, deep_setup.stacked_linear
    monkeypatch.setattr(step_module, "linear_head_gramian",
                        lambda *a: calls.append(1) or original(*a))
    monkeypatch.setattr(deep_setup, "stacked_linear", lambda *a: stacked.append(1) or stack(*a))
    runs = []
    for structured in (True, False):
        monkeypatch.setattr(StepEngine, "_structured_heads", structured)
        calls.clear()
        stacked.clear()
        torch.manual_seed(0)
        model = _model(names)
        Trainer(max_epochs=3, batch_size=8, mode="representation", progress=False,
                tensorboard=False).fit(model, tasks, METHODS[method](),
                                       functools.partial(torch.optim.SGD, lr=0.2), data)
        runs.append(model)
        # the structured run took the structured path, with the heads stacked
        assert bool(calls) == bool(stacked) == structured
    for (name, p), q in zip(runs[0].named_parameters(), runs[1].parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def test_other_heads_and_parameter_mode_keep_the_jacobian(monkeypatch):
    tasks, data, names = _setup()
    calls = []
    monkeypatch.setattr(step_module, "linear_head_gramian", lambda *a: calls.append(1))
    towers = SharedBottom(MLP([5, 8], activate_last=True),
                          {t: nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1))
                           for t in names} | {"k": nn.Linear(8, 3)})
    for model, mode in ((towers, "representation"), (_model(names), "parameter")):
        Trainer(max_epochs=1, batch_size=8, mode=mode, progress=False,
                tensorboard=False).fit(model, tasks, UPGrad(),
                                       functools.partial(torch.optim.SGD, lr=0.1), data)
    assert not calls
