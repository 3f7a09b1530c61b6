"""FAMO: fast adaptive multitask optimization (Liu, Feng, Stone & Liu, NeurIPS 2023)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from ._base import LossWeighting, _check_real

__all__ = ["FAMO", "famo_logit_gradient"]

_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


def famo_logit_gradient(logits: Tensor, losses: Tensor, losses_after: Tensor) -> Tensor:
    """FAMO's logit direction ``δ`` from the change of the log losses over one step.

    With ``z = softmax(ξ)`` and the log-loss decrease ``Δ_i = log ℓ_i(θ_t) −
    log ℓ_i(θ_{t+1})``, ``δ = (∂z/∂ξ)ᵀ Δ``, i.e. ``δ_j = z_j (Δ_j − Σ_i z_i Δ_i)``.
    Descending along ``δ`` lowers the weight of the tasks whose losses fell faster than
    the weighted average.

    Parameters
    ----------
    logits : Tensor of shape (n_tasks,)
        The logits ``ξ``.
    losses, losses_after : Tensor of shape (n_tasks,)
        Positive task losses before and after the model step, on the same batch.

    Returns
    -------
    Tensor of shape (n_tasks,)
        ``δ``; it sums to zero.

    References
    ----------
    B. Liu, Y. Feng, P. Stone and Q. Liu, "FAMO: fast adaptive multitask
    optimization", NeurIPS 2023 (Algorithm 1).

    Examples
    --------
    >>> import torch
    >>> d = famo_logit_gradient(torch.zeros(2), torch.tensor([1.0, 1.0]),
    ...                         torch.tensor([0.5, 1.0]))       # task 0 halved
    >>> bool(d[0] > 0 > d[1]), round(float(d.sum()), 6)
    (True, 0.0)
    """
    z = torch.softmax(logits, dim=0)
    decrease = torch.log(losses) - torch.log(losses_after)
    return z * (decrease - (z * decrease).sum())


class FAMO(LossWeighting):
    """FAMO: decrease every task loss at the same relative rate, with O(1) overhead.

    With logits ``ξ`` and weights ``z = softmax(ξ)`` (initially uniform), the model
    objective is

    .. math:: \\mathcal{L} = c \\sum_i z_i \\log L_i, \\qquad
              c = \\Big( \\sum_i \\frac{z_i}{L_i} \\Big)^{-1},

    with ``z`` and ``c`` held constant, so the model gradient is the convex combination
    ``Σ_i w_i ∇L_i`` with ``w_i = c z_i / L_i`` (these are what :meth:`weights`
    returns; they sum to 1). After the optimizer step, ``update(losses,
    losses_after=...)`` moves the logits with the change of the log losses on the same
    batch (:func:`famo_logit_gradient`) and the decay ``γ``:

    .. math:: \\xi \\leftarrow \\xi - \\beta \\, (\\delta + \\gamma \\xi), \\qquad
              \\delta = (\\partial z / \\partial \\xi)^{\\top}
              (\\log L(\\theta_t) - \\log L(\\theta_{t+1})).

    ``logit_optimizer="sgd"`` is exactly this step (the paper's Algorithm 1);
    ``"adam"`` (default) feeds the same gradient ``δ + γξ`` to Adam (β = (0.9, 0.999),
    ε = 1e-8), as in the paper's practical version and the authors' code, where
    ``lr = 0.025`` and ``γ = 1e-3`` are tuned for Adam. Every ``L_i`` above is the loss
    shifted by ``eps`` (``log(L_i + eps)``, as in the authors' code), so a loss that
    rounds to exactly 0 (a confident, correct float32 binary cross-entropy on a task
    with two labels in the batch) does not stop training; losses must be ``>= 0``
    (``> 0`` with ``eps=0``).

    Parameters
    ----------
    tasks : int or sequence of str
        The number of tasks, or their names in the order of the loss vector.
    gamma : float, default=1e-3
        The logit decay ``γ >= 0`` (pulls the weights back to uniform).
    lr : float, default=0.025
        The logit step size ``β > 0``.
    logit_optimizer : {"adam", "sgd"}, default="adam"
        How the logits follow their gradient ``δ + γξ``.
    eps : float, default=1e-8
        The shift ``>= 0`` added to every loss before its logarithm and ratio.

    Attributes
    ----------
    logits : Tensor of shape (n_tasks,)
        ``ξ`` (buffer; not a parameter of the model's optimizer).
    exp_avg, exp_avg_sq : Tensor of shape (n_tasks,)
        Adam's moment estimates (buffers; unused with ``"sgd"``).
    num_updates : Tensor
        Number of ``update`` calls (0-dim int64 buffer).

    References
    ----------
    B. Liu, Y. Feng, P. Stone and Q. Liu, "FAMO: fast adaptive multitask
    optimization", NeurIPS 2023.

    Examples
    --------
    >>> import torch
    >>> famo = FAMO(2, logit_optimizer="sgd", lr=1.0)
    >>> [round(w, 4) for w in famo.weights(torch.tensor([1.0, 4.0])).tolist()]  # ∝ z_i / L_i
    [0.8, 0.2]
    >>> famo.update(torch.tensor([1.0, 4.0]), losses_after=torch.tensor([0.5, 4.0]))
    >>> z = torch.softmax(famo.logits, dim=0)              # task 0 fell: less weight
    >>> bool(z[0] < 0.5 < z[1])
    True
    """

    requires_losses_after = True

    logits: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor
    num_updates: Tensor

    def __init__(
        self,
        tasks: int | Sequence[str],
        *,
        gamma: float = 1e-3,
        lr: float = 0.025,
        logit_optimizer: Literal["adam", "sgd"] = "adam",
        eps: float = 1e-8,
    ) -> None:
        super().__init__(tasks)
        self.gamma = _check_real("gamma", gamma, low=0.0)
        self.lr = _check_real("lr", lr, low=0.0, low_open=True)
        if logit_optimizer not in ("adam", "sgd"):
            raise ValueError(f"logit_optimizer must be 'adam' or 'sgd', got {logit_optimizer!r}")
        self.logit_optimizer = logit_optimizer
        self.eps = _check_real("eps", eps, low=0.0)
        m = self.n_tasks
        self.register_buffer("logits", torch.zeros(m))
        self.register_buffer("exp_avg", torch.zeros(m))
        self.register_buffer("exp_avg_sq", torch.zeros(m))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def _normalised(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(z, c)`` for positive, detached losses."""
        z = torch.softmax(self.logits, dim=0).to(losses)
        c = 1.0 / (z / losses).sum()
        return z, c

    def _shifted(self, losses: Tensor, name: str = "losses") -> Tensor:
        """``losses + eps`` after checking that they are >= 0 (> 0 when ``eps == 0``)."""
        self._check_positive_losses(losses, name, allow_zero=self.eps > 0)
        return losses + self.eps

    def _weights(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        losses = self._shifted(losses)
        z, c = self._normalised(losses)
        return c * z / losses

    def _objective(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        losses = self._shifted(losses)
        z, c = self._normalised(losses.detach())
        return c * (z * torch.log(losses)).sum()

    def _update(self, losses: Tensor, gramian: Tensor | None, losses_after: Tensor | None) -> None:
        assert losses_after is not None  # checked by update (requires_losses_after)
        losses = self._shifted(losses)
        losses_after = self._shifted(losses_after, "losses_after")
        dtype = self.logits.dtype
        delta = famo_logit_gradient(self.logits, losses.to(dtype), losses_after.to(dtype))
        grad = delta + self.gamma * self.logits
        self.num_updates += 1
        if self.logit_optimizer == "sgd":
            self.logits.sub_(self.lr * grad)
            return
        b1, b2 = _ADAM_BETAS
        k = int(self.num_updates)
        self.exp_avg.mul_(b1).add_(grad, alpha=1 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        m_hat = self.exp_avg / (1 - b1**k)
        v_hat = self.exp_avg_sq / (1 - b2**k)
        self.logits.sub_(self.lr * m_hat / (v_hat.sqrt() + _ADAM_EPS))

    def reset(self) -> None:
        """Back to uniform weights with a fresh logit optimizer."""
        self.logits.zero_()
        self.exp_avg.zero_()
        self.exp_avg_sq.zero_()
        self.num_updates.zero_()

    def extra_repr(self) -> str:
        return (
            f"n_tasks={self.n_tasks}, gamma={self.gamma}, lr={self.lr}, "
            f"logit_optimizer={self.logit_optimizer!r}, eps={self.eps:g}"
        )
