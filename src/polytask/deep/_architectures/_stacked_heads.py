"""Many plain linear heads evaluated as one matrix product (a speed path, same values).

The same holds for MMoE's per-task linear gates and linear towers (:func:`stacked_mmoe`).

With hundreds of tasks (617 ToxCast assays) a shared-bottom network spends most of its
step in per-head overhead: one small ``Linear`` forward and backward per task.  When
every head is a plain ``nn.Linear`` (or a one-layer :class:`MLP`) reading the same
features, stacking their weights row-wise gives all outputs in one ``F.linear``; each
head keeps its own parameters, so the architecture's parameter partition, per-task
learning rates and checkpoints are unchanged.  The outputs equal the heads' up to
rounding, but they come out of one graph node, so the trainer uses this path only for
loss weightings (which backpropagate one objective) and for Gramian methods whose
Gramian it takes from the heads' output cotangents (each task's slice of the stacked
output, :func:`polytask.deep._setup.structured_heads`), never for methods that need the
per-task gradients through the heads themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import module as _module


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks
                or module._backward_hooks or module._backward_pre_hooks)


def linear_heads(heads: Sequence[nn.Module]) -> list[nn.Linear] | None:
    """The plain linear layers that ``heads`` consist of, or None if one is not.

    A head qualifies when it is exactly an ``nn.Linear`` (not a subclass, not
    parametrised) or an ``nn.Sequential`` holding exactly one, with no hook on either;
    all must read the same width and agree on bias, dtype and device.

    Examples
    --------
    >>> from torch import nn
    >>> len(linear_heads([nn.Linear(4, 1), nn.Sequential(nn.Linear(4, 2))]))
    2
    >>> linear_heads([nn.Linear(4, 1), nn.Sequential(nn.Linear(4, 8), nn.ReLU())]) is None
    True
    """
    if len(heads) < 2 or _module._global_forward_hooks or _module._global_forward_pre_hooks:
        return None
    found: list[nn.Linear] = []
    for head in heads:
        layer = head
        if isinstance(head, nn.Sequential) and len(head) == 1:
            if _hooked(head):
                return None
            layer = head[0]
        if type(layer) is not nn.Linear or _hooked(layer):
            return None
        found.append(layer)
    first = found[0]
    for layer in found[1:]:
        if (layer.in_features != first.in_features
                or (layer.bias is None) != (first.bias is None)
                or layer.weight.dtype != first.weight.dtype
                or layer.weight.device != first.weight.device):
            return None
    return found


def stacked_linear(layers: Sequence[nn.Linear], features: Tensor) -> list[Tensor]:
    """Every layer's output on ``features``, computed as one matrix product.

    Parameters
    ----------
    layers : sequence of nn.Linear
        As returned by :func:`linear_heads`.
    features : Tensor
        ``(..., in_features)``.

    Returns
    -------
    list of Tensor
        ``layers[i](features)`` for each ``i`` (equal up to rounding), views of one
        ``(..., sum of out_features)`` tensor.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> layers = [nn.Linear(3, 1), nn.Linear(3, 2)]
    >>> z = torch.randn(5, 3)
    >>> outs = stacked_linear(layers, z)
    >>> all(torch.allclose(o, layer(z)) for o, layer in zip(outs, layers))
    True
    """
    weight = torch.cat([layer.weight for layer in layers])
    biases: list[Tensor] = [layer.bias for layer in layers if layer.bias is not None]
    bias = torch.cat(biases) if len(biases) == len(layers) else None
    out = F.linear(features, weight, bias)
    return list(out.split([layer.out_features for layer in layers], dim=-1))


def stacked_mmoe(model: nn.Module, features: object, x: Tensor) -> dict[str, Tensor] | None:
    """An MMoE's predictions with every gate and tower stacked, or None if not possible.

    Applies when ``model`` is exactly an :class:`MMoE` whose gates are its default linear
    gates and whose towers are plain linear layers with the same output width, and
    ``features`` is what its ``encode`` returned with 3-D stacked expert outputs
    ``(batch, n_experts, width)``.  Then the gate logits of all tasks are one matrix
    product, the mixtures one batched product and the towers one contraction; the
    values equal :meth:`MMoE.decode` up to rounding.

    Parameters
    ----------
    model : nn.Module
        The model whose ``encode(x)`` gave ``features``.
    features : Tensor or tuple of Tensor
        ``model.encode(x)``.
    x : Tensor
        The batch.

    Returns
    -------
    dict of str to Tensor or None
        ``{task: (batch, out_features)}``, or None when the fast path does not apply
        (the caller then uses ``model.decode``, which also raises the errors).
    """
    from ._mixture import LinearGate
    from ._mmoe import MMoE

    if type(model) is not MMoE:
        return None
    if model.stem is None:
        stacked, gate_input = features, x
    elif isinstance(features, tuple) and len(features) == 2:
        stacked, gate_input = features
    else:
        return None
    towers = linear_heads(list(model.towers))
    if any(type(g) is not LinearGate or _hooked(g) for g in model.gates):
        return None
    gates = linear_heads([cast(LinearGate, g).linear for g in model.gates])
    if towers is None or gates is None or not isinstance(stacked, Tensor) \
            or not isinstance(gate_input, Tensor) or stacked.ndim != 3 \
            or len({t.out_features for t in towers}) != 1 \
            or stacked.shape[2] != towers[0].in_features:
        return None
    flat = gate_input.reshape(gate_input.shape[0], -1)
    n_tasks, n_experts = len(gates), stacked.shape[1]
    if flat.shape[1] != gates[0].in_features or gates[0].out_features != n_experts:
        return None
    logits = torch.cat(stacked_linear(gates, flat), dim=1)
    weights = torch.softmax(logits.reshape(-1, n_tasks, n_experts), dim=2)
    mixed = torch.bmm(weights, stacked)  # (batch, tasks, width)
    width, k = stacked.shape[2], towers[0].out_features
    tower_w = torch.stack([t.weight for t in towers])  # (tasks, k, width)
    out = torch.einsum("btw,tkw->btk", mixed, tower_w.reshape(n_tasks, k, width))
    biases: list[Tensor] = [t.bias for t in towers if t.bias is not None]
    if len(biases) == n_tasks:
        out = out + torch.stack(biases)
    return {name: out[:, i] for i, name in enumerate(model.task_names)}
