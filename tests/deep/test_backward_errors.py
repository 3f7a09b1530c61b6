"""Input errors of the per-task gradient engine, and the gradient cosine matrix."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from polytask.deep.aggregation import MeanWeighting
from polytask.deep.backward import (
    BackwardResult,
    gradient_cosine,
    mtl_backward,
    per_task_gradients,
    task_gramian,
)

DT = torch.float64


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Sequential(nn.Linear(5, 4), nn.Tanh()).to(DT)
        self.heads = nn.ModuleList(nn.Linear(4, 1).to(DT) for _ in range(3))
        self.x, self.y = torch.randn(6, 5, dtype=DT), torch.randn(6, 3, dtype=DT)

    def shared(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def losses(self) -> tuple[Tensor, Tensor]:
        z = self.encoder(self.x)
        out = [(h(z)[:, 0] - self.y[:, i]).pow(2).mean() for i, h in enumerate(self.heads)]
        return z, torch.stack(out)


def test_non_finite_loss_names_the_task() -> None:
    net = Net()
    _, losses = net.losses()
    bad = losses * torch.tensor([1.0, math.nan, 1.0], dtype=DT)
    with pytest.raises(ValueError, match=r"losses\[1\] for task 1 \('b'\)"):
        mtl_backward(bad, net.shared(), method=MeanWeighting(), task_names=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"losses\[1\] for task 1 is"):
        per_task_gradients(bad, net.shared())


def test_input_errors() -> None:
    net = Net()
    z, losses = net.losses()
    shared = net.shared()
    cases: list[tuple[type[Exception], str, dict[str, object]]] = [
        (TypeError, "losses must be a torch.Tensor", {"losses": [1.0]}),
        (ValueError, "non-empty 1-D", {"losses": losses.reshape(1, 3)}),
        (ValueError, "does not require grad", {"losses": losses.detach()}),
        (ValueError, "mode must be one of", {"mode": "weights"}),
        (ValueError, "strategy must be one of", {"strategy": "vmap"}),
        (ValueError, "head_weights must be one of", {"head_weights": "none"}),
        (ValueError, "features is required", {"mode": "representation"}),
        (ValueError, "not attached", {"mode": "representation", "features": z.detach()}),
        (ValueError, "also in shared_params", {"task_params": [shared[0]]}),
        (TypeError, "method must be", {"method": 3}),
        (ValueError, "shared_params must contain", {"shared_params": []}),
        (ValueError, "task_names has 2 names", {"task_names": ["a", "b"]}),
        (ValueError, r"returned weights of shape \(2,\)", {"method": lambda g: g[0, :2]}),
        (ValueError, "non-finite weights", {"method": lambda g: g[0] * math.inf}),
    ]
    for error, message, override in cases:
        kwargs: dict[str, object] = {"losses": losses, "shared_params": shared,
                                     "method": MeanWeighting(), "retain_graph": True}
        kwargs.update(override)
        with pytest.raises(error, match=message):
            mtl_backward(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must contain at least one tensor"):
        task_gramian(losses, [])
    with pytest.raises(TypeError, match="iterable of tensors"):
        per_task_gradients(losses, shared[0])


def test_gradient_cosine_properties() -> None:
    jac = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-2.0, 0.0]])
    cos = gradient_cosine(jac @ jac.T)
    assert cos.tolist() == [[1.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]
    with pytest.raises(ValueError, match="square"):
        gradient_cosine(torch.ones(2, 3))
    assert isinstance(BackwardResult(torch.ones(1), None, None, None, "parameter").cosine,
                      type(None))
