"""Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._base import LossWeighting, _check_real

__all__ = ["UncertaintyWeighting"]


class UncertaintyWeighting(LossWeighting):
    """Uncertainty weighting (UW): learn one log-variance per task with the model.

    With learnable ``s_i = log σ_i²`` the objective is

    .. math:: \\mathcal{L}(\\theta, s) = \\sum_{i=1}^{m} \\left( e^{-s_i} L_i(\\theta)
              + s_i \\right), \\qquad w_i = e^{-s_i}.

    For fixed losses it is minimised at ``s_i = log L_i`` (the derivative in ``s_i`` is
    ``1 − e^{−s_i} L_i``), so a task with a large loss gets a small weight.

    Kendall et al. write a regression task as ``L_i / (2σ_i²) + log σ_i`` (Gaussian
    likelihood) and a classification task as ``L_i / σ_i² + log σ_i`` (scaled softmax).
    This class uses the same form for every task: twice the regression objective (same
    optimum ``s_i = log L_i``; the model gradient is scaled by 2, which the learning rate
    absorbs); for classification it adds ``s_i / 2`` to Kendall's form, which moves the
    optimum from ``log(2 L_i)`` to ``log L_i``. The form is the one used in most
    implementations and keeps every task's regulariser identical.

    The ``s_i`` are an ``nn.Parameter``: **pass** ``weighting.parameters()`` **to the
    model's optimizer**. ``update`` does nothing.

    Parameters
    ----------
    tasks : int or sequence of str
        The number of tasks, or their names in the order of the loss vector.
    init_log_variance : float, default=0.0
        Initial value of every ``s_i`` (0 gives initial weights 1).

    Attributes
    ----------
    log_variances : nn.Parameter of shape (n_tasks,)
        The learnable ``s_i = log σ_i²``.

    References
    ----------
    A. Kendall, Y. Gal and R. Cipolla, "Multi-task learning using uncertainty to weigh
    losses for scene geometry and semantics", CVPR 2018.

    Examples
    --------
    >>> import torch
    >>> uw = UncertaintyWeighting(2)
    >>> total = uw(torch.tensor([1.0, 3.0]))      # e^0·1 + 0 + e^0·3 + 0
    >>> float(total.detach())
    4.0
    >>> total.backward()
    >>> uw.log_variances.grad.tolist()            # 1 − e^{−s_i} L_i
    [0.0, -2.0]
    """

    log_variances: nn.Parameter

    def __init__(self, tasks: int | Sequence[str], *, init_log_variance: float = 0.0) -> None:
        super().__init__(tasks)
        self.init_log_variance = _check_real("init_log_variance", init_log_variance)
        self.log_variances = nn.Parameter(torch.full((self.n_tasks,), self.init_log_variance))

    def _weights(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        return torch.exp(-self.log_variances).to(losses)

    def _objective(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        s = self.log_variances.to(losses.dtype)
        return (torch.exp(-s) * losses + s).sum()

    def reset(self) -> None:
        """Set every log-variance back to ``init_log_variance``."""
        with torch.no_grad():
            self.log_variances.fill_(self.init_log_variance)

    def extra_repr(self) -> str:
        return f"n_tasks={self.n_tasks}, init_log_variance={self.init_log_variance}"
