"""Dynamic weight average (Liu, Johns & Davison, CVPR 2019)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._base import LossWeighting, _check_real

__all__ = ["DWA", "dwa_weights"]


def dwa_weights(previous: Tensor, before_previous: Tensor, temperature: float) -> Tensor:
    """Dynamic weight average weights from two epochs of mean losses.

    .. math:: w_i = m \\, \\frac{\\exp(r_i / T)}{\\sum_j \\exp(r_j / T)}, \\qquad
              r_i = \\frac{L_i(t-1)}{L_i(t-2)}.

    Parameters
    ----------
    previous : Tensor of shape (n_tasks,)
        Mean losses of the last epoch, ``L(t−1)``.
    before_previous : Tensor of shape (n_tasks,)
        Mean losses of the epoch before, ``L(t−2)``, positive.
    temperature : float
        ``T > 0``; a large ``T`` gives nearly equal weights.

    Returns
    -------
    Tensor of shape (n_tasks,)
        Positive weights summing to ``n_tasks``.

    References
    ----------
    S. Liu, E. Johns and A. J. Davison, "End-to-end multi-task learning with
    attention", CVPR 2019.

    Examples
    --------
    >>> import torch
    >>> w = dwa_weights(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 1.0]), 2.0)
    >>> round(float(w.sum()), 4), bool(w[1] > w[0])   # task 1 stalled: more weight
    (2.0, True)
    """
    ratios = previous / before_previous
    return previous.shape[0] * torch.softmax(ratios / temperature, dim=0)


class DWA(LossWeighting):
    """Dynamic weight average (DWA): weight each task by its recent rate of descent.

    At epoch ``t`` (counted from 1) the weights are :func:`dwa_weights` of the mean
    epoch losses ``L(t−1)`` and ``L(t−2)``; during the first two epochs they are all 1.
    The weights change only between epochs.

    Two calls feed the history, both explicit:

    * ``update(losses)`` after every optimizer step accumulates the epoch's running mean
      of the training losses (what the paper averages);
    * ``update_epoch()`` at the end of every epoch closes it: it appends that mean (or
      the ``mean_losses`` it is given, e.g. losses over the full training set, which
      then replace the accumulated mean) to the history.

    Parameters
    ----------
    tasks : int or sequence of str
        The number of tasks, or their names in the order of the loss vector.
    temperature : float, default=2.0
        The softmax temperature ``T > 0`` (the paper uses 2).

    Attributes
    ----------
    loss_history : Tensor of shape (2, n_tasks)
        Mean losses of the last two closed epochs, ``[L(t−2), L(t−1)]`` (buffer).
    num_epochs : Tensor
        Number of closed epochs (0-dim int64 buffer).
    epoch_loss_sum, epoch_num_steps : Tensor
        Running sum and count of the current epoch's losses (buffers).

    References
    ----------
    S. Liu, E. Johns and A. J. Davison, "End-to-end multi-task learning with
    attention", CVPR 2019.

    Examples
    --------
    >>> import torch
    >>> dwa = DWA(2, temperature=2.0)
    >>> for epoch_losses in ([4.0, 4.0], [2.0, 3.9]):      # task 1 barely moves
    ...     dwa.update(torch.tensor(epoch_losses))          # one step per epoch here
    ...     dwa.update_epoch()
    >>> w = dwa.weights(torch.tensor([1.0, 1.0]))
    >>> round(float(w.sum()), 4), bool(w[1] > w[0])
    (2.0, True)
    """

    loss_history: Tensor
    num_epochs: Tensor
    epoch_loss_sum: Tensor
    epoch_num_steps: Tensor

    def __init__(self, tasks: int | Sequence[str], *, temperature: float = 2.0) -> None:
        super().__init__(tasks)
        self.temperature = _check_real("temperature", temperature, low=0.0, low_open=True)
        m = self.n_tasks
        self.register_buffer("loss_history", torch.ones(2, m))
        self.register_buffer("num_epochs", torch.zeros((), dtype=torch.long))
        self.register_buffer("epoch_loss_sum", torch.zeros(m))
        self.register_buffer("epoch_num_steps", torch.zeros((), dtype=torch.long))

    def _weights(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        if int(self.num_epochs) < 2:
            return torch.ones_like(losses)
        w = dwa_weights(self.loss_history[1], self.loss_history[0], self.temperature)
        return w.to(losses)

    def _update(self, losses: Tensor, gramian: Tensor | None, losses_after: Tensor | None) -> None:
        self.epoch_loss_sum += losses.to(self.epoch_loss_sum)
        self.epoch_num_steps += 1

    def update_epoch(self, mean_losses: Tensor | None = None) -> None:
        """Close the epoch: push its mean losses into the two-epoch history.

        Parameters
        ----------
        mean_losses : Tensor of shape (n_tasks,), optional
            The epoch's mean task losses. ``None`` uses the mean of the losses passed
            to :meth:`update` during the epoch.

        Raises
        ------
        ValueError
            If ``mean_losses`` is ``None`` and ``update`` was not called during the
            epoch, or a mean loss is not finite and positive (the message names the
            task).
        """
        if mean_losses is None:
            steps = int(self.epoch_num_steps)
            if steps == 0:
                raise ValueError(
                    "update_epoch() got no mean_losses and update() was not called "
                    "during this epoch: pass mean_losses or call update() every step"
                )
            mean = self.epoch_loss_sum / steps
            name = "mean epoch losses"
        else:
            mean = self._check_losses(mean_losses, "mean_losses").detach()
            name = "mean_losses"
        self._check_losses(mean, name)
        self._check_positive_losses(mean, name)
        with torch.no_grad():
            self.loss_history[0].copy_(self.loss_history[1])
            self.loss_history[1].copy_(mean)
            self.num_epochs += 1
            self.epoch_loss_sum.zero_()
            self.epoch_num_steps.zero_()

    def reset(self) -> None:
        """Forget the loss history (equal weights for the next two epochs)."""
        self.loss_history.fill_(1.0)
        self.num_epochs.zero_()
        self.epoch_loss_sum.zero_()
        self.epoch_num_steps.zero_()

    def extra_repr(self) -> str:
        return f"n_tasks={self.n_tasks}, temperature={self.temperature}"
