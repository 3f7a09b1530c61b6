"""GradientSimilarityTracker fed by the trainer's own Gramians, and one cosine/Gramian
definition shared by the engine, the loss weightings and the relatedness tools."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import polytask.deep.backward as backward
import polytask.deep.weighting as weighting
from polytask.data import MultiTaskTorchDataset
from polytask.deep._step import StepEngine
from polytask.deep.aggregation import MGDA, Aggregator, GradVac, UPGrad
from polytask.deep.architectures import MLP, SharedBottom
from polytask.deep.trainer import Trainer
from polytask.deep.weighting import EqualWeighting, GradNorm
from polytask.relate import GradientSimilarityTracker, cosine_from_gramian
from polytask.tasks import Task, TaskSet

NAMES = ("a", "b", "c")
D_IN, D_H = 4, 5


pytestmark = pytest.mark.usefixtures("torch_one_thread")


class JacobianMean(Aggregator):
    """The mean task gradient from the explicit Jacobian (not Gramian-based)."""

    def __call__(self, jacobian: Tensor) -> Tensor:
        return jacobian.mean(dim=0)


METHODS: dict[str, Callable[[], Any]] = {
    "MGDA": lambda: MGDA(),
    "GradVac": lambda: GradVac(beta=0.5, generator=torch.Generator().manual_seed(1)),
    "GradNorm": lambda: GradNorm(list(NAMES)),
    "EW": lambda: EqualWeighting(list(NAMES)),
    "JacobianMean": lambda: JacobianMean(),
}


def _model() -> SharedBottom:
    torch.manual_seed(0)
    return SharedBottom(MLP([D_IN, D_H], activate_last=True),
                        {t: nn.Linear(D_H, 1) for t in NAMES})


def _tasks() -> TaskSet:
    """Task ``b`` steps every second step (no gradient on the others), ``c`` weighs 0.5."""
    return TaskSet([Task("a"), Task("b", period=2), Task("c", weight=0.5)])


def _data(n: int = 16) -> MultiTaskTorchDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, D_IN, generator=g)
    w = torch.randn(D_IN, 3, generator=g)
    y = x @ w + 0.1 * torch.randn(n, 3, generator=g)
    targets = {"a": y[:, 0], "b": -y[:, 0] + y[:, 1], "c": y[:, 2]}
    targets["a"][::3] = float("nan")  # missing labels
    return MultiTaskTorchDataset(x, targets)


def _trainer(tracker: Any, mode: Literal["parameter", "representation"] = "parameter",
             **kw: Any) -> Trainer:
    return Trainer(**{"max_epochs": 2, "batch_size": 4, "mode": mode, "progress": False,
                      "tensorboard": False, "gradient_tracker": tracker, **kw})


SGD = functools.partial(torch.optim.SGD, lr=0.1)


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict[str, Tensor], Tensor,
                                                          dict[str, Tensor], Tensor]]:
    """Model state, batch and task scales ``c_t`` before every training step."""
    seen: list[tuple[dict[str, Tensor], Tensor, dict[str, Tensor], Tensor]] = []
    original = StepEngine.step

    def spy(self: StepEngine, x: Tensor, targets: dict[str, Tensor], step: int,
            scales: Tensor) -> Any:
        seen.append((copy.deepcopy(self.model.state_dict()), x.clone(),
                     {k: v.clone() for k, v in targets.items()}, scales.clone()))
        return original(self, x, targets, step, scales)

    monkeypatch.setattr(StepEngine, "step", spy)
    return seen


def _reference(steps: list[Any], mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean cosine and defined-pair counts from explicit per-task autograd gradients."""
    m = len(NAMES)
    total, count = np.zeros((m, m)), np.zeros((m, m), dtype=int)
    tasks = _tasks()
    for state, x, targets, scales in steps:
        model = _model()
        model.load_state_dict(state)
        z = model.encode(x)
        losses = tasks.losses(model.decode(z, x), targets)
        assert isinstance(losses, Tensor)
        assert isinstance(z, Tensor)
        wrt: list[Tensor] = [z] if mode == "representation" else list(model.shared_parameters())
        rows = []
        for i in range(m):
            grads = torch.autograd.grad(float(scales[i]) * losses[i], wrt, retain_graph=True,
                                        allow_unused=True)
            rows.append(np.concatenate([np.zeros(p.numel()) if g is None
                                        else g.detach().double().flatten().numpy()
                                        for g, p in zip(grads, wrt, strict=True)]))
        norms = [float(np.linalg.norm(r)) for r in rows]
        for i in range(m):
            for j in range(m):
                if norms[i] > 0 and norms[j] > 0:
                    total[i, j] += rows[i] @ rows[j] / (norms[i] * norms[j])
                    count[i, j] += 1
    return total / np.maximum(count, 1), count


# ---------------------------------------------------------------- what it records
@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize("mode", ["parameter", "representation"])
@pytest.mark.parametrize("method", list(METHODS))
def test_tracker_mean_cosine_equals_per_task_autograd(
        monkeypatch: pytest.MonkeyPatch, steps: list[Any], method: str,
        mode: Literal["parameter", "representation"], explicit: bool) -> None:
    """Both step paths (the engine, and the explicit one DDP uses) feed the tracker the
    Gramian of the step: its mean cosine is that of the explicit per-task gradients."""
    monkeypatch.setattr(StepEngine, "_force_explicit", explicit)
    tracker = GradientSimilarityTracker(NAMES)
    _trainer(tracker, mode).fit(_model(), _tasks(), METHODS[method](), SGD, _data())
    assert tracker.n_steps == len(steps) == 8
    expected, count = _reference(steps, mode)
    summary = tracker.summary()
    np.testing.assert_array_equal(summary.n_defined, count)
    assert count[0, 1] == 4 and count[0, 2] == 8  # b is off its period half the time
    np.testing.assert_allclose(summary.mean_cosine, expected, atol=1e-4)


