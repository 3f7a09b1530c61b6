"""Evaluate a multi-task model per task, and the model-selection score."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from polytask.tasks import TaskSet, UndefinedPolicy

from ._architectures._mmoe import MMoE
from ._architectures._shared_bottom import SharedBottom
from ._batches import eval_batches
from ._setup import ForwardModule, move


@torch.no_grad()
def evaluate_model(
    model: nn.Module, tasks: TaskSet, data: Any, *, batch_size: int, device: torch.device,
    what: str = "data", undefined: UndefinedPolicy = "raise",
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Metrics and mean loss of every task that has labels in ``data``.

    The model runs in eval mode without gradients; every example is seen once. A plain
    :class:`SharedBottom` or :class:`MMoE` is evaluated through ``decode(encode(x))``
    with its linear heads (gates, towers) stacked into one matrix product, which equals
    ``model(x)`` up to rounding.
    Predictions are gathered per task and scored by :meth:`Task.evaluate
    <polytask.tasks.Task.evaluate>`, which drops missing labels; ``undefined`` is
    passed on to it ("skip" leaves out a metric undefined on a task's labels, with a
    warning).

    Returns
    -------
    metrics : dict of str to dict of str to float
        ``{task: {metric: value}}``.
    losses : dict of str to float
        ``{task: mean loss over its observed labels}``.

    Raises
    ------
    ValueError
        If the data name an unknown task, or a metric is undefined on a task's labels
        and ``undefined="raise"`` (the message names the task).
    """
    was_training = model.training
    model.eval()
    # a plain SharedBottom / MMoE evaluates its linear heads (gates, towers) stacked
    forward = ForwardModule(model, encode=True, stack_heads=True) \
        if type(model) in (SharedBottom, MMoE) else None
    y_true: dict[str, list[np.ndarray]] = {t: [] for t in tasks.names}
    y_pred: dict[str, list[np.ndarray]] = {t: [] for t in tasks.names}
    loss_sum = torch.zeros(len(tasks), dtype=torch.float64)
    count = torch.zeros(len(tasks), dtype=torch.float64)
    try:
        for x, targets in eval_batches(data, tasks, batch_size, what):
            tasks.check_names(targets, what)
            xb = move(x, device)
            preds = model(xb) if forward is None else forward(xb)[1]
            missing = [t for t in tasks.names if t not in preds]
            if missing:
                raise ValueError(f"the model has no output for task(s) {missing}; its "
                                 f"outputs are {list(preds)}")
            chosen = {t: preds[t].float() for t in tasks.names}
            tgt = {t: move(y, device) for t, y in targets.items()}
            out = tasks.losses(chosen, tgt, return_counts=True, grouped=True)
            assert isinstance(out, tuple)
            losses, counts = out
            loss_sum += (losses.double() * counts.double()).cpu()
            count += counts.double().cpu()
            for name, y in targets.items():
                y_true[name].append(y.detach().cpu().double().numpy())
                y_pred[name].append(preds[name].detach().float().cpu().double().numpy())
    finally:
        model.train(was_training)
    metrics: dict[str, dict[str, float]] = {}
    mean_losses: dict[str, float] = {}
    for i, task in enumerate(tasks):
        if not y_true[task.name] or count[i] == 0:
            continue
        yt = np.concatenate(y_true[task.name])
        yp = np.concatenate(y_pred[task.name])
        if task.kind in ("regression", "binary") and yp.ndim == 2 and yp.shape[1] == 1:
            yp = yp[:, 0]
        try:
            metrics[task.name] = task.evaluate(yt, yp, undefined=undefined)
        except ValueError as exc:
            if task.name in str(exc):
                raise
            raise ValueError(f"task {task.name!r} on {what}: {exc}") from exc
        mean_losses[task.name] = float(loss_sum[i] / count[i])
    return metrics, mean_losses


def selection_score(tasks: TaskSet, metrics: dict[str, dict[str, float]]) -> float | None:
    """Mean over the main tasks of their primary metric, signed so higher is better.

    Auxiliary tasks never count. Main tasks without validation labels, or whose primary
    metric is undefined there (left out by ``undefined="skip"``), are skipped; ``None``
    when no main task was scored.

    Examples
    --------
    >>> from polytask.tasks import Task, TaskSet
    >>> ts = TaskSet([Task("a", metrics=["mse"]), Task("b", metrics=["mse"], role="auxiliary")])
    >>> selection_score(ts, {"a": {"mse": 0.5}, "b": {"mse": 9.0}})
    -0.5
    >>> selection_score(ts, {"a": {}, "b": {"mse": 9.0}}) is None
    True
    """
    from polytask.metrics import get_metric

    values = []
    for task in tasks:
        value = metrics.get(task.name, {}).get(task.primary_metric)
        if not task.is_main or value is None:
            continue
        sign = 1.0 if get_metric(task.primary_metric).higher_is_better else -1.0
        values.append(sign * value)
    if not values:
        return None
    score = float(np.mean(values))
    return score if math.isfinite(score) else None


def as_float_tensor(values: dict[str, float], tasks: TaskSet, fill: Tensor) -> Tensor:
    """``(n_tasks,)`` tensor of ``values`` in task order, ``fill`` where absent."""
    out = fill.clone().double()
    for i, name in enumerate(tasks.names):
        if name in values:
            out[i] = values[name]
    return out


__all__ = ["as_float_tensor", "evaluate_model", "selection_score"]
