"""PCGrad: project each task gradient off the gradients it conflicts with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._base import Array, GramianAggregator, Weighting, check_gramian, weights_like
from ._random import check_generator, other_task_orders


def pcgrad_coefficients(gramian: Array, orders: Sequence[Sequence[int]]) -> Array:
    r"""Coefficients of PCGrad's projected gradients in the basis of the task gradients.

    Row ``i`` holds ``c_i`` with :math:`g_i' = \sum_k c_{ik} g_k`.  Starting from
    :math:`c_i = e_i`, for ``j`` in ``orders[i]``: if :math:`g_i' \cdot g_j = (G c_i)_j
    < 0` then :math:`c_{ij} \leftarrow c_{ij} - (G c_i)_j / G_{jj}`.  A zero gradient
    (:math:`G_{jj} = 0`) is never projected on.

    Parameters
    ----------
    gramian : ndarray of shape (m, m)
    orders : sequence of m sequences
        ``orders[i]`` lists the tasks ``j ≠ i`` in visiting order.

    Returns
    -------
    ndarray of shape (m, m)
    """
    m = gramian.shape[0]
    coefficients = np.eye(m)
    for i in range(m):
        c = coefficients[i]
        for j in orders[i]:
            dot = float(gramian[j] @ c)
            if dot < 0.0 and gramian[j, j] > 0.0:
                c[j] -= dot / gramian[j, j]
    return coefficients


class PCGradWeighting(Weighting):
    r"""Weights of PCGrad (projecting conflicting gradients).

    For each task ``i``, the other tasks ``j ≠ i`` are visited in a random order; when
    the running projection :math:`g_i'` conflicts with :math:`g_j`
    (:math:`g_i' \cdot g_j < 0`) it is projected onto the normal plane of :math:`g_j`,

    .. math:: g_i' \leftarrow g_i' - \frac{g_i' \cdot g_j}{\|g_j\|^2} g_j .

    Every :math:`g_i'` is a linear combination :math:`\sum_k c_{ik} g_k` whose
    coefficients only need :math:`g_i' \cdot g_j = (G c_i)_j` and
    :math:`\|g_j\|^2 = G_{jj}`, so the update :math:`\sum_i g_i'` has weights
    :math:`w = \sum_i c_i` computed from the Gramian alone.

    The output is deterministic given the generator's state.  It is linear under
    positive scaling of the gradients; it is not invariant to the task order for
    ``m > 2`` (the random orders follow the task indices).

    Parameters
    ----------
    generator : torch.Generator, optional
        Source of the random visiting orders, used when a call passes none.  ``None``
        uses torch's default generator (seed it with ``torch.manual_seed``).  The
        generator advances at every call; the weighting itself never changes.
        Under data parallelism, seed it identically on every rank so that all ranks
        draw the same orders.

    Raises
    ------
    TypeError
        If ``generator`` is not a ``torch.Generator``.

    References
    ----------
    .. [1] T. Yu, S. Kumar, A. Gupta, S. Levine, K. Hausman and C. Finn, "Gradient
       Surgery for Multi-Task Learning", NeurIPS 2020.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import PCGradWeighting
    >>> gramian = torch.tensor([[1.0, -0.5], [-0.5, 1.0]])
    >>> [round(w, 4) for w in PCGradWeighting()(gramian).tolist()]
    [1.5, 1.5]
    """

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self._generator = check_generator(generator)
        self._freeze()

    @property
    def generator(self) -> torch.Generator | None:
        """The default generator of the random visiting orders."""
        return self._generator

    def _params(self) -> dict[str, Any]:
        return {"generator": self._generator}

    def __call__(self, gramian: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Weights of shape ``(n_tasks,)`` for ``gramian`` of shape ``(n_tasks, n_tasks)``.

        ``generator``, when given, replaces the weighting's own generator for this call.
        """
        g = check_gramian(gramian)
        gen = self._generator if check_generator(generator) is None else generator
        orders = other_task_orders(g.shape[0], gen)
        return weights_like(pcgrad_coefficients(g, orders).sum(axis=0), gramian)

    def _solve(self, gramian: Array, eps: float) -> Array:
        orders = other_task_orders(gramian.shape[0], self._generator)
        result: Array = pcgrad_coefficients(gramian, orders).sum(axis=0)
        return result


class PCGrad(GramianAggregator[PCGradWeighting]):
    r"""PCGrad: the sum of the task gradients after projecting away their conflicts.

    :math:`d = \sum_i g_i'` with :math:`g_i'` obtained from :math:`g_i` by projecting
    it, in a random order over ``j ≠ i``, onto the normal plane of every :math:`g_j` it
    conflicts with; see :class:`PCGradWeighting`.  A single task gives ``d = g_1``.

    Parameters
    ----------
    generator : torch.Generator, optional
        Default source of the random orders (torch's default generator when ``None``);
        a call may pass its own.

    Raises
    ------
    TypeError
        If ``generator`` is not a ``torch.Generator``.

    References
    ----------
    .. [1] T. Yu, S. Kumar, A. Gupta, S. Levine, K. Hausman and C. Finn, "Gradient
       Surgery for Multi-Task Learning", NeurIPS 2020.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import PCGrad
    >>> jacobian = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    >>> PCGrad(generator=torch.Generator().manual_seed(0))(jacobian).tolist()
    [0.5, 1.5]
    """

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__(PCGradWeighting(generator))

    def __call__(self, jacobian: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Aggregate ``jacobian`` (n_tasks, n_params) into ``(n_params,)``.

        ``generator``, when given, replaces the default generator for this call.
        """
        weighting = self.weighting
        return self._aggregate(jacobian, lambda g: weighting(g, generator=generator))
