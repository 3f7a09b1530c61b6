"""Helpers of :func:`polytask.deep.backward.mtl_backward` (private)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from ._jacobian import task_blocks
from ._methods import ResolvedMethod
from ._passes import feature_gradients


def gradient_cosine(gramian: Tensor) -> Tensor:
    """Cosine similarities of the task gradients from their Gramian.

    ``C_ij = G_ij / sqrt(G_ii G_jj)``; a task whose gradient is zero has cosine 0 with
    every task (and 1 with itself), never NaN.

    Parameters
    ----------
    gramian : Tensor of shape (n_tasks, n_tasks)
        ``G = J Jᵀ``.

    Returns
    -------
    Tensor of shape (n_tasks, n_tasks)
        Symmetric, unit diagonal, entries in ``[-1, 1]``.

    Raises
    ------
    ValueError
        If ``gramian`` is not a square 2-D tensor.

    Examples
    --------
    >>> import torch
    >>> gradient_cosine(torch.tensor([[4.0, -2.0], [-2.0, 1.0]])).tolist()
    [[1.0, -1.0], [-1.0, 1.0]]
    """
    if not isinstance(gramian, Tensor) or gramian.ndim != 2 or gramian.shape[0] != gramian.shape[1]:
        shape = tuple(gramian.shape) if isinstance(gramian, Tensor) else type(gramian).__name__
        raise ValueError(f"gramian must be a square (n_tasks, n_tasks) tensor, got {shape}.")
    norms = gramian.diagonal().clamp_min(0).sqrt()
    scale = torch.outer(norms, norms)
    cosine = torch.where(scale > 0, gramian / torch.where(scale > 0, scale, 1), 0)
    cosine = cosine.clamp(-1, 1)
    cosine.fill_diagonal_(1)
    return cosine


def grad_like(param: Tensor, grad: Tensor) -> Tensor:
    """``grad`` shaped, typed and laid out like ``param`` (never a view).

    PyTorch's gradient layout contract: ``.grad`` has the strides of its parameter, as
    ``Tensor.backward`` guarantees.  Fused optimizers (``Adam(fused=True)``) read
    parameter and gradient memory in the same order, so a transposed gradient (the
    blockwise Gramian engine's ``(aᵀδ)ᵀ``) would silently update the wrong entries.
    """
    grad = grad.reshape(param.shape).to(param.dtype)
    if grad._base is None and grad.stride() == param.stride():
        return grad
    return torch.empty_like(param).copy_(grad)


def accumulate(pairs: Iterable[tuple[Tensor, Tensor]]) -> None:
    """Add gradients to ``.grad`` like ``Tensor.backward`` does (same layout contract)."""
    with torch.no_grad():
        for param, grad in pairs:
            if param.grad is None:
                param.grad = grad_like(param, grad)
            else:
                param.grad.add_(grad.reshape(param.shape).to(param.dtype))


def feature_gramian(jacobians: Sequence[Tensor], m: int) -> Tensor:
    """``Σ_f J_f J_fᵀ`` over the feature tensors (low precision accumulated in float32)."""
    gram: Tensor | None = None
    for j in jacobians:
        flat = j.reshape(m, -1)
        if flat.dtype in (torch.float16, torch.bfloat16):
            flat = flat.float()
        part = flat @ flat.T
        gram = part if gram is None else gram + part
    assert gram is not None  # features is non-empty
    return (gram + gram.T) / 2


def split_vector(vector: Tensor, like: Sequence[Tensor]) -> list[tuple[Tensor, Tensor]]:
    if not isinstance(vector, Tensor) or vector.ndim != 1:
        raise ValueError("the aggregator must return a 1-D update vector.")
    total = sum(t.numel() for t in like)
    if vector.numel() != total:
        raise ValueError(f"the aggregator returned {vector.numel()} values; expected {total}.")
    out, start = [], 0
    for t in like:
        out.append((t, vector[start:start + t.numel()].reshape(t.shape)))
        start += t.numel()
    return out


def loss_weighting_backward(
    losses: Tensor,
    shared: list[Tensor],
    heads: list[Tensor],
    resolved: ResolvedMethod,
    feats: list[Tensor] | None,
    mode: str,
    unit: bool,
    strategy: str,
    retain_graph: bool,
    return_gramian: bool,
) -> tuple[Tensor, Tensor | None]:
    """A loss weighting: optional Gramian, then one backward of its objective.

    Returns the weights and the Gramian (``None`` when not computed).
    """
    weighting = resolved.fn
    gram: Tensor | None = None
    if weighting.requires_grad_norms or return_gramian:
        if mode == "parameter":
            gram = task_blocks(losses, shared, features=feats, strategy=strategy,
                               retain_graph=True).gramian()
        else:
            assert feats is not None  # required in representation mode
            jacobians, _ = feature_gradients(losses, feats, strategy=strategy)
            gram = feature_gramian(jacobians, losses.shape[0])
        gram = gram.detach()
    weights = weighting.weights(losses, gramian=gram)
    objective = weighting(losses, gramian=gram)
    if unit and heads:
        owned = [*shared, *(p for p in weighting.parameters() if p.requires_grad)]
        torch.autograd.backward(objective, inputs=owned, retain_graph=True)
        torch.autograd.backward(losses.sum(), inputs=heads, retain_graph=retain_graph)
    else:
        objective.backward(retain_graph=retain_graph)
    return weights, gram
