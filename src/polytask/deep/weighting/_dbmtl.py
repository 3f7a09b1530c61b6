"""DB-MTL: dual-balancing multi-task learning (Lin et al., 2023)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._base import LossWeighting, _check_real

__all__ = ["DBMTL", "dbmtl_scales"]


def dbmtl_scales(grad_norms: Tensor, eps: float = 1e-8) -> Tensor:
    """DB-MTL's gradient-magnitude balancing: scale every gradient to the largest norm.

    .. math:: \\alpha_i = \\frac{\\max_j n_j}{n_i + \\epsilon},

    so that the scaled gradients ``α_i g_i`` all have the norm ``max_j n_j`` (up to
    ``ε``).

    Parameters
    ----------
    grad_norms : Tensor of shape (n_tasks,)
        Non-negative gradient norms ``n_i`` (or their moving averages).
    eps : float, default=1e-8
        Guards the division for a task with a zero gradient.

    Returns
    -------
    Tensor of shape (n_tasks,)
        The scales ``α_i >= 1`` (up to ``ε``).

    References
    ----------
    B. Lin, W. Jiang, F. Ye, Y. Zhang, P. Chen, Y.-C. Chen, S. Liu and J. T. Kwok,
    "Dual-balancing for multi-task learning", arXiv:2308.12029, 2023.

    Examples
    --------
    >>> import torch
    >>> dbmtl_scales(torch.tensor([1.0, 4.0]), eps=0.0).tolist()
    [4.0, 1.0]
    """
    return grad_norms.max() / (grad_norms + eps)


class DBMTL(LossWeighting):
    """DB-MTL: balance the loss scales (log transform) and the gradient magnitudes.

    *Loss-scale balancing* trains on ``log L_i`` instead of ``L_i``. *Gradient-magnitude
    balancing* rescales each task's log-loss gradient ``g_i = ∇ log L_i = ∇L_i / L_i``
    to the largest one. With ``n̂_i`` a moving average of ``‖g_i‖``,

    .. math:: \\mathcal{L} = \\sum_i \\alpha_i \\log L_i, \\qquad
              \\alpha_i = \\frac{\\max_j \\hat n_j}{\\hat n_i + \\epsilon}, \\qquad
              \\hat n_{t,i} = \\beta_t \\hat n_{t-1,i} + (1 - \\beta_t) \\|g_{t,i}\\|,
              \\quad \\beta_t = \\beta \\, t^{-\\sigma},

    with ``α`` held constant, so the model gradient is ``Σ_i α_i g_i`` and
    :meth:`weights` returns ``w_i = α_i / L_i`` (the coefficients of ``∇L_i``). With
    ``beta=0`` the scaled gradients ``α_i g_i`` have exactly equal norms, the defining
    property.

    The norms come from the Gramian of the *raw* task losses passed as ``gramian=``
    (``requires_grad_norms = True``, the trainer's gradient engine or
    :func:`task_gramian` provides it): ``‖g_i‖ = sqrt(G[i, i]) / L_i``. ``forward``
    uses the moving average including the current step without storing it; ``update``
    commits it.

    The paper keeps the moving average of the gradient *vectors*, ``ĝ_i``, and steps
    along ``max_j ‖ĝ_j‖ Σ_i ĝ_i / ‖ĝ_i‖``; that update carries gradient momentum, which
    a loss weighting (a scalar objective) cannot express. This class smooths the
    gradient *norms* instead and uses the current gradients; with ``beta=0`` both
    coincide.

    Parameters
    ----------
    tasks : int or sequence of str
        The number of tasks, or their names in the order of the loss vector.
    beta : float, default=0.9
        Moving-average coefficient ``β`` in ``[0, 1)``.
    beta_sigma : float, default=0.5
        Decay exponent ``σ >= 0`` of ``β_t = β t^{−σ}`` (``0`` keeps ``β`` constant).
    eps : float, default=1e-8
        Guards the division in :func:`dbmtl_scales`.

    Attributes
    ----------
    norm_ema : Tensor of shape (n_tasks,)
        The moving average ``n̂`` of the log-loss gradient norms (buffer).
    num_updates : Tensor
        Number of ``update`` calls ``t`` (0-dim int64 buffer).

    References
    ----------
    B. Lin, W. Jiang, F. Ye, Y. Zhang, P. Chen, Y.-C. Chen, S. Liu and J. T. Kwok,
    "Dual-balancing for multi-task learning", arXiv:2308.12029, 2023.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.weighting import task_gramian
    >>> theta = torch.tensor([1.0, 1.0], requires_grad=True)
    >>> losses = torch.stack([theta[0] ** 2, 100 * theta[1]])   # ∇log L: (2, 0), (0, 1)
    >>> method = DBMTL(2, beta=0.0)
    >>> gram = task_gramian(losses, [theta])
    >>> method(losses, gramian=gram).backward()
    >>> [round(g, 4) for g in theta.grad.tolist()]     # both scaled to norm 2
    [2.0, 2.0]
    """

    requires_grad_norms = True

    norm_ema: Tensor
    num_updates: Tensor

    def __init__(
        self,
        tasks: int | Sequence[str],
        *,
        beta: float = 0.9,
        beta_sigma: float = 0.5,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(tasks)
        self.beta = _check_real("beta", beta, low=0.0, high=1.0, high_open=True)
        self.beta_sigma = _check_real("beta_sigma", beta_sigma, low=0.0)
        self.eps = _check_real("eps", eps, low=0.0)
        self.register_buffer("norm_ema", torch.zeros(self.n_tasks))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def _smoothed_norms(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        """The moving average of the log-loss gradient norms, including this step."""
        assert gramian is not None  # checked by the public methods
        self._check_positive_losses(losses)
        dtype = self.norm_ema.dtype
        norms = gramian.diagonal().clamp_min(0).sqrt().to(dtype) / losses.to(dtype)
        t = int(self.num_updates) + 1
        beta_t = self.beta / t**self.beta_sigma
        return beta_t * self.norm_ema + (1.0 - beta_t) * norms

    def _scales(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        return dbmtl_scales(self._smoothed_norms(losses, gramian), self.eps).to(losses)

    def _weights(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        return self._scales(losses, gramian) / losses

    def _objective(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        alpha = self._scales(losses.detach(), gramian).detach()
        return (alpha * torch.log(losses)).sum()

    def _update(self, losses: Tensor, gramian: Tensor | None, losses_after: Tensor | None) -> None:
        self.norm_ema.copy_(self._smoothed_norms(losses, gramian))
        self.num_updates += 1

    def reset(self) -> None:
        """Clear the moving average."""
        self.norm_ema.zero_()
        self.num_updates.zero_()

    def extra_repr(self) -> str:
        return (
            f"n_tasks={self.n_tasks}, beta={self.beta}, beta_sigma={self.beta_sigma}, "
            f"eps={self.eps}"
        )
