"""Every architecture × method × mode runs; the update rules match manual references."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import Tensor, nn

from polytask.data import MultiTaskTorchDataset
from polytask.deep._step import StepEngine
from polytask.deep.aggregation import (
    MGDA,
    Aggregator,
    GradVac,
    Mean,
    MGDAWeighting,
    PCGrad,
    UPGrad,
)
from polytask.deep.architectures import (
    CGC,
    ESMM,
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
from polytask.deep.weighting import DWA, FAMO, EqualWeighting, GradNorm, UncertaintyWeighting
from polytask.tasks import Task, TaskSet

D_IN, D_H = 5, 6

pytestmark = pytest.mark.usefixtures("torch_one_thread")

OUT = {"r": 1, "k": 3, "y": 1}  # regression, multiclass (3 classes), binary
TASKS = [Task("r"), Task("k", kind="multiclass", n_outputs=3), Task("y", kind="binary")]


def _head(t: str) -> nn.Module:
    return nn.Linear(D_H, OUT[t])


def _block(d_in: int = D_IN) -> nn.Module:
    return MLP([d_in, D_H], activate_last=True)


ARCHS = {
    "shared_bottom": lambda: SharedBottom(_block(), {t: _head(t) for t in OUT}),
    "soft_sharing": lambda: SoftSharing(
        {t: nn.Sequential(_block(), nn.Linear(D_H, 3)) for t in OUT}, strength=0.1),
    "cross_stitch": lambda: CrossStitch({t: [_block(), _block(D_H)] for t in OUT},
                                        {t: _head(t) for t in OUT}),
    "mmoe": lambda: MMoE([_block() for _ in range(2)], {t: _head(t) for t in OUT},
                         gate_input_dim=D_IN),
    "cgc": lambda: CGC([_block()], {t: [_block()] for t in OUT}, {t: _head(t) for t in OUT},
                       gate_input_dim=D_IN),
    "ple": lambda: PLE([PLELevel([_block()], {t: [_block()] for t in OUT}, D_IN),
                        PLELevel([_block(D_H)], {t: [_block(D_H)] for t in OUT}, D_H)],
                       {t: _head(t) for t in OUT}),
    "task_graph": lambda: TaskGraph({
        "r": TaskNode(_head("r"), inputs="shared"),
        "k": TaskNode(_head("k"), inputs="shared"),
        "y": TaskNode(MLP([1 + 3, 1]), inputs=("r", "k"), combine="cat"),
    }, encoder=_block()),
    "esmm": lambda: ESMM(_block(), nn.Linear(D_H, 1), nn.Linear(D_H, 1), output="logit"),
}

METHODS = {
    "EW": lambda names: EqualWeighting(names),
    "UW": lambda names: UncertaintyWeighting(names),
    "DWA": lambda names: DWA(names),
    "FAMO": lambda names: FAMO(names),
    "MGDA": lambda names: MGDA(),
    "PCGrad": lambda names: PCGrad(generator=torch.Generator().manual_seed(0)),
    "UPGrad": lambda names: UPGrad(),
}


def _data(arch: str, n: int = 12) -> tuple[TaskSet, MultiTaskTorchDataset]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, D_IN, generator=g)
    if arch == "esmm":
        click = (torch.rand(n, generator=g) < 0.5).float()
        buy = click * (torch.rand(n, generator=g) < 0.5).float()
        tasks = TaskSet([Task("ctr", kind="binary"), Task("ctcvr", kind="binary")])
        return tasks, MultiTaskTorchDataset(x, {"ctr": click, "ctcvr": buy})
    n_out = 3 if arch == "soft_sharing" else None  # soft sharing: identical towers
    targets = {"r": torch.randn(n, generator=g),
               "k": torch.randint(0, 3, (n,), generator=g),
               "y": (torch.rand(n, generator=g) < 0.5).float()}
    targets["r"][::4] = float("nan")  # missing labels
    targets["k"][1::5] = -1
    if n_out is not None:
        tasks = TaskSet([Task("r", kind="multiclass", n_outputs=3),
                         Task("k", kind="multiclass", n_outputs=3),
                         Task("y", kind="multiclass", n_outputs=3)])
        targets = {t: torch.randint(0, 3, (n,), generator=g) for t in OUT}
        return tasks, MultiTaskTorchDataset(x, targets)
    return TaskSet(TASKS), MultiTaskTorchDataset(x, targets)


@pytest.mark.parametrize("mode", ["parameter", "representation"])
@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_architecture_and_method_runs(arch, method, mode):
    torch.manual_seed(0)
    model = ARCHS[arch]()
    tasks, data = _data(arch)
    trainer = Trainer(max_epochs=2, max_steps=3, batch_size=6, mode=mode, progress=False,
                      tensorboard=False)
    before = [p.detach().clone() for p in model.parameters()]
    run = functools.partial(trainer.fit, model, tasks, METHODS[method](list(tasks.names)),
                            functools.partial(torch.optim.SGD, lr=0.05), data)
    if mode == "representation" and not model.supports_representation:
        with pytest.raises(ValueError, match="supports_representation"):
            run()
        return
    history = run()
    assert history.n_epochs == 2 and trainer.optimizer_ is not None
    losses = [history.metric(t, "loss", "train") for t in tasks.names]
    assert all(len(v) == 2 and all(torch.isfinite(torch.tensor(v))) for v in losses)
    moved = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert any(moved)


# ---------------------------------------------------------------- manual references
def _linear_problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 3, generator=g)
    targets = {"a": torch.randn(8, generator=g), "b": torch.randn(8, generator=g)}
    targets["a"][[1, 4]] = float("nan")
    torch.manual_seed(seed)
    model = SharedBottom(nn.Sequential(nn.Linear(3, 4), nn.Tanh()),
                         {"a": nn.Linear(4, 1), "b": nn.Linear(4, 1)})
    return model, MultiTaskTorchDataset(x, targets)


def _task_losses(model, data):
    preds = model(data.x)
    out = []
    for t in ("a", "b"):
        y = data.targets[t]
        keep = ~torch.isnan(y)
        out.append(((preds[t][:, 0][keep] - y[keep]) ** 2).mean())
    return out


def _one_sgd_step(model, data, method, mode="parameter", lr=0.1):
    trainer = Trainer(max_epochs=1, batch_size=len(data), mode=mode, progress=False,
                      tensorboard=False)
    trainer.fit(model, ["a", "b"], method, functools.partial(torch.optim.SGD, lr=lr), data)
    return model


def test_equal_weighting_step_matches_masked_mean_losses():
    model, data = _linear_problem()
    reference = _linear_problem()[0]
    loss = sum(_task_losses(reference, data))
    loss.backward()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.1 * p.grad
    _one_sgd_step(model, data, None)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["parameter", "representation"])
def test_mgda_step_matches_manual_min_norm_combination(mode):
    model, data = _linear_problem()
    reference = _linear_problem()[0]
    shared = list(reference.shared_parameters())
    losses = _task_losses(reference, data)
    if mode == "parameter":
        rows = [torch.cat([g.flatten() for g in torch.autograd.grad(L, shared,
                                                                   retain_graph=True)])
                for L in losses]
    else:
        z = reference.encode(data.x)
        heads = reference.decode(z, data.x)
        rows = []
        for t in ("a", "b"):
            y = data.targets[t]
            keep = ~torch.isnan(y)
            L = ((heads[t][:, 0][keep] - y[keep]) ** 2).mean()
            rows.append(torch.autograd.grad(L, z, retain_graph=True)[0].flatten())
    jac = torch.stack(rows)
    w = MGDAWeighting()(jac @ jac.T)
    # shared: the min-norm combination; heads: each task's own gradient
    shared_grads = torch.autograd.grad(w[0] * losses[0] + w[1] * losses[1], shared,
                                       retain_graph=True)
    head_grads = torch.autograd.grad(losses[0] + losses[1],
                                     [p for t in "ab" for p in reference.task_parameters(t)])
    with torch.no_grad():
        for p, g in zip(shared, shared_grads, strict=True):
            p -= 0.1 * g
        for p, g in zip([p for t in "ab" for p in reference.task_parameters(t)], head_grads,
                        strict=True):
            p -= 0.1 * g
    _one_sgd_step(model, data, MGDA(), mode=mode)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


class JacobianMean(Aggregator):
    """The mean of the task gradients, through the Jacobian (not Gramian-based)."""

    def __call__(self, jacobian: Tensor) -> Tensor:
        return jacobian.mean(dim=0)


@pytest.mark.parametrize("mode", ["parameter", "representation"])
def test_jacobian_aggregator_path_equals_gramian_path(mode):
    a, data = _linear_problem()
    b, _ = _linear_problem()
    for _ in range(3):
        _one_sgd_step(a, data, JacobianMean(), mode=mode)
        _one_sgd_step(b, data, Mean(), mode=mode)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    c, _ = _linear_problem()
    _one_sgd_step(c, data, None, mode=mode)  # and differs from the plain sum
    assert not torch.allclose(next(a.encoder.parameters()), next(c.encoder.parameters()))


# ---------------------------------------------------------------- the two step paths
EXPLICIT_CASES = {
    "EW": lambda: EqualWeighting(["r", "k", "y"]),
    "UW": lambda: UncertaintyWeighting(["r", "k", "y"]),
    "GradNorm": lambda: GradNorm(["r", "k", "y"]),
    "FAMO": lambda: FAMO(["r", "k", "y"]),
    "MGDA": lambda: MGDA(),
    "GradVac": lambda: GradVac(beta=0.5, generator=torch.Generator().manual_seed(1)),
    "JacobianMean": lambda: JacobianMean(),
}


@pytest.mark.parametrize(
    ("arch", "mode"),
    [("shared_bottom", "parameter"), ("shared_bottom", "representation"),
     ("soft_sharing", "parameter")],  # soft sharing has no shared representation
)
@pytest.mark.parametrize("method", list(EXPLICIT_CASES))
def test_explicit_step_equals_backward_engine(monkeypatch, method, arch, mode):
    """The DDP/AMP path (per-task gradients assembled by the trainer) and the
    ``mtl_backward`` path give the same training run; periods and an auxiliary weight
    make some tasks inactive on some steps."""
    tasks, data = _data(arch)
    tasks = TaskSet([Task(t.name, kind=t.kind, n_outputs=t.n_outputs,
                          period=2 if i == 1 else 1, weight=0.5 if i == 2 else 1.0)
                     for i, t in enumerate(tasks)])
    runs = []
    monkeypatch.setattr(StepEngine, "_structured_heads", False)  # J Jᵀ on both paths
    for explicit in (False, True):
        monkeypatch.setattr(StepEngine, "_force_explicit", explicit)
        torch.manual_seed(0)
        model = ARCHS[arch]()
        Trainer(max_epochs=2, batch_size=6, mode=mode, progress=False, tensorboard=False).fit(
            model, tasks, EXPLICIT_CASES[method](), functools.partial(torch.optim.SGD, lr=0.1),
            data)
        runs.append(model)
    for (name, p), q in zip(runs[0].named_parameters(), runs[1].parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
