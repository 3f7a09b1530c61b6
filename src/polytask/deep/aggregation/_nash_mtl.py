"""Nash-MTL: the Nash bargaining solution among the task gradients."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ._base import AggregationWarning, Array, GramianAggregator, Weighting
from ._linalg import max_diag, min_norm_weights

NASH_TOL = 1e-12
"""Stopping tolerance on ``max_i |α_i (Gα)_i − 1|`` (a scale-free residual)."""


def nash_weights(gramian: Array, max_iter: int = 100) -> tuple[Array, bool]:
    r"""Solve :math:`G\alpha = 1/\alpha`, :math:`\alpha > 0`, by damped Newton.

    The equation is the optimality condition of the strictly convex, self-concordant
    problem :math:`\min_{\alpha > 0} f(\alpha) = \tfrac12 \alpha^\top G \alpha -
    \sum_i \log \alpha_i` (gradient :math:`G\alpha - 1/\alpha`, Hessian
    :math:`G + \mathrm{diag}(1/\alpha^2) \succ 0`).  Newton steps with backtracking
    (keeping :math:`\alpha > 0`, Armijo rule) start from :math:`1/\sqrt{G_{ii}}`
    and stop when :math:`\max_i |\alpha_i (G\alpha)_i - 1| \le` ``NASH_TOL``.

    ``gramian`` must have a positive diagonal.  Returns ``(alpha, converged)``.
    """
    alpha = 1.0 / np.sqrt(np.diag(gramian))

    def objective(x: Array) -> float:
        return 0.5 * float(x @ gramian @ x) - float(np.sum(np.log(x)))

    for _ in range(max_iter):
        g_alpha = gramian @ alpha
        if float(np.max(np.abs(alpha * g_alpha - 1.0))) <= NASH_TOL:
            return alpha, True
        grad = g_alpha - 1.0 / alpha
        hessian = gramian + np.diag(1.0 / alpha**2)
        step = -np.linalg.solve(hessian, grad)
        slope = float(grad @ step)  # minus the squared Newton decrement
        t = 1.0
        while np.any(alpha + t * step <= 0.0):
            t *= 0.5
        if -slope > 0.05:  # damped phase; in the quadratic phase the full step is taken,
            # since there f decreases by less than its rounding error
            f0 = objective(alpha)
            while objective(alpha + t * step) > f0 + 0.25 * t * slope and t > 1e-12:
                t *= 0.5
        alpha = alpha + t * step
    converged = float(np.max(np.abs(alpha * (gramian @ alpha) - 1.0))) <= NASH_TOL
    return alpha, converged


class NashMTLWeighting(Weighting):
    r"""Weights of Nash-MTL, the Nash bargaining solution of the task gradients.

    The tasks bargain over a direction ``d`` in a ball, each with utility
    :math:`g_i^\top d`; the Nash bargaining solution is :math:`d = \sum_i \alpha_i g_i`
    with

    .. math:: G \alpha = 1 / \alpha \quad (\text{elementwise}), \qquad \alpha > 0,

    equivalently :math:`g_i^\top d = 1/\alpha_i` for every task, so ``d`` is
    non-conflicting and :math:`\|d\|^2 = m`.  The equation is solved exactly by
    Newton's method on :math:`\min_{\alpha>0} \tfrac12\alpha^\top G\alpha -
    \sum_i \log\alpha_i` (see :func:`nash_weights`), not by the authors' sequence of
    convex programs; the residual :math:`\max_i|\alpha_i(G\alpha)_i - 1|` is driven
    below ``1e-12``.

    A solution exists iff some direction improves every task (:math:`0` is not in the
    convex hull of the gradients, Gordan's theorem).  A zero gradient cannot be
    improved: it gets weight 0 and is left out.  When the remaining tasks admit no
    solution (e.g. antiparallel gradients), the weights are 0 (no update, the
    disagreement point) and an :class:`AggregationWarning` is emitted; so is a Newton
    run that does not reach the tolerance (its last iterate is returned).

    Parameters
    ----------
    normalize : bool, default=False
        Solve on :math:`G / \|G\|_F` as the authors' implementation does.  The update
        then scales like the gradients (:math:`\|d\| = \sqrt{m \|G\|_F}`) instead of
        having norm :math:`\sqrt m`.

    Raises
    ------
    TypeError
        If ``normalize`` is not a bool.

    References
    ----------
    .. [1] A. Navon, A. Shamsian, I. Achituve, H. Maron, K. Kawaguchi, G. Chechik and
       E. Fetaya, "Multi-Task Learning as a Bargaining Game", ICML 2022.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import NashMTLWeighting
    >>> gramian = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    >>> [round(w, 4) for w in NashMTLWeighting()(gramian).tolist()]
    [1.0, 0.5]
    """

    def __init__(self, normalize: bool = False) -> None:
        if not isinstance(normalize, bool):
            raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}.")
        self._normalize = normalize
        self._freeze()

    @property
    def normalize(self) -> bool:
        """Whether the Gramian is divided by its Frobenius norm first."""
        return self._normalize

    def _params(self) -> dict[str, Any]:
        return {"normalize": self._normalize}

    def _solve(self, gramian: Array, eps: float) -> Array:
        m = gramian.shape[0]
        weights = np.zeros(m)
        if self._normalize:
            frobenius = float(np.linalg.norm(gramian))
            if frobenius > 0.0:
                gramian = gramian / frobenius
        scale = max_diag(gramian)
        diag = np.diag(gramian)
        active = np.flatnonzero(diag > eps**2 * scale)
        if active.size == 0:
            return weights
        g = gramian[np.ix_(active, active)] / scale
        if active.size > 1:
            hull = min_norm_weights(g, "Nash-MTL")
            if float(hull @ g @ hull) <= eps:
                warnings.warn(
                    "Nash-MTL: no direction improves every task with a non-zero gradient "
                    "(0 is in the convex hull of the gradients), so the bargaining problem "
                    "has no solution; returning zero weights.",
                    AggregationWarning,
                    stacklevel=3,
                )
                return weights
        alpha, converged = nash_weights(g)
        if not converged:
            residual = float(np.max(np.abs(alpha * (g @ alpha) - 1.0)))
            warnings.warn(f"Nash-MTL: Newton's method stopped with residual {residual:.3g} "
                          f"> {NASH_TOL:g}.", AggregationWarning, stacklevel=3)
        weights[active] = alpha / math.sqrt(scale)
        return weights


class NashMTL(GramianAggregator[NashMTLWeighting]):
    r"""Nash-MTL: the Nash bargaining direction :math:`d = \sum_i \alpha_i g_i`.

    :math:`G\alpha = 1/\alpha`, so :math:`g_i^\top d = 1/\alpha_i > 0` for every task
    and :math:`\|d\| = \sqrt m`; see :class:`NashMTLWeighting`.  The update is
    invariant to positive scaling of ``J`` (its size is set by the learning rate), or
    linear in it with ``normalize=True``; it is invariant to the order of the tasks.  A
    single task gives :math:`d = g_1 / \|g_1\|`.

    Parameters
    ----------
    normalize : bool, default=False
        Solve on the Gramian divided by its Frobenius norm (authors' implementation).

    References
    ----------
    .. [1] A. Navon, A. Shamsian, I. Achituve, H. Maron, K. Kawaguchi, G. Chechik and
       E. Fetaya, "Multi-Task Learning as a Bargaining Game", ICML 2022.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import NashMTL
    >>> jacobian = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    >>> d = NashMTL()(jacobian)
    >>> [round(x, 4) for x in (jacobian @ d).tolist()]
    [1.0, 2.0]
    """

    def __init__(self, normalize: bool = False) -> None:
        super().__init__(NashMTLWeighting(normalize))
