"""Gradient similarity and conflict between tasks, over training.

Two tasks *conflict* at a step when the gradients of their losses with respect to the
shared parameters point in opposing directions, ``cos(g_i, g_j) < 0`` (Yu et al., 2020).
Everything here reads the Gramian ``G = J Jᵀ`` of the per-task gradients, the
``(n_tasks, n_tasks)`` matrix the trainer already computes for gradient-based methods,
so tracking costs no extra backward pass:

- :func:`cosine_from_gramian` — the cosine matrix of one step (pure function);
- :class:`GradientSimilarityTracker` — running mean cosine and conflict frequency, with
  ``state_dict``/``load_state_dict`` for checkpoint and resume;
- :func:`measure_gradient_similarity` — the same summary for a model outside training,
  the per-task gradients of each batch by the training engine.

A task with a zero gradient (no label in the batch, or a loss at its minimum) has no
direction: its cosines are *defined as 0* and flagged, never returned as NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from polytask._typing import FloatArray
from polytask.relate._checks import check_float, check_gram
from polytask.relate._gradient_tracker import (
    GradientSimilarity,
    GradientSimilarityTracker,
    gradient_cosine_and_mask,
)

if TYPE_CHECKING:
    from torch import Tensor, nn

    from polytask.tasks import Task, TaskSet

__all__ = [
    "GradientSimilarity",
    "GradientSimilarityTracker",
    "cosine_from_gramian",
    "measure_gradient_similarity",
]


@overload
def cosine_from_gramian(
    G: Any, *, atol: float = ..., return_mask: Literal[False] = ...
) -> FloatArray: ...


@overload
def cosine_from_gramian(
    G: Any, *, atol: float = ..., return_mask: Literal[True]
) -> tuple[FloatArray, np.ndarray]: ...


def cosine_from_gramian(
    G: Any, *, atol: float = 0.0, return_mask: bool = False
) -> FloatArray | tuple[FloatArray, np.ndarray]:
    """Cosine similarity of the task gradients from their Gramian.

    ``cos[i, j] = G[i, j] / sqrt(G[i, i] G[j, j])`` where ``G[i, j] = <g_i, g_j>``.
    The cosine of a zero gradient is undefined; a task whose squared gradient norm
    ``G[i, i] <= atol`` gets 0 in its whole row and column (diagonal included) and is
    reported in the mask, so that a zero never passes silently for "orthogonal".
    The cosines themselves are :func:`polytask.deep.backward.gradient_cosine` of the
    training engine, in float64 (torch is imported at the first call); this function
    adds the input checks, ``atol``, the mask and a NumPy result.

    Parameters
    ----------
    G : array_like or Tensor of shape (n_tasks, n_tasks)
        Symmetric positive semi-definite Gramian of the per-task gradients; rounding
        asymmetry (below 1 % of the largest entry) is removed by symmetrising.
    atol : float, default=0.0
        Squared norms at or below it count as zero gradients (``>= 0``).
    return_mask : bool, default=False
        Also return the mask of zero-gradient tasks.

    Returns
    -------
    cosine : ndarray of shape (n_tasks, n_tasks)
        Symmetric, entries in [-1, 1], 1 on the diagonal of non-zero tasks.
    zero : ndarray of bool, shape (n_tasks,)
        Only when ``return_mask``: True where the task's gradient is zero.

    Raises
    ------
    ValueError
        If ``G`` is not square, not finite, not symmetric, or has a negative diagonal.
    TypeError
        If ``G`` is not numeric.

    References
    ----------
    T. Yu, S. Kumar, A. Gupta, S. Levine, K. Hausman and C. Finn, "Gradient surgery for
    multi-task learning", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> J = np.array([[1.0, 0.0], [-1.0, 1.0], [0.0, 0.0]])   # third task: no gradient
    >>> cos, zero = cosine_from_gramian(J @ J.T, return_mask=True)
    >>> np.round(cos, 3).tolist()
    [[1.0, -0.707, 0.0], [-0.707, 1.0, 0.0], [0.0, 0.0, 0.0]]
    >>> zero.tolist()
    [False, False, True]
    """
    tol = check_float(atol, "atol", low=0.0)
    cos, zero = gradient_cosine_and_mask(check_gram(G, "G"), tol)
    return (cos, zero) if return_mask else cos


def measure_gradient_similarity(
    model: nn.Module,
    tasks: TaskSet | Iterable[Task | str],
    batches: Iterable[tuple[Tensor, Mapping[str, Tensor]]],
    params: Iterable[Tensor] | None = None,
    *,
    atol: float = 0.0,
) -> GradientSimilarity:
    """Gradient cosine and conflict frequency of a model over some batches, without training.

    For every batch ``(x, targets)`` the task losses ``tasks.losses(model(x), targets)``
    are differentiated with respect to ``params`` by
    :func:`polytask.deep.backward.task_gramian` (each task's backward pass from its own
    loss, the Gramian accumulated block by block), giving the Gramian fed to a
    :class:`GradientSimilarityTracker`. The model's parameters and their ``.grad`` are
    left untouched; the model is used in whatever mode (train/eval) it is in.

    Parameters
    ----------
    model : torch.nn.Module
        ``model(x)`` returns ``{task: prediction}``.
    tasks : TaskSet or iterable of Task or str
        The tasks, in the order of the returned matrices.
    batches : iterable of (Tensor, mapping of str to Tensor)
        Pairs ``(x, {task: target})``; a task missing from a batch has a zero gradient
        there (see :func:`cosine_from_gramian`).
    params : iterable of Tensor, optional
        Parameters to differentiate; defaults to ``model.shared_parameters()``.
    atol : float, default=0.0
        Zero-gradient threshold on squared norms.

    Returns
    -------
    GradientSimilarity

    Raises
    ------
    ValueError
        If there is no batch, a batch is not an ``(x, targets)`` pair, or the model's
        outputs do not match the tasks.
    TypeError
        If ``params`` is omitted and the model has no ``shared_parameters()``.

    References
    ----------
    T. Yu et al., "Gradient surgery for multi-task learning", NeurIPS 2020.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from polytask.deep.architectures import SharedBottom
    >>> _ = torch.manual_seed(0)
    >>> model = SharedBottom(nn.Linear(3, 1, bias=False), {"a": nn.Identity(), "b": nn.Identity()})
    >>> _ = nn.init.zeros_(model.encoder.weight)     # at w = 0 the gradients are opposite
    >>> x = torch.randn(16, 3)
    >>> y = x @ torch.tensor([[1.0], [2.0], [0.0]])
    >>> s = measure_gradient_similarity(model, ["a", "b"], [(x, {"a": y, "b": -y})])
    >>> round(float(s.mean_cosine[0, 1]), 3), s.n_steps
    (-1.0, 1)
    """
    import torch

    from polytask.deep.backward import task_gramian
    from polytask.tasks import TaskSet

    task_set = tasks if isinstance(tasks, TaskSet) else TaskSet(tasks)
    if params is None:
        shared = getattr(model, "shared_parameters", None)
        if shared is None:
            raise TypeError(
                "params is required: model has no shared_parameters() method; pass the "
                "parameters to differentiate"
            )
        params = shared()
    param_list = [p for p in params if p.requires_grad]
    if not param_list:
        raise ValueError("params must contain at least one tensor that requires grad")
    tracker = GradientSimilarityTracker(task_set.names, atol=atol)
    for k, batch in enumerate(batches):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError(f"batches[{k}] must be an (x, targets) pair")
        x, targets = batch
        with torch.enable_grad():
            losses = task_set.losses(model(x), targets)
            assert isinstance(losses, torch.Tensor)
            tracker.update(task_gramian(losses, param_list))
    if tracker.n_steps == 0:
        raise ValueError("batches must hold at least one (x, targets) pair")
    return tracker.summary()
