"""Autograd-graph inspection for the per-task gradient engine (private).

Three facts about the graph make the engine fast without asking anything of the model:

- **Per-task roots.**  ``TaskSet.losses`` builds the loss vector with ``torch.stack``; the
  ``StackBackward0`` node then has one incoming edge per task, so each task's backward
  can start from its own edge and only run through its own head
  (:func:`task_roots`).  Differentiating ``losses[i]`` instead would run every head with
  zero cotangents.
- **Feature consumers.**  In a model whose heads read a shared representation, the
  gradient of task ``i`` enters the representation through nodes that belong to task
  ``i`` only.  A hook on those nodes captures every per-task gradient with respect to
  the representation during *one* ordinary backward pass (:func:`feature_consumers`).
- **Linear layers.**  A ``Linear`` with a 2-D input leaves an ``AddmmBackward0`` (or
  ``MmBackward0``) node that saves its input ``a``.  The per-task weight gradient is
  ``δ_iᵀ a`` where ``δ_i`` is the task's gradient with respect to the layer's output, so
  the engine only needs ``δ_i`` from autograd and can form the Gramian blockwise
  (:func:`linear_layers`).

Each helper returns ``None`` (or leaves a parameter out) when its pattern is absent, and
the engine then falls back to plain batched autograd, which is always correct.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torch.autograd.graph import GradientEdge, Node

_LINEAR_NODES = ("AddmmBackward0", "MmBackward0")


# Element-wise nodes that map a loss vector to a loss vector entry by entry when only one
# of their inputs is differentiable (the others are constants): scaling, shifting,
# casting.  Their Jacobian is diagonal, so each task keeps its own root below them.
_ELEMENTWISE = frozenset({
    "MulBackward0", "MulBackward1", "DivBackward0", "DivBackward1", "AddBackward0",
    "AddBackward1", "SubBackward0", "SubBackward1", "RsubBackward0", "RsubBackward1",
    "NegBackward0", "ToCopyBackward0", "CloneBackward0",
})


@dataclass
class TaskRoots:
    """Where each task's backward pass starts.

    ``edges[i]`` is the input edge of task ``i`` into the ``StackBackward0`` node (``None``
    when that loss is a constant).  ``direct`` is False when element-wise operations
    with constants (``losses * c``, ``losses - losses.detach() + v``, ``.float()``) sit
    between the stack and ``losses``; each task's cotangent is then the diagonal of
    their Jacobian (see :func:`root_cotangents`).
    """

    edges: list[GradientEdge | None]
    stack: Node
    direct: bool


def task_roots(losses: Tensor) -> TaskRoots | None:
    """One graph edge per task when ``losses`` is ``torch.stack`` of scalar losses.

    Element-wise operations with constants applied after the stack are looked through.
    Returns ``None`` when the losses were built otherwise (the caller then uses a
    batched pass).
    """
    node = losses.grad_fn
    direct = True
    while node is not None and type(node).__name__ in _ELEMENTWISE:
        live = [nxt for nxt, _ in node.next_functions if nxt is not None]
        if len(live) != 1:
            return None
        node, direct = live[0], False
    if node is None or type(node).__name__ != "StackBackward0":
        return None
    edges = node.next_functions
    if len(edges) != losses.shape[0]:
        return None
    return TaskRoots([None if nxt is None else GradientEdge(nxt, nr) for nxt, nr in edges],
                     node, direct)


def _children(node: Node) -> Iterable[tuple[int, Any, int]]:
    for k, (nxt, nr) in enumerate(node.next_functions):
        if nxt is not None:
            yield k, nxt, nr


def feature_consumers(
    roots: TaskRoots, features: Sequence[Tensor]
) -> list[list[tuple[Node, int, int]]] | None:
    """Where each task's gradient enters the features: ``(node, input index, feature)``.

    Walks each task's part of the graph from its root down to the features (never below
    them, never into parameters).  Returns ``None`` when a consumer node is reached from
    two tasks (e.g. a parameter-free operation applied to the features before the
    heads): the gradients of those tasks are then mixed inside one node and the caller
    must fall back to one backward pass per task.
    """
    keys = {(f.grad_fn, f.output_nr): j for j, f in enumerate(features)}
    owner: dict[Node, int] = {}
    result: list[list[tuple[Node, int, int]]] = []
    for i, root in enumerate(roots.edges):
        found: list[tuple[Node, int, int]] = []
        result.append(found)
        if root is None:
            continue
        start = (root.node, root.output_nr)
        if start in keys:  # the loss is a feature itself: no node to hook
            return None
        stack, seen = [root.node], set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            hit = False
            for k, nxt, nr in _children(node):
                j = keys.get((nxt, nr))
                if j is not None:
                    found.append((node, k, j))
                    hit = True
                elif type(nxt).__name__ != "AccumulateGrad":
                    stack.append(nxt)
            if hit:
                if owner.setdefault(node, i) != i:
                    return None
    return result


@dataclass
class LinearLayer:
    """A linear map ``out = a Wᵀ (+ b)`` found in the graph, with its saved input."""

    node: Node
    weight: Tensor
    bias: Tensor | None
    inputs: Tensor  # a, (rows, in_features)

    @property
    def edge(self) -> GradientEdge:
        """The edge whose gradient is ``δ``, the gradient w.r.t. the layer's output."""
        return GradientEdge(self.node, 0)


