"""``TaskSet.losses(grouped=True)``: the vectorised pass equals the task-by-task loop."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from polytask.tasks import Task, TaskSet

pytestmark = pytest.mark.usefixtures("torch_one_thread")

N = 9


def _problem() -> tuple[TaskSet, dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """Interleaved kinds, missing labels, an unlabelled task, a task without targets,
    a user loss, (batch, 1) and (batch,) outputs, and an extra mask."""
    g = torch.Generator().manual_seed(3)
    tasks = TaskSet([
        Task("b0", kind="binary"), Task("r0"), Task("m0", kind="multiclass", n_outputs=3),
        Task("b1", kind="binary"), Task("r1"), Task("b_empty", kind="binary"),
        Task("b_absent", kind="binary"), Task("r_user", loss=lambda p, t: (p - t).abs()),
        Task("b2", kind="binary"), Task("r2"),
    ])
    preds = {t: torch.randn(N, 1, generator=g, requires_grad=True) for t in tasks.names}
    preds["m0"] = torch.randn(N, 3, generator=g, requires_grad=True)
    preds["b2"] = torch.randn(N, generator=g, requires_grad=True)  # (batch,), not (batch, 1)
    targets = {t: torch.randn(N, 1, generator=g) for t in ("r0", "r1", "r_user")}
    targets["r2"] = torch.randn(N, generator=g).reshape(N, 1)
    for t in ("b0", "b1", "b2", "b_empty"):
        targets[t] = (torch.rand(N, generator=g) < 0.4).float()
    targets["b0"][[1, 4]] = float("nan")
    targets["r1"][[0, 2, 7]] = float("nan")
    targets["b_empty"][:] = float("nan")
    targets["m0"] = torch.tensor([0, 2, 1, -1, 0, 1, 2, 2, 0])
    masks = {"b1": torch.tensor([True, False] * 4 + [True]), "r0": torch.ones(N, dtype=torch.bool)}
    return tasks, preds, targets, masks


@pytest.mark.parametrize("use_masks", [False, True])
def test_grouped_losses_and_gradients_equal_the_per_task_loop(use_masks: bool) -> None:
    tasks, preds, targets, masks = _problem()
    extra = masks if use_masks else None
    loop, loop_counts = tasks.losses(preds, targets, extra, return_counts=True)
    fast, fast_counts = tasks.losses(preds, targets, extra, return_counts=True, grouped=True)
    torch.testing.assert_close(fast, loop, rtol=1e-6, atol=1e-7)
    assert fast_counts.tolist() == loop_counts.tolist()
    names = list(tasks.names)
    assert fast[names.index("b_empty")].item() == 0.0
    assert fast[names.index("b_absent")].item() == 0.0
    weights = torch.linspace(0.5, 2.0, len(names))  # a weighted objective, as UW's
    loop_grads = torch.autograd.grad((weights * loop).sum(), list(preds.values()))
    fast_grads = torch.autograd.grad((weights * fast).sum(), list(preds.values()))
    for name, a, b in zip(preds, fast_grads, loop_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=f"task {name}")
    assert not fast_grads[names.index("b_empty")].any()  # no label: zero gradient


def test_grouped_losses_is_one_pass_whatever_the_number_of_tasks() -> None:
    """The result of many binary tasks is no stack of per-task scalars (one graph node)."""
    tasks = TaskSet([Task(f"t{i}", kind="binary") for i in range(50)])
    preds = {t: torch.randn(4, 1, requires_grad=True) for t in tasks.names}
    targets = {t: torch.ones(4) for t in tasks.names}
    fast = tasks.losses(preds, targets, grouped=True)
    loop = tasks.losses(preds, targets)
    assert isinstance(fast, Tensor) and isinstance(loop, Tensor)
    assert type(loop.grad_fn).__name__.startswith("Stack")
    assert not type(fast.grad_fn).__name__.startswith("Stack")
    torch.testing.assert_close(fast, loop)


def test_grouped_losses_keep_the_errors_that_name_the_task() -> None:
    tasks = TaskSet([Task("a", kind="binary"), Task("b", kind="binary")])
    preds = {"a": torch.zeros(4, 1), "b": torch.zeros(5, 1)}
    targets = {"a": torch.ones(4), "b": torch.ones(4)}
    with pytest.raises(ValueError, match="Task 'b': prediction of shape"):
        tasks.losses(preds, targets, grouped=True)
    with pytest.raises(ValueError, match="Task 'a': mask of shape"):
        tasks.losses({"a": torch.zeros(4, 1), "b": torch.zeros(4, 1)}, targets,
                     {"a": torch.ones(3, dtype=torch.bool)}, grouped=True)
    with pytest.raises(ValueError, match="Task 'b': no prediction"):
        tasks.losses({"a": torch.zeros(4, 1)}, targets, grouped=True)
