"""GradVac: raise pairwise gradient similarities towards their running targets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._base import (
    Array,
    _Immutable,
    check_gramian,
    check_jacobian,
    compute_gramian,
    dtype_eps,
    weights_like,
)
from ._random import check_generator, other_task_orders

_MAX_TARGET = 1.0 - 1e-12


@dataclass(frozen=True)
class GradVacState:
    """Running similarity targets of GradVac.

    Attributes
    ----------
    targets : Tensor of shape (n_tasks, n_tasks)
        Float64 CPU tensor; ``targets[i, j]`` is the exponential moving average
        :math:`\\hat\\phi_{ij}` of the cosine similarity between task ``i``'s adjusted
        gradient and task ``j``'s gradient.  The diagonal is unused.
    """

    targets: Tensor

    @property
    def n_tasks(self) -> int:
        """Number of tasks the state was built for."""
        return int(self.targets.shape[0])


def gradvac_step(
    gramian: Array, targets: Array, orders: Sequence[Sequence[int]], beta: float, eps: float
) -> tuple[Array, Array]:
    r"""One GradVac step on a Gramian: coefficient rows and the updated targets.

    For each ``i`` and ``j`` in ``orders[i]``, with :math:`g_i' = \sum_k c_{ik} g_k`:
    :math:`\phi = \cos(g_i', g_j)`; if :math:`\phi < \hat\phi_{ij}`, add
    :math:`\|g_i'\| (\hat\phi \sqrt{1-\phi^2} - \phi \sqrt{1-\hat\phi^2}) /
    (\|g_j\| \sqrt{1-\hat\phi^2})` to :math:`c_{ij}`; then
    :math:`\hat\phi_{ij} \leftarrow (1-\beta)\hat\phi_{ij} + \beta\phi`.  Pairs where
    either gradient is zero (norm at most ``eps`` times the largest) are skipped.

    Returns
    -------
    coefficients : ndarray of shape (m, m)
    new_targets : ndarray of shape (m, m)
    """
    m = gramian.shape[0]
    coefficients = np.eye(m)
    new_targets = targets.copy()
    norms = np.sqrt(np.clip(np.diag(gramian), 0.0, None))
    tiny = eps * float(np.max(norms, initial=0.0))
    for i in range(m):
        c = coefficients[i]
        for j in orders[i]:
            norm_i = math.sqrt(max(float(c @ gramian @ c), 0.0))
            if norm_i <= tiny or norms[j] <= tiny:
                continue
            phi = min(max(float(gramian[j] @ c) / (norm_i * norms[j]), -1.0), 1.0)
            target = min(float(new_targets[i, j]), _MAX_TARGET)
            if phi < target:
                root_t = math.sqrt(1.0 - target**2)
                c[j] += (norm_i * (target * math.sqrt(1.0 - phi**2) - phi * root_t)
                         / (norms[j] * root_t))
            new_targets[i, j] = (1.0 - beta) * new_targets[i, j] + beta * phi
    return coefficients, new_targets


def _check_beta(beta: object) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)):
        raise TypeError(f"beta must be a float in (0, 1], got {type(beta).__name__}.")
    if not 0.0 < float(beta) <= 1.0:
        raise ValueError(f"beta must be in (0, 1], got {beta!r}.")
    return float(beta)


class GradVacWeighting(_Immutable):
    r"""Weights of Gradient Vaccine (GradVac), with its state passed explicitly.

    For each task ``i``, the other tasks ``j ≠ i`` are visited in a random order.  With
    :math:`\phi_{ij} = \cos(g_i', g_j)` between the running adjusted gradient
    :math:`g_i'` and the original :math:`g_j`, and the EMA target
    :math:`\hat\phi_{ij}`: if :math:`\phi_{ij} < \hat\phi_{ij}`,

    .. math:: g_i' \leftarrow g_i' + \frac{\|g_i'\| \big(\hat\phi_{ij}
       \sqrt{1-\phi_{ij}^2} - \phi_{ij} \sqrt{1-\hat\phi_{ij}^2}\big)}
       {\|g_j\| \sqrt{1-\hat\phi_{ij}^2}} \, g_j ,

    which makes :math:`\cos(g_i', g_j) = \hat\phi_{ij}` exactly; in every case
    :math:`\hat\phi_{ij} \leftarrow (1-\beta)\hat\phi_{ij} + \beta\phi_{ij}`.  The update
    is :math:`\sum_i g_i'`.  As for PCGrad, each :math:`g_i'` is a combination of the
    task gradients whose coefficients only need inner products, so the weights come
    from the Gramian alone.

    **State is explicit** (optax style) rather than hidden in the object: create it with
    :meth:`init_state` (targets start at 0, as in the paper) and thread it through the
    calls, each of which returns ``(weights, new_state)``.  The weighting itself is
    immutable; checkpointing the state is checkpointing ``state.targets``.  Targets are
    clipped to ``1 − 1e-12`` inside the formula, and a pair with a zero gradient is
    skipped (no adjustment, no target update).

    Parameters
    ----------
    beta : float, default=0.5
        EMA rate :math:`\beta \in (0, 1]` of the similarity targets.
    generator : torch.Generator, optional
        Default source of the random visiting orders (torch's default generator when
        ``None``); a call may pass its own.
        Under data parallelism, seed it identically on every rank so that all ranks
        draw the same orders.

    Raises
    ------
    ValueError
        If ``beta`` is not in (0, 1].
    TypeError
        If ``beta`` is not a number or ``generator`` not a ``torch.Generator``.

    References
    ----------
    .. [1] Z. Wang, Y. Tsvetkov, O. Firat and Y. Cao, "Gradient Vaccine: Investigating
       and Improving Multi-task Optimization in Massively Multilingual Models",
       ICLR 2021.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import GradVacWeighting
    >>> weighting = GradVacWeighting(beta=0.5)
    >>> state = weighting.init_state(2)
    >>> gramian = torch.tensor([[1.0, -0.5], [-0.5, 1.0]])
    >>> weights, state = weighting(gramian, state)
    >>> [round(w, 4) for w in weights.tolist()]
    [1.5, 1.5]
    >>> [round(t, 4) for t in state.targets[0].tolist()]
    [0.0, -0.25]
    """

    def __init__(self, beta: float = 0.5, generator: torch.Generator | None = None) -> None:
        self._beta = _check_beta(beta)
        self._generator = check_generator(generator)
        self._freeze()

    @property
    def beta(self) -> float:
        """EMA rate of the similarity targets."""
        return self._beta

    @property
    def generator(self) -> torch.Generator | None:
        """The default generator of the random visiting orders."""
        return self._generator

    def _params(self) -> dict[str, Any]:
        return {"beta": self._beta, "generator": self._generator}

    def init_state(self, n_tasks: int) -> GradVacState:
        """Fresh state for ``n_tasks`` tasks: all similarity targets at 0.

        Raises
        ------
        ValueError
            If ``n_tasks`` is not a positive integer.
        """
        if isinstance(n_tasks, bool) or not isinstance(n_tasks, int) or n_tasks < 1:
            raise ValueError(f"n_tasks must be a positive integer, got {n_tasks!r}.")
        return GradVacState(torch.zeros(n_tasks, n_tasks, dtype=torch.float64))

    def __call__(
        self,
        gramian: Tensor,
        state: GradVacState,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, GradVacState]:
        """Weights ``(n_tasks,)`` and the next state for ``gramian`` ``(n_tasks, n_tasks)``.

        Parameters
        ----------
        gramian : Tensor of shape (n_tasks, n_tasks)
        state : GradVacState
            From :meth:`init_state` or the previous call.
        generator : torch.Generator, optional
            Replaces the default generator for this call.

        Returns
        -------
        weights : Tensor of shape (n_tasks,)
            In ``gramian``'s dtype and on its device.
        new_state : GradVacState

        Raises
        ------
        TypeError, ValueError
            If ``gramian`` is not a valid Gramian, or ``state`` is not a
            :class:`GradVacState` for the same number of tasks.
        """
        g = check_gramian(gramian)
        targets = _check_state(state, g.shape[0])
        gen = self._generator if check_generator(generator) is None else generator
        orders = other_task_orders(g.shape[0], gen)
        coefficients, new_targets = gradvac_step(g, targets, orders, self._beta,
                                                 dtype_eps(gramian))
        new_state = GradVacState(torch.from_numpy(new_targets))
        return weights_like(coefficients.sum(axis=0), gramian), new_state


def _check_state(state: object, m: int) -> Array:
    if not isinstance(state, GradVacState):
        raise TypeError(f"state must be a GradVacState (see init_state), got "
                        f"{type(state).__name__}.")
    if tuple(state.targets.shape) != (m, m):
        raise ValueError(f"state holds targets for {state.n_tasks} tasks but the input has "
                         f"{m}; create a new one with init_state({m}).")
    result: Array = state.targets.detach().to(device="cpu", dtype=torch.float64).numpy()
    return result


class GradVac(_Immutable):
    r"""Gradient Vaccine: the sum of the task gradients after similarity adjustment.

    :math:`d = \sum_i g_i'` where each :math:`g_i'` is pushed towards every other task
    gradient until their cosine similarity reaches its running target; see
    :class:`GradVacWeighting`.  The aggregator is immutable and its state is explicit:
    every call takes the current :class:`GradVacState` and returns ``(d, new_state)``.
    A single task gives ``d = g_1``.

    Parameters
    ----------
    beta : float, default=0.5
        EMA rate of the similarity targets, in (0, 1].
    generator : torch.Generator, optional
        Default source of the random visiting orders.

    Raises
    ------
    ValueError
        If ``beta`` is not in (0, 1].

    References
    ----------
    .. [1] Z. Wang, Y. Tsvetkov, O. Firat and Y. Cao, "Gradient Vaccine: Investigating
       and Improving Multi-task Optimization in Massively Multilingual Models",
       ICLR 2021.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import GradVac
    >>> aggregator = GradVac(beta=0.1)
    >>> state = aggregator.init_state(2)
    >>> jacobian = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    >>> d, state = aggregator(jacobian, state)
    >>> d.shape, state.n_tasks
    (torch.Size([2]), 2)
    """

    def __init__(self, beta: float = 0.5, generator: torch.Generator | None = None) -> None:
        self._weighting = GradVacWeighting(beta, generator)
        self._freeze()

    @property
    def weighting(self) -> GradVacWeighting:
        """The Gramian-level form of this aggregator."""
        return self._weighting

    def _params(self) -> dict[str, Any]:
        return self._weighting._params()

    def init_state(self, n_tasks: int) -> GradVacState:
        """Fresh state for ``n_tasks`` tasks (see :meth:`GradVacWeighting.init_state`)."""
        return self._weighting.init_state(n_tasks)

    def __call__(
        self,
        jacobian: Tensor,
        state: GradVacState,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, GradVacState]:
        """Aggregate ``jacobian`` (n_tasks, n_params); return ``(d, new_state)``.

        Raises
        ------
        TypeError, ValueError
            If ``jacobian`` or ``state`` is invalid.
        """
        matrix = check_jacobian(jacobian)
        weights, new_state = self._weighting(compute_gramian(matrix), state,
                                             generator=generator)
        return weights @ matrix, new_state
