"""The relatedness measure reads the engine's Gramian: tracking costs no extra pass."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

import polytask.deep.backward as backward_module
from polytask._config_models import DeepModelConfig
from polytask._experiment_data import SplitData
from polytask._fit_deep import build_model
from polytask._relate_measure import measure_training
from polytask.data import MultiTaskData
from polytask.deep.aggregation import Aggregator
from polytask.relate import GradientSimilarityTracker
from polytask.tasks import Task, TaskSet

NAMES = ("a", "b", "c")
N_STEPS = 3  # 24 rows, batches of 8, one epoch


def _split() -> SplitData:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 5))
    y = x @ rng.standard_normal((5, 3)) + 0.1 * rng.standard_normal((24, 3))
    data = MultiTaskData(x.astype(np.float32), y.astype(np.float32), task_names=list(NAMES))
    return SplitData(tasks=TaskSet([Task(n) for n in NAMES]), fit=data, train=data,
                     val=data, test=data)


def _spec(method: str, **params: Any) -> DeepModelConfig:
    return DeepModelConfig(name=method, method=method, method_params=params, epochs=1,
                           batch_size=8, lr=1e-2, arch_params={"hidden": [6]})


class _Counter:
    """Wrap ``torch.autograd.grad`` and ``torch.autograd.backward`` with a call counter.

    ``Tensor.backward`` goes through ``torch.autograd.backward``, and the gradient engine
    calls both functions through the ``torch.autograd`` module, so every backward pass
    (batched or not) of a training step is one counted call.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        for name in ("grad", "backward"):
            monkeypatch.setattr(torch.autograd, name, self._wrap(getattr(torch.autograd, name)))

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return fn(*args, **kwargs)
        return counted


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Counter]:
    yield _Counter(monkeypatch)


def _passes(counter: _Counter, spec: DeepModelConfig, gradient: bool) -> tuple[int, dict[str, Any]]:
    before = counter.calls
    out = measure_training(spec, _split(), 0, gradient=gradient, affinity_every=None)
    return counter.calls - before, out


@pytest.mark.parametrize(("method", "params"), [
    ("mean", {}), ("mgda", {}), ("upgrad", {}), ("cagrad", {"c": 0.4}), ("gradvac", {}),
    ("gradnorm", {}),
])
def test_tracking_costs_no_extra_backward_pass(counter: _Counter, method: str,
                                               params: dict[str, Any]) -> None:
    spec = _spec(method, **params)
    plain, out_plain = _passes(counter, spec, gradient=False)
    tracked, out = _passes(counter, spec, gradient=True)
    assert plain > 0 and out["n_steps"] == out_plain["n_steps"] == N_STEPS
    assert tracked == plain
    assert np.asarray(out["gradient_cosine"]).shape == (3, 3)


def _gramian_calls(counter: _Counter, spec: DeepModelConfig) -> int:
    """Calls made by one standalone ``task_gramian`` on a batch of ``spec``'s model."""
    split = _split()
    model = build_model(spec, split.tasks, split.n_features, 0)
    data = split.train.torch_dataset()
    losses = split.tasks.losses(model(data.x[:8]), {t: y[:8] for t, y in data.targets.items()})
    assert isinstance(losses, torch.Tensor)
    shared = [p for p in model.shared_parameters() if p.requires_grad]
    before = counter.calls
    backward_module.task_gramian(losses, shared)
    return counter.calls - before


def test_a_plain_loss_weighting_pays_one_gramian_per_step(counter: _Counter) -> None:
    # Equal weighting needs no Gramian for its update, so the engine forms it for the
    # tracker only (return_gramian=True): exactly the cost of one task_gramian per step,
    # the separate pass the measure made before every step for every method.
    spec = _spec("ew")
    plain, _ = _passes(counter, spec, gradient=False)
    tracked, _ = _passes(counter, spec, gradient=True)
    per_gramian = _gramian_calls(counter, spec)
    assert per_gramian > 0
    assert tracked == plain + N_STEPS * per_gramian


def test_the_engine_is_asked_for_its_gramian(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    real = backward_module.mtl_backward

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(bool(kwargs.get("return_gramian")))
        return real(*args, **kwargs)

    monkeypatch.setattr(backward_module, "mtl_backward", spy)
    measure_training(_spec("upgrad"), _split(), 0, gradient=True, affinity_every=None)
    measure_training(_spec("upgrad"), _split(), 0, gradient=False, affinity_every=None)
    assert seen == [True] * N_STEPS + [False] * N_STEPS


@pytest.mark.parametrize("method", ["mgda", "ew"])
def test_tracked_gramian_is_that_of_the_explicit_jacobian(monkeypatch: pytest.MonkeyPatch,
                                                          method: str) -> None:
    """Each step feeds the tracker ``J Jᵀ`` of the shared parameters' task gradients."""
    expected: list[torch.Tensor] = []
    tracked: list[torch.Tensor] = []
    real = backward_module.mtl_backward

    def spy(losses: torch.Tensor, shared: Any, *args: Any, **kwargs: Any) -> Any:
        params = list(shared)
        jac = backward_module.per_task_gradients(losses, params, retain_graph=True,
                                                 strategy="loop")
        expected.append(jac @ jac.T)
        return real(losses, params, *args, **kwargs)

    real_update = GradientSimilarityTracker.update

    def record(self: GradientSimilarityTracker, gramian: torch.Tensor, *a: Any,
               **k: Any) -> Any:
        tracked.append(gramian.detach().clone())
        return real_update(self, gramian, *a, **k)

    monkeypatch.setattr(backward_module, "mtl_backward", spy)
    monkeypatch.setattr(GradientSimilarityTracker, "update", record)
    measure_training(_spec(method), _split(), 0, gradient=True, affinity_every=None)
    assert len(tracked) == len(expected) == N_STEPS
    for got, want in zip(tracked, expected, strict=True):
        np.testing.assert_allclose(got.double().numpy(), want.double().numpy(), rtol=1e-4,
                                   atol=1e-6)


def test_a_jacobian_aggregator_keeps_a_separate_gramian_pass(
        monkeypatch: pytest.MonkeyPatch, counter: _Counter) -> None:
    """An aggregator with no weighting gives the engine no Gramian: the measure makes one."""

    class Halves(Aggregator):  # d = (g_1 + ... + g_m) / 2, computed from J itself
        def __call__(self, jacobian: torch.Tensor) -> torch.Tensor:
            return jacobian.sum(dim=0) / 2

    class Entry:
        def build(self, names: Any, params: Any, seed: int) -> Halves:
            return Halves()

    from polytask import _registry

    monkeypatch.setattr(_registry, "methods", lambda: {"halves": Entry()})
    spec = _spec("halves")
    plain, _ = _passes(counter, spec, gradient=False)
    tracked, out = _passes(counter, spec, gradient=True)
    assert tracked > plain
    cosine = np.asarray(out["gradient_cosine"])
    np.testing.assert_allclose(np.diag(cosine), 1.0)