@pytest.mark.parametrize(("method", "mode"), [("MGDA", "parameter"), ("GradVac", "parameter"),
                                              ("GradNorm", "parameter"),
                                              ("JacobianMean", "parameter"),
                                              ("MGDA", "representation")])
def test_tracking_adds_no_backward_pass(monkeypatch: pytest.MonkeyPatch, method: str,
                                        mode: Literal["parameter", "representation"]
                                        ) -> None:
    calls: list[str] = []
    grad, backward_fn = torch.autograd.grad, torch.autograd.backward

    def counted_grad(*args: Any, **kwargs: Any) -> Any:
        calls.append("grad")
        return grad(*args, **kwargs)

    def counted_backward(*args: Any, **kwargs: Any) -> Any:
        calls.append("backward")
        return backward_fn(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counted_grad)
    monkeypatch.setattr(torch.autograd, "backward", counted_backward)
    counts, finals = [], []
    for tracker in (None, GradientSimilarityTracker(NAMES)):
        calls.clear()
        model = _model()
        _trainer(tracker, mode).fit(model, _tasks(), METHODS[method](), SGD, _data())
        counts.append(len(calls))
        finals.append(model.state_dict())
    assert counts[0] == counts[1] > 0
    for key, value in finals[0].items():  # and the same training run
        torch.testing.assert_close(finals[1][key], value, rtol=0, atol=0)


def test_tracker_state_is_checkpointed_and_resumed(tmp_path: Any) -> None:
    straight = GradientSimilarityTracker(NAMES)
    _trainer(straight, max_epochs=3).fit(_model(), _tasks(), MGDA(), SGD, _data())
    model = _model()
    _trainer(GradientSimilarityTracker(NAMES), max_epochs=2, run_dir=tmp_path).fit(
        model, _tasks(), MGDA(), SGD, _data())
    resumed = GradientSimilarityTracker(NAMES)  # fresh: its state comes from the checkpoint
    _trainer(resumed, max_epochs=3, run_dir=tmp_path).fit(model, _tasks(), MGDA(), SGD,
                                                          _data())
    assert resumed.n_steps == straight.n_steps == 12
    a, b = straight.summary(), resumed.summary()
    np.testing.assert_array_equal(a.n_defined, b.n_defined)
    np.testing.assert_allclose(a.mean_cosine, b.mean_cosine, rtol=1e-6, atol=1e-7)


def test_fit_stl_leaves_the_tracker_alone() -> None:
    tracker = GradientSimilarityTracker(NAMES)
    trainer = _trainer(tracker, max_epochs=1)
    result = trainer.fit_stl(
        lambda names: SharedBottom(MLP([D_IN, D_H]), {t: nn.Linear(D_H, 1) for t in names}),
        _tasks(), SGD, _data())
    assert set(result.models) == set(NAMES) and tracker.n_steps == 0


@pytest.mark.parametrize(
    ("tracker", "error", "match"),
    [(object(), TypeError, "gradient_tracker must have an update"),
     (GradientSimilarityTracker(["a", "c", "b"]), ValueError,
      r"gradient_tracker was built for tasks \['a', 'c', 'b'\]"),
     (GradientSimilarityTracker(["a", "b"]), ValueError, "gradient_tracker was built")],
)
def test_bad_trackers_are_rejected(tracker: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _trainer(tracker).fit(_model(), _tasks(), MGDA(), SGD, _data())


def test_any_object_with_update_can_track() -> None:
    grams: list[Tensor] = []

    class Log:
        def update(self, gramian: Tensor) -> None:
            grams.append(gramian)

    _trainer(Log(), max_epochs=1).fit(_model(), _tasks(), UPGrad(), SGD, _data())
    assert len(grams) == 4 and all(g.shape == (3, 3) for g in grams)
    assert all(bool((g.diagonal() >= 0).all()) for g in grams)


# ---------------------------------------------------------------- one definition
def _random_gramian(m: int, seed: int, zero: tuple[int, ...] = ()) -> np.ndarray:
    J = np.random.default_rng(seed).normal(size=(m, 7))
    J[list(zero)] = 0.0
    return J @ J.T


@pytest.mark.parametrize(("m", "seed", "zero"), [(2, 0, ()), (4, 1, (2,)), (5, 2, (0, 3))])
def test_relate_cosine_is_the_engine_cosine(m: int, seed: int, zero: tuple[int, ...]) -> None:
    G = _random_gramian(m, seed, zero)
    cos, mask = cosine_from_gramian(G, return_mask=True)
    engine = backward.gradient_cosine(torch.from_numpy(G)).numpy()
    live = ~mask
    np.testing.assert_array_equal(mask, np.isin(np.arange(m), zero))
    np.testing.assert_allclose(cos[np.ix_(live, live)], engine[np.ix_(live, live)],
                               rtol=0, atol=1e-15)
    assert (cos[mask] == 0).all() and (cos[:, mask] == 0).all()  # relate: 0, never 1


@pytest.mark.parametrize("seed", [0, 1])
def test_weighting_task_gramian_is_the_engine_gramian_with_the_graph_kept(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = torch.randn(6, 3, generator=g)
    losses = torch.stack([net(x)[:, 0].pow(2).mean(), net(x)[:, 1].abs().mean()])
    got = weighting.task_gramian(losses, net.parameters())
    want = backward.task_gramian(losses, list(net.parameters()), retain_graph=True)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    losses.sum().backward()  # the graph was kept
