"""The task Gramian at a representation read by linear heads, without the Jacobian.

When task ``t``'s prediction is ``p_t = z W_tᵀ + b_t`` (a plain linear head on the
shared representation ``z``), its gradient with respect to sample ``i``'s
representation is ``a_t,i W_t``, with ``a_t,i = ∂L_t/∂p_t,i`` the cotangent at the
head's output. The representation Gramian is then

    G_st = Σ_i a_s,i (W_s W_tᵀ) a_t,iᵀ,

that is, with every head's outputs side by side (``A``: samples × all outputs,
``W``: all outputs × width), the block sums of ``(AᵀA) ∘ (W Wᵀ)``. For ``m`` tasks with
one output each, ``n`` samples and width ``d``, this costs ``m² (n + d)`` instead of
the ``m² n d`` of ``J Jᵀ`` from the explicit ``(m, n d)`` Jacobian, and never stores
that Jacobian: 617 ToxCast assays at batch 128 and width 256 are 20 M Jacobian entries
and 12 GFLOP per step the explicit way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def linear_head_gramian(cotangents: Sequence[Tensor | None], weights: Sequence[Tensor]) -> Tensor:
    """``G = J Jᵀ`` of the representation gradients of linear heads.

    Parameters
    ----------
    cotangents : sequence of Tensor or None
        ``∂L_t/∂p_t`` of every task, shaped like its prediction ``(..., k_t)``; None for
        a task whose loss does not depend on its prediction (a zero row of ``J``).
    weights : sequence of Tensor
        Every head's weight ``W_t`` of shape ``(k_t, d)``.

    Returns
    -------
    Tensor of shape (n_tasks, n_tasks)
        Symmetric, in float32 or wider.

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(5, 3, requires_grad=True)
    >>> W = [torch.randn(1, 3), torch.randn(2, 3)]
    >>> preds = [z @ w.T for w in W]
    >>> losses = [preds[0].square().sum(), preds[1].sin().sum()]
    >>> a = [torch.autograd.grad(l, p, retain_graph=True)[0] for l, p in zip(losses, preds)]
    >>> J = torch.stack([torch.autograd.grad(l, z, retain_graph=True)[0].flatten()
    ...                  for l in losses])
    >>> torch.allclose(linear_head_gramian(a, W), J @ J.T, atol=1e-5)
    True
    """
    if len(cotangents) != len(weights):
        raise ValueError(f"got {len(cotangents)} cotangents for {len(weights)} heads.")
    dtype = torch.promote_types(weights[0].dtype, torch.float32)
    cols = []
    for a, w in zip(cotangents, weights, strict=True):
        if a is not None and a.shape[-1] != w.shape[0]:
            raise ValueError(f"a cotangent of width {a.shape[-1]} for a head of {w.shape[0]} "
                             "outputs.")
        cols.append(None if a is None else a.reshape(-1, w.shape[0]).to(dtype))
    n = next((c.shape[0] for c in cols if c is not None), 0)
    W = torch.cat([w.detach().to(dtype) for w in weights], dim=0)
    A = torch.cat([torch.zeros(n, w.shape[0], dtype=dtype, device=W.device) if c is None
                   else c for c, w in zip(cols, weights, strict=True)], dim=1)
    full = (A.T @ A) * (W @ W.T)
    if W.shape[0] == len(weights):  # one output per head: no block sums
        return (full + full.T) / 2
    sizes = torch.tensor([w.shape[0] for w in weights], device=W.device)
    owner = torch.repeat_interleave(torch.arange(len(weights), device=W.device), sizes)
    blocks = torch.zeros(W.shape[0], len(weights), dtype=dtype, device=W.device)
    blocks[torch.arange(W.shape[0], device=W.device), owner] = 1.0
    gram = blocks.T @ full @ blocks
    return (gram + gram.T) / 2
