"""The autograd passes of the per-task gradient engine (private).

:func:`differentiate` runs the per-task backward passes, either one batched (vmap)
pass over identity cotangents or one pass per task from its own root edge.
:func:`feature_gradients` gets ``∂L_i/∂z`` for every task, fastest first:

1. **One backward pass with hooks** (``strategy="auto"``): when ``losses`` was stacked
   and each task reaches the features through its own nodes, a post-hook on those
   nodes records the gradient each task sends to the features while one ordinary
   backward of ``Σ_i L_i`` runs (which also gives the heads their summed gradients).
2. **One pass per task** (``"loop"``, or ``"auto"`` when a node is shared by tasks):
   ``m`` backward passes, each from one task's root edge through its own head only.
3. **One batched pass** (``"batched"``, or ``"auto"`` when ``losses`` was not stacked):
   ``vmap`` over the identity cotangents.  Correct for any graph, but every head then
   runs on an ``(m, ...)`` batch of mostly-zero cotangents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

import torch
from torch import Tensor
from torch.autograd.graph import GradientEdge
from torch.utils.hooks import RemovableHandle

from ._graph import TaskRoots, feature_consumers, task_roots

Strategy = Literal["auto", "batched", "loop"]
STRATEGIES: tuple[str, ...] = ("auto", "batched", "loop")
Target = Tensor | GradientEdge


def root_cotangents(losses: Tensor, roots: TaskRoots) -> Tensor:
    """Cotangent of each task's root: ``∂losses_i/∂stacked_i`` (ones when direct)."""
    if roots.direct:
        return torch.ones_like(losses)
    ones = torch.ones_like(losses)
    (diagonal,) = torch.autograd.grad(
        [losses], [GradientEdge(roots.stack, 0)], [ones], retain_graph=True
    )
    return diagonal


def differentiate(
    losses: Tensor,
    roots: TaskRoots | None,
    targets: Sequence[Target],
    strategy: str,
    retain_graph: bool,
) -> list[Tensor | None]:
    """Per-task gradients of ``losses`` (m,) w.r.t. ``targets``, stacked to ``(m, ...)``.

    ``None`` for a target that no task reaches.  One batched (vmap) pass when
    ``strategy="batched"`` (or ``"auto"`` without ``roots``), else one pass per task
    from its root edge (or from ``losses[i]`` when there are no roots).
    """
    m = losses.shape[0]
    if strategy == "batched" or (strategy == "auto" and roots is None):
        eye = torch.eye(m, dtype=losses.dtype, device=losses.device)
        return list(torch.autograd.grad(
            [losses], cast(Any, list(targets)), [eye],
            retain_graph=retain_graph, allow_unused=True, is_grads_batched=True,
        ))
    per_task: list[list[Tensor | None]] = [[None] * m for _ in targets]
    if roots is None:
        outputs: list[Tensor | GradientEdge | None] = [losses[i] for i in range(m)]
        seeds = torch.ones_like(losses)
    else:
        outputs = list(roots.edges)
        seeds = root_cotangents(losses, roots)
    nonzero = (seeds != 0).tolist()
    live = [i for i in range(m) if outputs[i] is not None and nonzero[i]]
    for count, i in enumerate(live):
        keep = retain_graph or count < len(live) - 1
        grads = torch.autograd.grad(
            cast(Any, [outputs[i]]), cast(Any, list(targets)), [seeds[i]],
            retain_graph=keep, allow_unused=True,
        )
        for k, g in enumerate(grads):
            per_task[k][i] = g
    return [stack_tasks(g) for g in per_task]


def stack_tasks(grads: list[Tensor | None]) -> Tensor | None:
    """Stack per-task gradients into ``(m, ...)``, zeros for ``None``; None if all are."""
    like = next((g for g in grads if g is not None), None)
    if like is None:
        return None
    return torch.stack([torch.zeros_like(like) if g is None else g for g in grads])


def _capture(slots: list[list[Tensor | None]], task: int, index: int, feature: int
             ) -> Callable[..., None]:
    """A node post-hook keeping the gradient that ``task`` sends to ``feature``."""

    def hook(grad_inputs: tuple[Tensor | None, ...], grad_outputs: object) -> None:
        grad = grad_inputs[index]
        if grad is not None:
            held = slots[feature][task]
            # keep a reference (the engine never modifies a tensor referenced elsewhere)
            slots[feature][task] = grad if held is None else held + grad

    return hook


def feature_gradients(
    losses: Tensor,
    features: Sequence[Tensor],
    extra: Sequence[Tensor] = (),
    *,
    strategy: str = "auto",
) -> tuple[list[Tensor], list[tuple[Tensor, Tensor]]]:
    """Per-task gradients w.r.t. ``features`` and summed gradients of ``extra``.

    Returns
    -------
    jacobians : list of Tensor
        One ``(m, *feature.shape)`` tensor per feature tensor.
    sums : list of (Tensor, Tensor)
        ``(parameter, Σ_i ∂L_i/∂parameter)`` for the ``extra`` parameters that received
        a gradient.

    The graph is always retained: the caller backpropagates through the features next.
    """
    m = losses.shape[0]
    roots = task_roots(losses) if strategy != "batched" else None
    consumers = None
    if strategy == "auto" and roots is not None:
        consumers = feature_consumers(roots, features)
    if consumers is not None:
        slots: list[list[Tensor | None]] = [[None] * m for _ in features]
        handles: list[RemovableHandle] = []
        try:
            for task, found in enumerate(consumers):
                for node, index, j in found:
                    handles.append(node.register_hook(_capture(slots, task, index, j)))
            ones = torch.ones_like(losses)
            grads = torch.autograd.grad(
                [losses], [*features, *extra], [ones], retain_graph=True, allow_unused=True
            )
        finally:
            for handle in handles:
                handle.remove()
        sums = [
            (p, g) for p, g in zip(extra, grads[len(features):], strict=True) if g is not None
        ]
        jacobians = [torch.stack([f.new_zeros(f.shape) if g is None else g for g in per_task])
                     for f, per_task in zip(features, slots, strict=True)]
        return jacobians, sums
    stacked = differentiate(losses, roots, [*features, *extra], strategy, retain_graph=True)
    jacobians = [f.new_zeros((m, *f.shape)) if g is None else g
                 for f, g in zip(features, stacked[: len(features)], strict=True)]
    sums = [(p, g.sum(0)) for p, g in zip(extra, stacked[len(features):], strict=True)
            if g is not None]
    return jacobians, sums


def differentiate_features(
    features: Sequence[Tensor],
    cotangents: Sequence[Tensor],
    targets: Sequence[Target],
    strategy: str,
    retain_graph: bool,
) -> list[Tensor | None]:
    """Vector-Jacobian products of ``features`` with ``(m, ...)`` cotangents, stacked.

    One batched (vmap) pass unless ``strategy="loop"``; ``None`` for an unreached target.
    """
    m = cotangents[0].shape[0]
    if strategy != "loop":
        return list(torch.autograd.grad(
            list(features), cast(Any, list(targets)), list(cotangents),
            retain_graph=retain_graph, allow_unused=True, is_grads_batched=True,
        ))
    per_task: list[list[Tensor | None]] = [[None] * m for _ in targets]
    for i in range(m):
        keep = retain_graph or i < m - 1
        grads = torch.autograd.grad(
            list(features), cast(Any, list(targets)), [c[i] for c in cotangents],
            retain_graph=keep, allow_unused=True,
        )
        for k, g in enumerate(grads):
            per_task[k][i] = g
    return [stack_tasks(g) for g in per_task]
