"""EqualWeighting and StaticWeighting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polytask.deep.weighting import EqualWeighting, StaticWeighting


def _model_and_losses(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    x = torch.randn(16, 4, generator=gen)
    y = torch.randn(16, 3, generator=gen)
    losses = ((net(x) - y) ** 2).mean(dim=0)
    return net, losses


def _grads(net: torch.nn.Module, total: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(total, list(net.parameters())))


def test_equal_static_ones_and_sum_give_the_same_gradients() -> None:
    # An optax-style equivalence: three spellings of the same objective.
    net, losses = _model_and_losses()
    g_sum = _grads(net, losses.sum())
    net, losses = _model_and_losses()
    g_equal = _grads(net, EqualWeighting(3)(losses))
    net, losses = _model_and_losses()
    g_static = _grads(net, StaticWeighting([1.0, 1.0, 1.0])(losses))
    for a, b, c in zip(g_sum, g_equal, g_static, strict=True):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)


@pytest.mark.parametrize("weights", [[0.0, 2.0, 0.5], [3.0, 1.0, 1.0]])
def test_static_objective_is_weighted_sum(weights: list[float]) -> None:
    net, losses = _model_and_losses(1)
    total = StaticWeighting(weights)(losses)
    expected = float(np.dot(weights, losses.detach().numpy()))
    assert float(total.detach()) == pytest.approx(expected, rel=1e-6)
    grads = _grads(net, total)
    net, losses = _model_and_losses(1)
    manual = _grads(net, sum(w * loss for w, loss in zip(weights, losses, strict=True)))
    for a, b in zip(grads, manual, strict=True):
        torch.testing.assert_close(a, b)


def test_static_mapping_is_reordered_by_task_names() -> None:
    sw = StaticWeighting({"b": 2.0, "a": 1.0, "c": 0.0}, task_names=["a", "b", "c"])
    assert sw.task_names == ("a", "b", "c")
    assert sw.weights(torch.ones(3)).tolist() == [1.0, 2.0, 0.0]
    sw2 = StaticWeighting({"b": 2.0, "a": 1.0})
    assert sw2.task_names == ("b", "a")
    assert sw2.weights(torch.ones(2)).tolist() == [2.0, 1.0]


def test_static_accepts_arrays_and_tensors_and_saves_weights() -> None:
    a = StaticWeighting(np.array([1.0, 3.0]))
    b = StaticWeighting(torch.tensor([1.0, 3.0]), task_names=["x", "y"])
    assert a.weights(torch.ones(2)).tolist() == b.weights(torch.ones(2)).tolist() == [1.0, 3.0]
    c = StaticWeighting([5.0, 5.0])
    c.load_state_dict(a.state_dict())
    assert c.weights(torch.ones(2)).tolist() == [1.0, 3.0]


@pytest.mark.parametrize(
    "weights, task_names, error, match",
    [
        ([1.0, -0.5], None, ValueError, r"weights\[1\] for task 1 is -0.5"),
        ({"a": 1.0, "b": float("nan")}, None, ValueError, r"weights\[1\] for task 1 \('b'\)"),
        ([1.0, float("inf")], ["u", "v"], ValueError, r"task 1 \('v'\) is inf"),
        ([0.0, 0.0], None, ValueError, "at least one positive weight"),
        ([], None, ValueError, "got none"),
        ({"a": 1.0}, ["a", "b"], ValueError, r"keys must match task_names: missing \['b'\]"),
        ({"a": 1.0, "z": 1.0}, ["a", "b"], ValueError, r"unexpected \['z'\]"),
        ([1.0, 2.0], ["a"], ValueError, "task_names has 1 names but weights has 2"),
        ([1.0, "x"], None, TypeError, r"weights\[1\] must be a real number"),
        ([1.0, True], None, TypeError, r"weights\[1\] must be a real number"),
        ("12", None, TypeError, "weights must be a mapping"),
        (3.0, None, TypeError, "weights must be a mapping"),
        (torch.tensor(1.0), None, TypeError, "weights must be a mapping"),
    ],
)
def test_static_invalid_weights_raise(
    weights: object, task_names: list[str] | None, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        StaticWeighting(weights, task_names=task_names)  # type: ignore[arg-type]


def test_repr_shows_hyperparameters() -> None:
    assert "weights=[1.0, 2.0]" in repr(StaticWeighting([1.0, 2.0]))
    assert "n_tasks=4" in repr(EqualWeighting(4))
