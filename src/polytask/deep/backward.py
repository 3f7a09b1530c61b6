r"""Per-task gradients and the multi-task backward pass.

Per-task gradients are the hot path of gradient-based multi-task methods.  This module
computes them once, blockwise, and turns them into one update:

- :func:`per_task_gradients` — the Jacobian ``J`` of shape ``(m, P)`` of the task
  losses with respect to some parameters (one batched backward pass, or a loop);
- :func:`task_gramian` — ``G = J Jᵀ`` of shape ``(m, m)`` without ever building ``J``;
- :func:`mtl_backward` — fills ``.grad`` with the update of a method: the shared
  parameters get ``d = Jᵀ w``, the task-specific ones the gradient of ``Σ_i L_i``;
- :func:`gradient_cosine` — the cosine-similarity matrix of the task gradients
  (``G`` normalised), for relatedness logging;
- :func:`linear_head_gramian` — the representation Gramian of linear heads from the
  cotangents at their outputs, ``(AᵀA) ∘ (W Wᵀ)`` summed per task, without the
  Jacobian (what the ``Trainer`` uses for a plain shared-bottom model with linear heads
  in representation mode).

Two modes:

``mode="parameter"``
    ``J`` is taken with respect to the shared parameters.  With ``features`` (the
    representation the heads read), the per-task cotangents ``∂L_i/∂z`` are recorded
    in one pass through the heads, then the shared part runs one batched (vmap)
    vector-Jacobian product with those ``m`` cotangents.  Without ``features``, each
    task's backward pass starts at its own loss and runs through its own head only.
    Linear layers contribute to ``G`` from their inputs and output gradients (no weight
    gradient is formed, and ``⟨δ_i, (a aᵀ) δ_j⟩`` is used when the batch is smaller than
    the layer's input), and ``d = Jᵀ w`` is assembled from the same blocks, so no second
    backward pass is needed.
``mode="representation"``
    ``J`` is taken with respect to the shared representation ``z = model.encode(x)``
    (MGDA-UB [2]_).  The per-task gradients ``∂L_i/∂z`` are recorded during *one*
    ordinary backward pass through the heads; the encoder then runs one backward with
    cotangent ``Σ_i w_i ∂L_i/∂z``.  A step costs about one plain step, whatever ``m``.

Per-task roots are found when ``losses`` was built with ``torch.stack`` (as
``TaskSet.losses`` does), possibly followed by element-wise operations with constants
(``losses * c``, ``losses - losses.detach() + v``); otherwise one batched vmap pass over
the whole graph is used, which is always correct but slower.

A training step::

    optimizer.zero_grad()
    features = model.encode(x)                     # model.supports_representation
    preds = model.decode(features, x)
    losses = task_set.losses(preds, targets)       # (m,), built with torch.stack
    result = mtl_backward(losses, model.shared_parameters(), task_params,
                          method=UPGradWeighting(), mode="representation",
                          features=features)
    optimizer.step()

References
----------
.. [1] J.-A. Désidéri, "Multiple-gradient descent algorithm (MGDA) for multiobjective
   optimization", *Comptes Rendus Mathématique* 350, 2012.
.. [2] O. Sener and V. Koltun, "Multi-Task Learning as Multi-Objective Optimization",
   NeurIPS 2018.
.. [3] P. Quinton and V. Rey, "Jacobian Descent for Multi-Objective Optimization",
   arXiv:2406.16232, 2024.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from ._backward_checks import (
    check_choice,
    check_features,
    check_losses,
    check_params,
    flatten_task_params,
)
from ._backward_impl import (
    accumulate,
    feature_gramian,
    gradient_cosine,
    loss_weighting_backward,
    split_vector,
)
from ._graph import leaf_parameters
from ._head_gramian import linear_head_gramian
from ._jacobian import STRATEGIES, Strategy, task_blocks
from ._methods import (
    GramianWeightingLike,
    StatefulGramianWeighting,
    gramian_weights,
    resolve_method,
)
from ._passes import feature_gradients

Mode = Literal["parameter", "representation"]
HeadWeights = Literal["unit", "method"]

__all__ = [
    "BackwardResult",
    "GramianWeightingLike",
    "StatefulGramianWeighting",
    "gradient_cosine",
    "linear_head_gramian",
    "mtl_backward",
    "per_task_gradients",
    "task_gramian",
]


@dataclass(frozen=True)
class BackwardResult:
    """What :func:`mtl_backward` computed, besides the ``.grad`` it filled.

    Attributes
    ----------
    losses : Tensor of shape (n_tasks,)
        The task losses, detached.
    weights : Tensor of shape (n_tasks,) or None
        The task weights ``w`` of the update ``d = Jᵀ w`` (``None`` for an aggregator
        that is not Gramian-based).
    gramian : Tensor of shape (n_tasks, n_tasks) or None
        ``G = J Jᵀ`` of the per-task gradients (w.r.t. the shared parameters or the
        representation, per ``mode``); ``None`` for a loss weighting that did not need
        it.
    state : object or None
        The new state of a stateful method (pass it to the next call), else ``None``.
    mode : {"parameter", "representation"}
        Where the per-task gradients were taken.
    task_names : tuple of str or None
        The task names, when given.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import MGDAWeighting
    >>> w = torch.tensor([1.0, 1.0], requires_grad=True)
    >>> losses = torch.stack([w[0] ** 2, -w[1]])       # gradients (2, 0) and (0, -1)
    >>> result = mtl_backward(losses, [w], method=MGDAWeighting())
    >>> [round(v, 2) for v in result.weights.tolist()], result.cosine.tolist()
    ([0.2, 0.8], [[1.0, 0.0], [0.0, 1.0]])
    >>> [round(v, 2) for v in w.grad.tolist()]           # the min-norm point of the hull
    [0.4, -0.8]
    """

    losses: Tensor
    weights: Tensor | None
    gramian: Tensor | None
    state: Any
    mode: Mode
    task_names: tuple[str, ...] | None = None

    @property
    def cosine(self) -> Tensor | None:
        """Cosine-similarity matrix of the task gradients (see :func:`gradient_cosine`)."""
        return None if self.gramian is None else gradient_cosine(self.gramian)


def per_task_gradients(
    losses: Tensor,
    params: Iterable[Tensor],
    *,
    retain_graph: bool = False,
    strategy: Strategy = "batched",
) -> Tensor:
    """The Jacobian of the task losses: one flattened gradient per task.

    Parameters
    ----------
    losses : Tensor of shape (n_tasks,)
        The task losses, attached to the graph.
    params : iterable of Tensor
        The parameters to differentiate; those not requiring grad are skipped.  The
        columns follow their order, each parameter flattened.
    retain_graph : bool, default=False
        Keep the graph for a later backward pass.
    strategy : {"batched", "loop", "auto"}, default="batched"
        ``"batched"``: one vmapped backward over the identity cotangents
        (``is_grads_batched=True``).  ``"loop"``: one backward per task (for models where
        vmap fails); from each task's own loss when ``losses`` was built with
        ``torch.stack``.  ``"auto"``: the loop when ``losses`` was stacked, else batched.

    Returns
    -------
    Tensor of shape (n_tasks, n_params)
        Row ``i`` is ``∂L_i/∂θ``; a parameter a task does not use gives zeros.

    Raises
    ------
    TypeError, ValueError
        If ``losses`` is not a finite 1-D floating tensor attached to the graph,
        ``params`` holds a non-tensor, no parameter requires grad, or ``strategy`` is
        unknown.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> losses = torch.stack([w.sum(), (w ** 2).sum()])
    >>> per_task_gradients(losses, [w]).tolist()
    [[1.0, 1.0], [2.0, 4.0]]
    """
    losses = check_losses(losses, None)
    plist = check_params(params, "params", required=True)
    check_choice(strategy, STRATEGIES, "strategy")
    blocks = task_blocks(losses, plist, strategy=strategy, retain_graph=retain_graph,
                         exploit_linear=False)
    m = losses.shape[0]
    got = {id(p): block for p, block in blocks.params}
    rows = [got[id(p)].reshape(m, -1) if id(p) in got else p.new_zeros((m, p.numel()))
            for p in plist]
    return torch.cat(rows, dim=1).detach()


def task_gramian(
    losses: Tensor,
    params: Iterable[Tensor],
    *,
    retain_graph: bool = False,
    strategy: Strategy = "auto",
    exploit_linear: bool = True,
) -> Tensor:
    """Gramian ``G = J Jᵀ`` of the per-task gradients, accumulated block by block.

    ``G[i, j] = <∂L_i/∂θ, ∂L_j/∂θ>``.  ``J`` is never flattened: each parameter (or each
    linear layer, from its input and output gradients) adds its ``(m, m)`` part.

    Parameters
    ----------
    losses : Tensor of shape (n_tasks,)
        The task losses, attached to the graph.
    params : iterable of Tensor
        The parameters, e.g. the shared ones.
    retain_graph : bool, default=False
        Keep the graph for a later backward pass (e.g. of ``Σ_i w_i L_i``).
    strategy : {"auto", "batched", "loop"}, default="auto"
        See :func:`per_task_gradients`.
    exploit_linear : bool, default=True
        Use the linear-layer shortcut; ``False`` differentiates every parameter.

    Returns
    -------
    Tensor of shape (n_tasks, n_tasks)
        Symmetric positive semi-definite, detached.

    Raises
    ------
    TypeError, ValueError
        As :func:`per_task_gradients`.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> losses = torch.stack([w.sum(), (w ** 2).sum()])   # gradients (1, 1), (2, 4)
    >>> task_gramian(losses, [w]).tolist()
    [[2.0, 6.0], [6.0, 20.0]]
    """
    losses = check_losses(losses, None)
    plist = check_params(params, "params", required=True)
    check_choice(strategy, STRATEGIES, "strategy")
    blocks = task_blocks(losses, plist, strategy=strategy, retain_graph=retain_graph,
                         exploit_linear=bool(exploit_linear))
    return blocks.gramian().detach()


def mtl_backward(
    losses: Tensor,
    shared_params: Iterable[Tensor],
    task_params: Iterable[Tensor] | Sequence[Iterable[Tensor]] | None = None,
    *,
    method: object,
    mode: Mode = "parameter",
    features: Tensor | Sequence[Tensor] | None = None,
    head_weights: HeadWeights | None = None,
    state: Any = None,
    generator: torch.Generator | None = None,
    strategy: Strategy = "auto",
    retain_graph: bool = False,
    return_gramian: bool = False,
    skip_zero_gradient_tasks: bool = False,
    task_names: Sequence[str] | None = None,
) -> BackwardResult:
    r"""Backpropagate the task losses with a multi-task method; accumulate into ``.grad``.

    The shared parameters receive the update ``d = Jᵀ w``, where ``J`` stacks the task
    gradients and ``w`` comes from the method; the task-specific parameters receive the
    gradient of ``Σ_i L_i`` (``head_weights="unit"``, the default for Gramian methods and
    aggregators, as in torchjd) or of ``Σ_i w_i L_i`` (``"method"``, the default for loss
    weightings, whose objective is backpropagated as a whole).  Like
    ``Tensor.backward``, gradients are *added* to ``.grad``; the optimizer is untouched.

    Parameters
    ----------
    losses : Tensor of shape (n_tasks,)
        The task losses, attached to the graph; build them with ``torch.stack`` (as
        ``TaskSet.losses`` does) so each task is backpropagated through its head only.
    shared_params : iterable of Tensor
        The shared parameters, e.g. ``model.shared_parameters()``.
    task_params : iterable of Tensor, or sequence of iterables (one per task), optional
        The task-specific parameters.  ``None`` takes every other leaf of the losses'
        graph (above the features in representation mode).
    method : object
        A Gramian weighting (callable ``G (m, m) -> w (m,)``, e.g. ``UPGradWeighting()``),
        a stateful one (``init_state`` and ``(G, state) -> (w, state)``, e.g.
        ``GradVacWeighting``), an aggregator (``MGDA()``; Gramian-based ones are reduced
        to their weighting, others receive the explicit Jacobian) or a
        :class:`~polytask.deep.weighting.LossWeighting`.
    mode : {"parameter", "representation"}, default="parameter"
        Take the per-task gradients w.r.t. the shared parameters or w.r.t. ``features``.
    features : Tensor or sequence of Tensor, optional
        The shared representation ``model.encode(x)``, not detached, that the heads
        read; required in representation mode.  In parameter mode it is optional and
        makes the pass faster; the shared parameters must then reach the losses only
        through the features (the :class:`~polytask.deep.architectures.Architecture`
        contract of ``encode``/``decode``).
    head_weights : {"unit", "method"}, optional
        How the task-specific parameters are weighted (see above).
    state : object, optional
        State of a stateful method; ``None`` starts from ``method.init_state(m)``.  The
        next state is ``result.state``.
    generator : torch.Generator, optional
        Passed to methods that draw random numbers (PCGrad, GradVac).
    strategy : {"auto", "batched", "loop"}, default="auto"
        How per-task gradients are computed: ``"auto"`` runs each task's backward from
        its own loss (or records all of them in one pass in representation mode) when
        ``losses`` was stacked, else one batched vmap pass; ``"batched"`` forces vmap;
        ``"loop"`` forces one pass per task (models where vmap fails).
    retain_graph : bool, default=False
        Keep the graph after the call.
    return_gramian : bool, default=False
        Also compute the Gramian for a loss weighting that does not need it.
    skip_zero_gradient_tasks : bool, default=False
        Give weight 0 to tasks whose gradient is exactly zero (no label in the batch) and
        apply a stateless Gramian method to the other tasks only; otherwise such a task
        stays in (MGDA then returns a zero update).
    task_names : sequence of str, optional
        Task names, for error messages and the result.

    Returns
    -------
    BackwardResult
        The losses, weights, Gramian (its :attr:`~BackwardResult.cosine` is the
        gradient cosine-similarity matrix) and the method's new state.

    Raises
    ------
    TypeError
        If an argument has the wrong type, or ``method`` is none of the kinds above.
    ValueError
        If a loss is not finite (the message names the task), the losses are not a 1-D
        tensor attached to the graph, a parameter is both shared and task-specific,
        ``features`` are missing or detached in representation mode, an option is
        unknown, or the method returns invalid weights.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from polytask.deep.aggregation import UPGradWeighting
    >>> torch.manual_seed(0) and None
    >>> encoder, heads = nn.Linear(3, 4), nn.ModuleList(nn.Linear(4, 1) for _ in range(2))
    >>> x, y = torch.randn(8, 3), torch.randn(8, 2)
    >>> z = encoder(x)
    >>> losses = torch.stack([(h(z)[:, 0] - y[:, i]).pow(2).mean() for i, h in enumerate(heads)])
    >>> result = mtl_backward(losses, encoder.parameters(), heads.parameters(),
    ...                       method=UPGradWeighting(), mode="representation", features=z)
    >>> encoder.weight.grad.shape, tuple(result.gramian.shape), result.weights.shape
    (torch.Size([4, 3]), (2, 2), torch.Size([2]))
    """
    names = tuple(task_names) if task_names is not None else None
    losses = check_losses(losses, names)
    check_choice(mode, ("parameter", "representation"), "mode")
    check_choice(strategy, STRATEGIES, "strategy")
    check_choice(head_weights, (None, "unit", "method"), "head_weights")
    resolved = resolve_method(method)
    shared = check_params(shared_params, "shared_params", required=True)
    if mode == "representation" and features is None:
        raise ValueError("features is required when mode='representation': pass "
                         "model.encode(x), the tensor(s) the task heads read (not detached).")
    feats = None if features is None else check_features(features)
    if task_params is None:
        stops = [(f.grad_fn, f.output_nr) for f in feats] if feats is not None else []
        heads = leaf_parameters([losses.grad_fn], stops, exclude=shared)  # type: ignore[list-item]
    else:
        heads = flatten_task_params(task_params, shared)
    unit = head_weights == "unit" or (head_weights is None and resolved.kind != "loss")
    gram: Tensor | None = None
    weights: Tensor | None = None
    new_state: Any = None
    if resolved.kind == "loss":
        weights, gram = loss_weighting_backward(losses, shared, heads, resolved, feats, mode,
                                                unit, strategy, retain_graph, return_gramian)
        return BackwardResult(losses.detach(), weights, gram, None, mode, names)
    detached = losses.detach()
    extra = heads if unit else []
    keep = retain_graph or not unit
    if mode == "parameter":
        blocks = task_blocks(losses, shared, extra, features=feats, strategy=strategy,
                             retain_graph=keep)
        sums = blocks.sums
        if resolved.kind == "jacobian":
            update = resolved.fn(blocks.jacobian())
            pieces = split_vector(update, blocks.parameters())
        else:
            gram = blocks.gramian()
            weights, new_state = gramian_weights(resolved, gram, detached, state, generator,
                                                 skip_zero_gradient_tasks)
            pieces = blocks.direction(weights)
        accumulate(pieces)
    else:
        assert feats is not None  # checked above
        jacobians, sums = feature_gradients(losses, feats, extra, strategy=strategy)
        m = losses.shape[0]
        if resolved.kind == "jacobian":
            flat = torch.cat([j.reshape(m, -1) for j in jacobians], dim=1)
            cotangents = [c for _, c in split_vector(resolved.fn(flat), feats)]
        else:
            gram = feature_gramian(jacobians, m)
            weights, new_state = gramian_weights(resolved, gram, detached, state, generator,
                                                 skip_zero_gradient_tasks)
            cotangents = [torch.tensordot(weights.to(j.dtype), j, dims=1) for j in jacobians]
        torch.autograd.backward(feats, cotangents, retain_graph=keep)
    accumulate(sums)
    if not unit and heads and weights is not None:
        objective = (weights.to(losses.dtype) * losses).sum()
        torch.autograd.backward(objective, inputs=heads, retain_graph=retain_graph)
    return BackwardResult(detached, weights, None if gram is None else gram.detach(),
                          new_state, mode, names)
