"""Per-task gradients as Gramian-ready blocks (private core of :mod:`polytask.deep.backward`).

The engine never flattens the Jacobian ``J`` of shape ``(m, P)`` unless asked to.  It
keeps one block per parameter (or per linear layer) and forms

.. math:: G = J J^\\top = \\sum_b J_b J_b^\\top, \\qquad d = J^\\top w = (J_b^\\top w)_b .

For a linear layer ``out = a Wᵀ + b`` with input ``a`` of shape ``(r, n_in)`` the block
is never built from autograd's weight gradients: autograd only returns the per-task
output gradients ``δ_i`` of shape ``(r, n_out)``, and

.. math:: \\langle \\nabla_W L_i, \\nabla_W L_j \\rangle = \\langle \\delta_i^\\top a,
   \\delta_j^\\top a \\rangle = \\langle \\delta_i, (a a^\\top) \\delta_j \\rangle ,

so the Gramian costs ``m r n_in n_out`` (explicit blocks ``aᵀ δ_i``) or ``m r² n_out``
(through the kernel ``a aᵀ``, cheaper when ``r < n_in``), whichever is smaller; the
direction is ``(Σ_i w_i δ_i)ᵀ a``.  The bias is an input column of ones: it adds
``1 1ᵀ`` to the kernel (a row of ones to ``aᵀ``), so it costs nothing extra.  The kernel
form is the "ghost norm" identity of Goodfellow (2015).

References
----------
.. [1] I. Goodfellow, "Efficient per-example gradient computations", arXiv:1510.01799,
   2015.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ._graph import LinearLayer, linear_layers, task_roots
from ._passes import (
    STRATEGIES,
    Strategy,
    Target,
    differentiate,
    differentiate_features,
    feature_gradients,
)

__all__ = ["STRATEGIES", "Strategy", "TaskBlocks", "task_blocks"]

_HALF = (torch.float16, torch.bfloat16)


@dataclass
class TaskBlocks:
    """Per-task gradients of the shared parameters, kept blockwise.

    ``layers[k]`` pairs a :class:`LinearLayer` with its per-task output gradients
    ``δ`` of shape ``(m, r, n_out)``; ``params[k]`` pairs any other shared parameter with
    its per-task gradients ``(m, *shape)``.  ``sums`` holds the *summed* gradients of the
    extra parameters differentiated in the same pass (the task-specific ones).
    """

    n_tasks: int
    layers: list[tuple[LinearLayer, Tensor]] = field(default_factory=list)
    params: list[tuple[Tensor, Tensor]] = field(default_factory=list)
    sums: list[tuple[Tensor, Tensor]] = field(default_factory=list)
    _explicit: dict[int, Tensor] = field(default_factory=dict, repr=False)

    def gramian(self) -> Tensor:
        """``G = J Jᵀ`` of shape ``(m, m)``, accumulated block by block."""
        m = self.n_tasks
        gram: Tensor | None = None
        for k, (layer, delta) in enumerate(self.layers):
            part, blocks = _linear_gramian(layer.inputs, delta, layer.bias is not None)
            if blocks is not None:
                self._explicit[k] = blocks  # reused by direction()
            gram = part if gram is None else gram + part
        for _, block in self.params:
            flat = block.reshape(m, -1)
            flat = flat.float() if flat.dtype in _HALF else flat
            part = flat @ flat.T
            gram = part if gram is None else gram + part
        if gram is None:
            raise ValueError("no shared parameter received a gradient from the losses.")
        return (gram + gram.T) / 2

    def direction(self, weights: Tensor) -> list[tuple[Tensor, Tensor]]:
        """``(parameter, Jᵀ w reshaped like it)`` for every shared parameter."""
        out: list[tuple[Tensor, Tensor]] = []
        for k, (layer, delta) in enumerate(self.layers):
            w = weights.to(delta.dtype)
            blocks = self._explicit.get(k)
            if blocks is not None:  # (m, n_in (+1), n_out): transposed gradients
                both = torch.tensordot(w.to(blocks.dtype), blocks, dims=1)
                n_in = layer.weight.shape[1]
                out.append((layer.weight, both[:n_in].T))
                if layer.bias is not None:
                    out.append((layer.bias, both[n_in]))
                continue
            combined = torch.tensordot(w, delta, dims=1)  # (r, n_out)
            out.append((layer.weight, combined.T @ layer.inputs.to(delta.dtype)))
            if layer.bias is not None:
                out.append((layer.bias, combined.sum(0)))
        for param, block in self.params:
            out.append((param, torch.tensordot(weights.to(block.dtype), block, dims=1)))
        return out

    def jacobian(self) -> Tensor:
        """The explicit Jacobian ``(m, P)`` in the order of :meth:`direction`."""
        pieces: list[Tensor] = []
        m = self.n_tasks
        for layer, delta in self.layers:
            blocks = _linear_blocks(layer.inputs, delta, layer.bias is not None)
            n_in = layer.weight.shape[1]
            pieces.append(blocks[:, :n_in].transpose(1, 2).reshape(m, -1))
            if layer.bias is not None:
                pieces.append(blocks[:, n_in])
        pieces.extend(block.reshape(m, -1) for _, block in self.params)
        return torch.cat(pieces, dim=1)

    def parameters(self) -> list[Tensor]:
        """The shared parameters in the order of :meth:`direction` and :meth:`jacobian`."""
        out: list[Tensor] = []
        for layer, _ in self.layers:
            out.append(layer.weight)
            if layer.bias is not None:
                out.append(layer.bias)
        out.extend(p for p, _ in self.params)
        return out


def _linear_blocks(inputs: Tensor, delta: Tensor, has_bias: bool) -> Tensor:
    """Transposed per-task gradients ``[a, 1]ᵀ δ_i`` of shape ``(m, n_in (+1), n_out)``.

    The last row is the bias gradient when ``has_bias``.  ``bmm`` with the input
    broadcast over tasks reads ``δ`` in place (``matmul`` of a 2-D and a 3-D tensor would
    copy ``δ`` to fold it into one product).
    """
    m = delta.shape[0]
    a = inputs.to(delta.dtype)
    if has_bias:
        a = torch.cat([a, a.new_ones((a.shape[0], 1))], dim=1)
    a_t = a.T
    return torch.bmm(a_t.expand(m, *a_t.shape), delta)


def _linear_gramian(inputs: Tensor, delta: Tensor, has_bias: bool) -> tuple[Tensor, Tensor | None]:
    """Gramian of one linear layer from ``a`` (r, n_in) and ``δ`` (m, r, n_out).

    The bias acts as an input column of ones, so it adds ``1 1ᵀ`` to the kernel (or a
    row of ones to ``aᵀ``).  Returns the ``(m, m)`` part and, when the explicit form was
    used, the blocks of :func:`_linear_blocks` (reused for the direction).
    """
    if delta.dtype in _HALF:  # accumulate low-precision gradients in float32
        delta = delta.float()
    m, rows, _ = delta.shape
    n_in = inputs.shape[1]
    if rows < n_in:  # kernel form <δ_i, (a aᵀ + 1 1ᵀ) δ_j>: cost m r² n_out
        a = inputs.to(delta.dtype)
        kernel = a @ a.T
        if has_bias:
            kernel += 1.0
        mixed = torch.bmm(kernel.expand(m, rows, rows), delta)  # (m, r, n_out)
        return delta.reshape(m, -1) @ mixed.reshape(m, -1).T, None
    blocks = _linear_blocks(inputs, delta, has_bias)  # cost m r n_in n_out
    flat = blocks.reshape(m, -1)
    return flat @ flat.T, blocks


def task_blocks(
    losses: Tensor,
    shared: Sequence[Tensor],
    extra: Sequence[Tensor] = (),
    *,
    features: Sequence[Tensor] | None = None,
    strategy: str = "auto",
    retain_graph: bool = False,
    exploit_linear: bool = True,
) -> TaskBlocks:
    """Compute :class:`TaskBlocks` for ``losses`` (m,) w.r.t. the ``shared`` parameters.

    ``extra`` parameters (the task-specific ones) are differentiated in the same pass and
    only their per-task sum is kept.  Without ``features``, each task's backward runs
    from its own root edge when ``losses`` was stacked (``strategy="auto"``), else one
    batched pass runs.  With ``features`` (the representation the heads read), the
    per-task cotangents at the features are recorded first (one pass through the
    heads), then the shared part runs one batched vector-Jacobian product.
    """
    m = losses.shape[0]
    if features is None:
        starts = [losses.grad_fn]
    else:
        starts = [f.grad_fn for f in features]
    layers: list[LinearLayer] = []
    if exploit_linear:
        layers = linear_layers([n for n in starts if n is not None], shared)
    in_layer = {id(layer.weight) for layer in layers}
    in_layer |= {id(layer.bias) for layer in layers if layer.bias is not None}
    others = [p for p in shared if id(p) not in in_layer]
    targets: list[Target] = [layer.edge for layer in layers]
    targets += others
    blocks = TaskBlocks(m)
    if features is None:
        roots = task_roots(losses) if strategy != "batched" else None
        grads = differentiate(losses, roots, [*targets, *extra], strategy, retain_graph)
        extra_grads = grads[len(targets):]
        blocks.sums = [(p, g.sum(0)) for p, g in zip(extra, extra_grads, strict=True)
                       if g is not None]
    else:
        cotangents, blocks.sums = feature_gradients(losses, features, extra, strategy=strategy)
        grads = differentiate_features(features, cotangents, targets, strategy, retain_graph)
    for layer, delta in zip(layers, grads[: len(layers)], strict=False):
        if delta is not None:
            blocks.layers.append((layer, delta))
    for param, block in zip(others, grads[len(layers): len(targets)], strict=True):
        if block is not None:
            blocks.params.append((param, block))
    return blocks