def _param_of(node: Any) -> Tensor | None:
    if type(node).__name__ != "AccumulateGrad":
        return None
    variable: Tensor = node.variable
    return variable


def _as_linear(node: Node, parents: dict[Node, int], shared: set[int]) -> LinearLayer | None:
    """Match ``node`` against the ``F.linear`` pattern on shared parameters."""
    name = type(node).__name__
    try:
        if name == "AddmmBackward0":
            if node._saved_alpha != 1 or node._saved_beta != 1:  # type: ignore[attr-defined]
                return None
            bias_edge, mat2_edge = node.next_functions[0], node.next_functions[2]
            inputs = node._saved_mat1  # type: ignore[attr-defined]
        else:
            bias_edge, mat2_edge = (None, 0), node.next_functions[1]
            inputs = node._saved_self  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # unexpected layout or freed buffers
        return None
    transpose = mat2_edge[0]
    if transpose is None or type(transpose).__name__ != "TBackward0":
        return None
    if parents.get(transpose, 0) != 1:
        return None
    weight_node = transpose.next_functions[0][0]
    weight = _param_of(weight_node)
    if weight is None or id(weight) not in shared or parents.get(weight_node, 0) != 1:  # type: ignore[arg-type]
        return None
    bias: Tensor | None = None
    bias_node = bias_edge[0]
    if bias_node is not None:
        bias = _param_of(bias_node)
        if bias is None or id(bias) not in shared or parents.get(bias_node, 0) != 1:
            return None
        if bias.ndim != 1:
            return None
    if not isinstance(inputs, Tensor) or inputs.ndim != 2 or weight.ndim != 2:
        return None
    if inputs.shape[1] != weight.shape[1]:
        return None
    return LinearLayer(node, weight, bias, inputs)


def linear_layers(starts: Iterable[Node], shared: Sequence[Tensor]) -> list[LinearLayer]:
    """Linear layers whose weight (and bias) are shared parameters used nowhere else.

    Walks the whole graph below ``starts`` once and counts the parents of every node, so
    that a parameter used twice (weight tying) is never treated as one layer's alone.
    """
    shared_ids = {id(p) for p in shared}
    parents: dict[Node, int] = {}
    order: list[Node] = []
    stack = list(starts)
    seen: set[Node] = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        for _, nxt, _ in _children(node):
            parents[nxt] = parents.get(nxt, 0) + 1
            if nxt not in seen:
                stack.append(nxt)
    layers = []
    for node in order:
        if type(node).__name__ in _LINEAR_NODES:
            layer = _as_linear(node, parents, shared_ids)
            if layer is not None:
                layers.append(layer)
    return layers


def leaf_parameters(
    starts: Iterable[Node], stop: Iterable[tuple[Any, int]] = (), exclude: Iterable[Tensor] = ()
) -> list[Tensor]:
    """Leaf tensors requiring grad below ``starts``, not below the ``stop`` edges.

    Used to infer the task-specific parameters: every leaf of the losses' graph that is
    not a shared parameter (and, in representation mode, not below the features).
    """
    stop_nodes = {node for node, _ in stop}
    excluded = {id(p) for p in exclude}
    found: dict[int, Tensor] = {}
    stack = [n for n in starts if n not in stop_nodes]
    seen: set[Node] = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        param = _param_of(node)
        if param is not None:
            if id(param) not in excluded:
                found.setdefault(id(param), param)
            continue
        for _, nxt, _ in _children(node):
            if nxt not in seen and nxt not in stop_nodes:
                stack.append(nxt)
    return list(found.values())
