"""Default per-element losses for each task kind (PyTorch).

Each loss takes ``(prediction, target)`` and returns the *unreduced* loss of every
observed label together with the number of observed labels; missing labels (NaN, or a
negative class index for multiclass targets) are dropped before the loss is computed, so
they can never leak a NaN into the result.  :class:`polytask.tasks.TaskSet` reduces them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

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


__all__ = [
    "LossFn",
    "binary_cross_entropy_logits",
    "binary_cross_entropy_probs",
    "cross_entropy",
    "observed_mask",
    "squared_error",
]
