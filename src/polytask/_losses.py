"""Default per-element losses for each task kind (PyTorch).

Each loss takes ``(prediction, target)`` and returns the *unreduced* loss of every
observed label together with the number of observed labels; missing labels (NaN, or a
negative class index for multiclass targets) are dropped before the loss is computed, so
they can never leak a NaN into the result.  :class:`polytask.tasks.TaskSet` reduces them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from polytask.tasks import Task

LossFn = Callable[[Tensor, Tensor], Tensor]
"""A per-element loss: ``(prediction, target) -> losses`` with ``reduction='none'``."""


def observed_mask(target: Tensor) -> Tensor:
    """Boolean mask of the observed labels in ``target``.

    NaN marks a missing label in floating targets; a negative value marks a missing class
    index in integer targets.

    Examples
    --------
    >>> import torch
    >>> observed_mask(torch.tensor([1.0, float("nan"), 0.0])).tolist()
    [True, False, True]
    >>> observed_mask(torch.tensor([2, -1, 0])).tolist()
    [True, False, True]
    """
    if target.is_floating_point():
        return ~torch.isnan(target)
    return target >= 0


def squared_error(pred: Tensor, target: Tensor) -> Tensor:
    """Elementwise squared error ``(pred - target)**2`` (regression default)."""
    return (pred - target.to(pred.dtype)) ** 2


def binary_cross_entropy_logits(pred: Tensor, target: Tensor) -> Tensor:
    """Elementwise binary cross-entropy on logits (binary and multilabel default)."""
    return F.binary_cross_entropy_with_logits(pred, target.to(pred.dtype), reduction="none")


def binary_cross_entropy_probs(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """Elementwise binary cross-entropy on probabilities, clamped to ``[eps, 1 - eps]``.

    Used for heads that output probabilities, e.g. ESMM's ``pCTCVR = pCTR * pCVR``.
    """
    p = pred.clamp(eps, 1.0 - eps)
    return F.binary_cross_entropy(p, target.to(pred.dtype), reduction="none")


def cross_entropy(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample cross-entropy on class logits ``pred`` (batch, n_classes)."""
    return F.cross_entropy(pred, target.long(), reduction="none")


def grouped_losses(
    tasks: Sequence[Task],
    preds: Mapping[str, Tensor],
    targets: Mapping[str, Tensor],
    masks: Mapping[str, Tensor] | None,
) -> list[tuple[list[int], Tensor, list[int]]]:
    """Mean losses of many same-kind tasks in one vectorised pass.

    Regression and binary tasks with the kind's default loss whose predictions have the
    same shape, dtype and device (``(batch,)`` or ``(batch, 1)``) form one group: their
    predictions and targets are stacked to ``(k, batch)``, the per-element loss is
    computed once and each row is averaged over its observed labels.  A task with no
    observed label gets exactly 0 and a zero gradient.  The values equal those of the
    task-by-task loop of :meth:`polytask.tasks.TaskSet.losses` up to rounding; the loop
    keeps one graph node per task, which per-task gradient methods need, while this
    costs a few operations whatever the number of tasks (617 ToxCast assays).

    Tasks that do not qualify (a user loss, multiclass or multilabel, a shape the loop
    would reject, no target) and groups of one task are left to the caller's loop.

    Returns
    -------
    list of (indices, losses, counts)
        Per group: the tasks' positions in ``tasks``, their losses ``(k,)`` and their
        numbers of observed labels.
    """
    defaults = {"regression": squared_error, "binary": binary_cross_entropy_logits}
    groups: dict[tuple[object, ...], list[tuple[int, Tensor, Tensor, Tensor | None]]] = {}
    for i, task in enumerate(tasks):
        if task.loss is not None or task.kind not in defaults:
            continue
        pred, target = preds.get(task.name), targets.get(task.name)
        if pred is None or target is None:
            continue
        pred = pred[:, 0] if pred.ndim == 2 and pred.shape[1] == 1 else pred
        target = target[:, 0] if target.ndim == 2 and target.shape[1] == 1 else target
        extra = None if masks is None else masks.get(task.name)
        if pred.ndim != 1 or target.shape != pred.shape or (
                extra is not None and extra.shape != target.shape):
            continue  # the loop raises the error that names the task
        key: tuple[object, ...] = (task.kind, tuple(pred.shape), pred.dtype, pred.device,
                                   target.dtype)
        groups.setdefault(key, []).append((i, pred, target, extra))
    out: list[tuple[list[int], Tensor, list[int]]] = []
    for group, members in groups.items():
        if len(members) < 2:
            continue
        pred = torch.stack([m[1] for m in members])
        target = torch.stack([m[2] for m in members])
        observed = observed_mask(target)
        if any(m[3] is not None for m in members):
            extra = torch.stack([torch.ones_like(observed[0]) if m[3] is None
                                 else m[3].to(torch.bool) for m in members])
            observed = observed & extra
        filled = torch.where(observed, target, torch.zeros_like(target))
        per_elem = torch.where(observed, defaults[str(group[0])](pred, filled),
                               torch.zeros((), dtype=pred.dtype, device=pred.device))
        n_obs = observed.sum(dim=1)
        losses = per_elem.sum(dim=1) / n_obs.clamp(min=1).to(pred.dtype)
        out.append(([m[0] for m in members], losses, n_obs.tolist()))
    return out


__all__ = [
    "LossFn",
    "binary_cross_entropy_logits",
    "binary_cross_entropy_probs",
    "cross_entropy",
    "grouped_losses",
    "observed_mask",
    "squared_error",
]
