"""Equal weighting: the mean and the sum of the task gradients (the baselines)."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from ._base import Array, GramianAggregator, Weighting, check_jacobian


class MeanWeighting(Weighting):
    r"""Equal weights :math:`w_i = 1/m` whatever the Gramian.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import MeanWeighting
    >>> MeanWeighting()(torch.eye(4)).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """

    def __init__(self) -> None:
        self._freeze()

    def _solve(self, gramian: Array, eps: float) -> Array:
        m = gramian.shape[0]
        return np.full(m, 1.0 / m)


class SumWeighting(Weighting):
    r"""Unit weights :math:`w_i = 1` whatever the Gramian.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import SumWeighting
    >>> SumWeighting()(torch.eye(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self) -> None:
        self._freeze()

    def _solve(self, gramian: Array, eps: float) -> Array:
        return np.ones(gramian.shape[0])


class Mean(GramianAggregator[MeanWeighting]):
    r"""Average of the task gradients, :math:`d = \frac{1}{m} \sum_i g_i`.

    The equal-weighting baseline of multi-task learning: the gradient of the mean loss.
    Computed directly from the Jacobian (no Gramian needed).

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import Mean
    >>> Mean()(torch.tensor([[1.0, 2.0], [3.0, 0.0]])).tolist()
    [2.0, 1.0]
    """

    def __init__(self) -> None:
        super().__init__(MeanWeighting())

    def __call__(self, jacobian: Tensor) -> Tensor:
        """Mean of the rows of ``jacobian`` (n_tasks, n_params), shape ``(n_params,)``."""
        return check_jacobian(jacobian).mean(dim=0)


class Sum(GramianAggregator[SumWeighting]):
    r"""Sum of the task gradients, :math:`d = \sum_i g_i` (gradient of the summed loss).

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import Sum
    >>> Sum()(torch.tensor([[1.0, 2.0], [3.0, 0.0]])).tolist()
    [4.0, 2.0]
    """

    def __init__(self) -> None:
        super().__init__(SumWeighting())

    def __call__(self, jacobian: Tensor) -> Tensor:
        """Sum of the rows of ``jacobian`` (n_tasks, n_params), shape ``(n_params,)``."""
        return check_jacobian(jacobian).sum(dim=0)
