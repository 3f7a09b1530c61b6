"""GradNorm: gradient normalisation for adaptive loss balancing (Chen et al., ICML 2018)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._base import LossWeighting, _check_real

__all__ = ["GradNorm", "gradnorm_weight_gradient"]


def gradnorm_weight_gradient(
    weights: Tensor, grad_norms: Tensor, loss_ratios: Tensor, alpha: float
) -> Tensor:
    """Gradient of the GradNorm loss with respect to the task weights.

    With ``G_i = w_i n_i`` (``n_i = ‖∇_W L_i‖``, so ``G_i = ‖∇_W (w_i L_i)‖``), the mean
    ``Ḡ = mean_i G_i``, the inverse training rates ``r_i = L̃_i / mean_j L̃_j`` of the
    loss ratios ``L̃_i = L_i(t) / L_i(0)``, the GradNorm loss is

    .. math:: L_{grad}(w) = \\sum_i \\left| G_i(w) - \\bar G \\, r_i^{\\alpha} \\right|,

    where the target ``Ḡ r_i^α`` is held constant. Its (sub)gradient is
    ``∂L_grad/∂w_i = n_i · sign(G_i − Ḡ r_i^α)``.

    Parameters
    ----------
    weights : Tensor of shape (n_tasks,)
        The current task weights ``w``.
    grad_norms : Tensor of shape (n_tasks,)
        The gradient norms ``n_i`` of the *unweighted* task losses w.r.t. ``W``.
    loss_ratios : Tensor of shape (n_tasks,)
        ``L_i(t) / L_i(0)``, positive.
    alpha : float
        The asymmetry ``α >= 0``.

    Returns
    -------
    Tensor of shape (n_tasks,)
        ``∂L_grad / ∂w``.

    References
    ----------
    Z. Chen, V. Badrinarayanan, C.-Y. Lee and A. Rabinovich, "GradNorm: gradient
    normalization for adaptive loss balancing in deep multitask networks", ICML 2018.

    Examples
    --------
    >>> import torch
    >>> g = gradnorm_weight_gradient(torch.ones(2), torch.tensor([1.0, 3.0]),
    ...                              torch.ones(2), alpha=1.5)
    >>> g.tolist()    # G = (1, 3), target = 2: push w_0 up, w_1 down
    [-1.0, 3.0]
    """
    g = weights * grad_norms
    rates = loss_ratios / loss_ratios.mean()
    target = g.mean() * rates.pow(alpha)
    return grad_norms * torch.sign(g - target)


class GradNorm(LossWeighting):
    """GradNorm: tune the task weights so that the tasks train at similar rates.

    The model objective is ``Σ_i w_i L_i`` with the weights held constant. After each
    optimizer step, ``update`` takes one gradient step of size ``lr`` on the GradNorm
    loss (see :func:`gradnorm_weight_gradient`)

    .. math:: L_{grad} = \\sum_i \\left| w_i \\|\\nabla_W L_i\\| - \\bar G
              \\, r_i^{\\alpha} \\right|, \\qquad r_i = \\frac{L_i(t)/L_i(0)}
              {\\operatorname{mean}_j L_j(t)/L_j(0)},

    then clips the weights at ``min_weight`` and renormalises them to ``Σ_i w_i = m``.
    A task that trains slower (larger ``r_i``) gets a larger target gradient norm, hence
    a larger weight. ``L_i(0)`` are the losses of the first ``update``.

    ``W`` is the last shared layer in the paper; the trainer chooses it by the
    parameters it passes to :func:`task_gramian`. Only the diagonal of the Gramian is
    used: ``‖∇_W L_i‖ = sqrt(G[i, i])``. The paper updates ``w`` with the network's
    optimizer; here it is a plain gradient step (``lr``), so ``lr`` should be scaled to
    the size of the gradient norms.

    Parameters
    ----------
    tasks : int or sequence of str
        The number of tasks, or their names in the order of the loss vector.
    alpha : float, default=1.5
        The asymmetry ``α >= 0``: the strength of the pull towards equal training rates.
    lr : float, default=0.025
        Step size of the weight update, ``> 0``.
    min_weight : float, default=1e-4
        Floor applied before renormalising, so a weight never reaches zero or below.

    Attributes
    ----------
    task_weights : Tensor of shape (n_tasks,)
        The weights ``w`` (buffer), ones initially; ``Σ w = n_tasks`` always.
    initial_losses : Tensor of shape (n_tasks,)
        ``L_i(0)`` (buffer), set by the first ``update``.
    num_updates : Tensor
        Number of ``update`` calls (0-dim int64 buffer).

    References
    ----------
    Z. Chen, V. Badrinarayanan, C.-Y. Lee and A. Rabinovich, "GradNorm: gradient
    normalization for adaptive loss balancing in deep multitask networks", ICML 2018.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.weighting import task_gramian
    >>> W = torch.nn.Linear(3, 3)                    # the last shared layer
    >>> x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    >>> h = W(x)
    >>> losses = torch.stack([h[:, 0].pow(2).mean(), 10 * h[:, 1].pow(2).mean()])
    >>> method = GradNorm(2, alpha=1.5, lr=0.01)
    >>> gram = task_gramian(losses, W.parameters())
    >>> method(losses).backward()                   # the model step goes here
    >>> method.update(losses.detach(), gramian=gram)
    >>> w = method.weights(losses.detach(), gramian=gram)
    >>> round(float(w.sum()), 4), bool(w[0] > w[1])   # the small-gradient task gains
    (2.0, True)
    """

    requires_grad_norms = True

    task_weights: Tensor
    initial_losses: Tensor
    num_updates: Tensor

    def __init__(
        self,
        tasks: int | Sequence[str],
        *,
        alpha: float = 1.5,
        lr: float = 0.025,
        min_weight: float = 1e-4,
    ) -> None:
        super().__init__(tasks)
        self.alpha = _check_real("alpha", alpha, low=0.0)
        self.lr = _check_real("lr", lr, low=0.0, low_open=True)
        self.min_weight = _check_real("min_weight", min_weight, low=0.0, high=1.0, high_open=True)
        m = self.n_tasks
        self.register_buffer("task_weights", torch.ones(m))
        self.register_buffer("initial_losses", torch.zeros(m))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def forward(self, losses: Tensor, *, gramian: Tensor | None = None) -> Tensor:
        """Return ``Σ_i w_i L_i`` (the Gramian is only needed by ``update``).

        Parameters
        ----------
        losses : Tensor of shape (n_tasks,)
            The task losses, attached to the graph.
        gramian : Tensor of shape (n_tasks, n_tasks), optional
            Ignored here; pass it to :meth:`update`.

        Returns
        -------
        Tensor
            The 0-dim objective.
        """
        losses = self._check_losses(losses)
        self._check_gramian(gramian, required=False)
        return self._objective(losses, None)

    def weights(self, losses: Tensor, *, gramian: Tensor | None = None) -> Tensor:
        """Return the current weights ``w`` (detached); the Gramian is optional.

        Parameters
        ----------
        losses : Tensor of shape (n_tasks,)
            The task losses of the current step.
        gramian : Tensor of shape (n_tasks, n_tasks), optional
            Ignored.

        Returns
        -------
        Tensor of shape (n_tasks,)
            The task weights, summing to ``n_tasks``.
        """
        losses = self._check_losses(losses)
        self._check_gramian(gramian, required=False)
        return self.task_weights.detach().clone().to(losses)

    def _weights(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        return self.task_weights.to(losses)

    def _update(self, losses: Tensor, gramian: Tensor | None, losses_after: Tensor | None) -> None:
        assert gramian is not None  # checked by update (requires_grad_norms)
        self._check_positive_losses(losses)
        if int(self.num_updates) == 0:
            self.initial_losses.copy_(losses)
        dtype = self.task_weights.dtype
        w = self.task_weights
        norms = gramian.diagonal().clamp_min(0).sqrt().to(dtype)
        ratios = losses.to(dtype) / self.initial_losses
        grad = gradnorm_weight_gradient(w, norms, ratios, self.alpha)
        new = (w - self.lr * grad).clamp_min(self.min_weight)
        self.task_weights.copy_(new * (self.n_tasks / new.sum()))
        self.num_updates += 1

    def reset(self) -> None:
        """Back to equal weights; ``L_i(0)`` is recorded again at the next update."""
        self.task_weights.fill_(1.0)
        self.initial_losses.zero_()
        self.num_updates.zero_()

    def extra_repr(self) -> str:
        return (
            f"n_tasks={self.n_tasks}, alpha={self.alpha}, lr={self.lr}, "
            f"min_weight={self.min_weight}"
        )
