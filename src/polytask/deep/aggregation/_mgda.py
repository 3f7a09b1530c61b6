"""MGDA: the minimum-norm point of the convex hull of the task gradients."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from ._base import (
    Array,
    GramianAggregator,
    Weighting,
    check_gramian,
    dtype_eps,
    weights_like,
)
from ._linalg import min_norm_weights

MGDANormalization = Literal["none", "l2", "loss", "loss+"]
_NORMALIZATIONS: tuple[str, ...] = ("none", "l2", "loss", "loss+")


def _check_losses(losses: object, m: int, normalization: str) -> Array:
    if losses is None:
        raise ValueError(
            f"losses is required when normalization={normalization!r}: pass the {m} task losses."
        )
    if not isinstance(losses, Tensor):
        raise TypeError(f"losses must be a torch.Tensor, got {type(losses).__name__}.")
    values = losses.detach().to(device="cpu", dtype=torch.float64).reshape(-1).numpy()
    if values.shape[0] != m:
        raise ValueError(
            f"losses must hold one value per task ({m}), got shape {tuple(losses.shape)}."
        )
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise ValueError(
            f"losses must be finite and positive for "
            f"normalization={normalization!r}, got {values.tolist()}."
        )
    return values


class MGDAWeighting(Weighting):
    r"""Weights of the minimum-norm element of the convex hull of the (normalized) gradients.

    With normalizers :math:`n_i > 0` and :math:`\hat g_i = g_i / n_i`, solve exactly

    .. math:: \alpha^\star = \arg\min_{\alpha \in \Delta_m} \Big\| \sum_i \alpha_i
       \hat g_i \Big\|^2 = \arg\min_{\alpha \in \Delta_m} \alpha^\top \hat G \alpha,
       \qquad \hat G = N^{-1} G N^{-1},

    and return :math:`w_i = \alpha^\star_i / n_i`, so that :math:`J^\top w =
    \sum_i \alpha^\star_i \hat g_i` is the min-norm point itself.  It satisfies
    :math:`\hat g_i^\top d \ge \|d\|^2 \ge 0` for every task: MGDA never conflicts with
    any task, and ``d = 0`` exactly when the gradients are Pareto-stationary.

    The QP is solved to machine precision by reducing it to non-negative least squares
    (Lawson–Hanson active set); the Frank–Wolfe gap certifies the result and an
    :class:`AggregationWarning` is emitted if it exceeds ``1e-9`` (relative).  There is
    no silent fallback.  A zero Gramian (every weight optimal) gives uniform weights.

    Parameters
    ----------
    normalization : {"none", "l2", "loss", "loss+"}, default="none"
        Gradient normalizer of MGDA-UB's reference code: ``"none"`` (:math:`n_i = 1`),
        ``"l2"`` (:math:`n_i = \|g_i\|`), ``"loss"`` (:math:`n_i = L_i`) and ``"loss+"``
        (:math:`n_i = L_i \|g_i\|`).  The loss variants need ``losses`` at call time.  A
        zero gradient keeps :math:`\|g_i\|` out of its normalizer.  Unlike the reference
        code, which reuses :math:`\alpha^\star` as loss weights, the weights here are
        :math:`\alpha^\star_i / n_i`, so that the update is the min-norm point of the
        normalized gradients and stays non-conflicting.

    Raises
    ------
    ValueError
        If ``normalization`` is not one of the four names.

    References
    ----------
    .. [1] J.-A. Désidéri, "Multiple-gradient descent algorithm (MGDA) for multiobjective
       optimization", *Comptes Rendus Mathématique* 350, 2012.
    .. [2] O. Sener and V. Koltun, "Multi-Task Learning as Multi-Objective Optimization",
       NeurIPS 2018.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import MGDAWeighting
    >>> gramian = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    >>> [round(w, 4) for w in MGDAWeighting()(gramian).tolist()]
    [0.8, 0.2]
    """

    def __init__(self, normalization: MGDANormalization = "none") -> None:
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {_NORMALIZATIONS}, got {normalization!r}."
            )
        self._normalization = normalization
        self._freeze()

    @property
    def normalization(self) -> MGDANormalization:
        """The gradient normalizer."""
        return self._normalization

    def _params(self) -> dict[str, Any]:
        return {"normalization": self._normalization}

    def __call__(self, gramian: Tensor, *, losses: Tensor | None = None) -> Tensor:
        """Weights of shape ``(n_tasks,)`` for ``gramian`` of shape ``(n_tasks, n_tasks)``.

        Parameters
        ----------
        gramian : Tensor of shape (n_tasks, n_tasks)
            ``J Jᵀ``.
        losses : Tensor of shape (n_tasks,), optional
            Positive task losses; required by the ``"loss"`` and ``"loss+"``
            normalizations and ignored otherwise.

        Returns
        -------
        Tensor of shape (n_tasks,)
            The weights, in ``gramian``'s dtype and on its device.

        Raises
        ------
        ValueError
            If ``gramian`` is not a valid Gramian, or ``losses`` is missing, of the wrong
            length, or not positive where the normalization needs it.
        """
        g = check_gramian(gramian)
        loss_values = None
        if self._normalization in ("loss", "loss+"):
            loss_values = _check_losses(losses, g.shape[0], self._normalization)
        return weights_like(self._weights(g, dtype_eps(gramian), loss_values), gramian)

    def _solve(self, gramian: Array, eps: float) -> Array:
        return self._weights(gramian, eps, None)

    def _weights(self, gramian: Array, eps: float, losses: Array | None) -> Array:
        norms = np.sqrt(np.clip(np.diag(gramian), 0.0, None))
        norms = np.where(norms > eps * np.max(norms, initial=0.0), norms, 1.0)
        if self._normalization == "l2":
            normalizers = norms
        elif self._normalization == "loss" and losses is not None:
            normalizers = losses
        elif self._normalization == "loss+" and losses is not None:
            normalizers = losses * norms
        else:
            normalizers = np.ones(gramian.shape[0])
        scaled = gramian / np.outer(normalizers, normalizers)
        result: Array = min_norm_weights(scaled, "MGDA") / normalizers
        return result


class MGDA(GramianAggregator[MGDAWeighting]):
    r"""Multiple-gradient descent: the min-norm point of the hull of the task gradients.

    :math:`d = \sum_i \alpha^\star_i \hat g_i` with :math:`\alpha^\star` the exact
    solution of :math:`\min_{\alpha \in \Delta_m} \|\sum_i \alpha_i \hat g_i\|^2`; see
    :class:`MGDAWeighting` for the normalizations and the solver.  ``d`` is
    non-conflicting (:math:`J d \ge 0`), permutation invariant, and linear under
    positive scaling of ``J`` with ``normalization="none"`` (invariant with ``"l2"``).
    A single task gives ``d = g_1`` (``"none"``).

    Parameters
    ----------
    normalization : {"none", "l2", "loss", "loss+"}, default="none"
        See :class:`MGDAWeighting`.

    Raises
    ------
    ValueError
        If ``normalization`` is not one of the four names.

    References
    ----------
    .. [1] J.-A. Désidéri, "Multiple-gradient descent algorithm (MGDA) for multiobjective
       optimization", *Comptes Rendus Mathématique* 350, 2012.
    .. [2] O. Sener and V. Koltun, "Multi-Task Learning as Multi-Objective Optimization",
       NeurIPS 2018.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import MGDA
    >>> jacobian = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    >>> [round(x, 4) for x in MGDA()(jacobian).tolist()]
    [0.8, 0.4]
    """

    def __init__(self, normalization: MGDANormalization = "none") -> None:
        super().__init__(MGDAWeighting(normalization))

    def __call__(self, jacobian: Tensor, *, losses: Tensor | None = None) -> Tensor:
        """Aggregate ``jacobian`` (n_tasks, n_params) into ``(n_params,)``.

        ``losses`` of shape ``(n_tasks,)`` is required by the loss normalizations.
        """
        weighting = self.weighting
        return self._aggregate(jacobian, lambda g: weighting(g, losses=losses))
