"""CAGrad: the best worst-task improvement in a ball around the mean gradient."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.optimize import brentq

from ._base import AggregationWarning, Array, GramianAggregator, Weighting
from ._linalg import KKT_TOL, dual_cone_projection, max_diag, min_norm_in_hull, psd_factor

_DEGENERATE = 1e-7  # relative norm below which the hull's min-norm point counts as 0


def cagrad_hull_weights(factor: Array, rho: float) -> Array | None:
    r"""Exact :math:`\arg\min_{w \in \Delta} g_w^\top g_0 + \rho \|g_w\|` on a Gramian.

    With :math:`g_0 = J^\top a`, :math:`a = 1/m` and :math:`x = J^\top w` ranging over
    the hull ``C`` of the gradients, the problem is
    :math:`\min_{x \in C} g_0^\top x + \rho\|x\|`.  Writing
    :math:`\rho\|x\| = \min_{s > 0} \|x\|^2/(2s) + \rho^2 s/2` and minimising over
    ``x`` first gives the min-norm point :math:`x_s` of the shifted hull
    :math:`C + s g_0` (an exact NNLS, see :func:`min_norm_in_hull`); the remaining
    one-dimensional convex problem in ``s`` has derivative
    :math:`(\rho^2 - \|x_s\|^2/s^2)/2`, so its minimiser is the unique sign change of
    :math:`\psi(s) = \rho s - \|x_s\|`, found by Brent's root finder to machine
    precision.  Returns ``None`` when the optimum is :math:`x = 0` (the hull contains
    0 and no point of it does better; detected as :math:`\psi \ge 0` at
    :math:`s = 10^{-6} \cdot 2/\rho`, i.e. :math:`\|x^\star\|` below about
    :math:`2\cdot10^{-6}` of the largest gradient norm).

    ``factor`` is ``P`` with ``P Pᵀ = G``, scaled so that the largest row norm is 1.
    """
    m = factor.shape[0]
    a = np.full(m, 1.0 / m)
    gramian = factor @ factor.T
    shift = factor.T @ a  # g0 in the coordinates of the factor

    def hull_weights(s: float) -> Array:
        return min_norm_in_hull(factor + s * shift[None, :], "CAGrad")

    def psi(s: float) -> float:
        w = hull_weights(s)
        return rho * s - math.sqrt(max(float(w @ gramian @ w), 0.0))

    upper = 2.0 / rho  # ‖x_s‖ ≤ max_i ‖g_i‖ = 1, so psi(upper) ≥ 1 > 0
    lower = 0.0
    if psi(0.0) > -_DEGENERATE:
        lower = 1e-6 * upper
        if psi(lower) >= 0.0:
            return None
    try:
        root = brentq(psi, lower, upper, xtol=1e-15 * upper, rtol=1e-14, maxiter=300)
    except RuntimeError as err:
        raise RuntimeError(f"CAGrad: the root finder did not converge ({err}).") from err
    return hull_weights(float(root))


class CAGradWeighting(Weighting):
    r"""Weights of conflict-averse gradient descent (CAGrad).

    With :math:`g_0 = \frac{1}{m}\sum_i g_i` and :math:`\phi = c^2 \|g_0\|^2`, CAGrad
    solves :math:`\max_{d} \min_i g_i^\top d` s.t. :math:`\|d - g_0\| \le \sqrt\phi`
    through its dual

    .. math:: w^\star = \arg\min_{w \in \Delta_m} g_w^\top g_0 + \sqrt\phi\,\|g_w\|,
       \qquad g_w = J^\top w,

    and returns :math:`d = g_0 + \frac{\sqrt\phi}{\|g_w\|} g_w`, divided by
    :math:`1 + c^2` when ``rescale`` (option ``rescale=1`` of the authors' code).  So
    :math:`w = (a + \frac{\sqrt\phi}{\|g_w\|} w^\star) / (1 + c^2)` with
    :math:`a = 1/m`, and every quantity is an inner product: :math:`\|g_0\|^2 =
    a^\top G a`, :math:`g_w^\top g_0 = w^\top G a`, :math:`\|g_w\|^2 = w^\top G w`.

    The dual is solved exactly (see :func:`cagrad_hull_weights`: an outer root search
    over exact min-norm solutions, not a generic iterative solver); its Frank–Wolfe gap
    is checked and an :class:`AggregationWarning` is emitted above ``1e-9`` (relative).
    When the optimal :math:`g_w` is 0 (the hull of the gradients contains 0 and no
    point of it does better), the formula is undefined and the primal optimum is not
    unique: every ``d`` in the ball with :math:`J d \ge 0` attains the optimal value 0.
    The update is then the one closest to :math:`g_0`, the projection of :math:`g_0`
    onto :math:`\{d : J d \ge 0\}` (exact NNLS, as in UPGrad), rescaled.  (The
    authors' code returns about :math:`g_0` there, which can conflict with tasks.)
    With ``c = 0`` or :math:`g_0 = 0` the update is :math:`g_0`.

    Parameters
    ----------
    c : float, default=0.4
        Radius factor :math:`c \ge 0` of the ball around :math:`g_0`.
    rescale : bool, default=True
        Divide the update by :math:`1 + c^2`.

    Raises
    ------
    ValueError
        If ``c`` is negative or not finite.
    TypeError
        If ``c`` is not a number or ``rescale`` not a bool.

    References
    ----------
    .. [1] B. Liu, X. Liu, X. Jin, P. Stone and Q. Liu, "Conflict-Averse Gradient
       Descent for Multi-task Learning", NeurIPS 2021.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import CAGradWeighting
    >>> weights = CAGradWeighting(c=0.5)(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    >>> [round(w, 4) for w in weights.tolist()]
    [0.6, 0.6]
    """

    def __init__(self, c: float = 0.4, rescale: bool = True) -> None:
        if isinstance(c, bool) or not isinstance(c, (int, float)):
            raise TypeError(f"c must be a non-negative float, got {type(c).__name__}.")
        if not (math.isfinite(c) and c >= 0.0):
            raise ValueError(f"c must be a finite non-negative float, got {c!r}.")
        if not isinstance(rescale, bool):
            raise TypeError(f"rescale must be a bool, got {type(rescale).__name__}.")
        self._c = float(c)
        self._rescale = rescale
        self._freeze()

    @property
    def c(self) -> float:
        """Radius factor of the ball around the mean gradient."""
        return self._c

    @property
    def rescale(self) -> bool:
        """Whether the update is divided by ``1 + c²``."""
        return self._rescale

    def _params(self) -> dict[str, Any]:
        return {"c": self._c, "rescale": self._rescale}

    def _solve(self, gramian: Array, eps: float) -> Array:
        m = gramian.shape[0]
        a = np.full(m, 1.0 / m)
        out = 1.0 / (1.0 + self._c**2) if self._rescale else 1.0
        scale = max_diag(gramian)
        if scale <= 0.0:
            return a * out
        factor = psd_factor(gramian / scale)
        g = factor @ factor.T  # the PSD matrix actually solved (clips rounding errors)
        rho = self._c * math.sqrt(max(float(a @ g @ a), 0.0))
        if rho <= eps:
            return a * out
        w = cagrad_hull_weights(factor, rho)
        if w is None:  # every d in the ball with J d ≥ 0 is optimal: take the closest to g0
            projected: Array = dual_cone_projection(factor, a, "CAGrad") * out
            return projected
        norm_gw = math.sqrt(max(float(w @ g @ w), 0.0))
        weights = a + (rho / norm_gw) * w
        grad = g @ weights  # J d / scale: the gradient of the dual objective
        gap = float(w @ grad - np.min(grad))
        if gap > KKT_TOL:
            warnings.warn(f"CAGrad: the dual solution has optimality gap {gap:.3g} > "
                          f"{KKT_TOL:g} (relative).", AggregationWarning, stacklevel=3)
        result: Array = weights * out
        return result


class CAGrad(GramianAggregator[CAGradWeighting]):
    r"""Conflict-averse gradient descent (CAGrad).

    :math:`d = \big(g_0 + \frac{c\|g_0\|}{\|g_w\|} g_w\big) / (1 + c^2)`, the direction
    within distance :math:`c\|g_0\|` of the mean gradient :math:`g_0` that maximises
    the smallest improvement :math:`\min_i g_i^\top d`; see :class:`CAGradWeighting`.
    Linear under positive scaling of ``J`` and invariant to the order of the tasks.  A
    single task gives :math:`d = \frac{1 + c}{1 + c^2} g_1` (``rescale=True``).

    Parameters
    ----------
    c : float, default=0.4
        Radius factor :math:`c \ge 0`; ``c = 0`` is the mean gradient.
    rescale : bool, default=True
        Divide the update by :math:`1 + c^2`.

    Raises
    ------
    ValueError
        If ``c`` is negative or not finite.

    References
    ----------
    .. [1] B. Liu, X. Liu, X. Jin, P. Stone and Q. Liu, "Conflict-Averse Gradient
       Descent for Multi-task Learning", NeurIPS 2021.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import CAGrad
    >>> d = CAGrad(c=0.5)(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    >>> [round(x, 4) for x in d.tolist()]
    [0.6, 0.6]
    """

    def __init__(self, c: float = 0.4, rescale: bool = True) -> None:
        super().__init__(CAGradWeighting(c, rescale))
