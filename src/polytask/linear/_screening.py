"""Feature restriction and gap-safe screening for row-separable penalties.

The pieces :class:`~polytask.linear.WorkingSet` is built from: the per-row dual norms
of L2,1, lasso and l1/l_inf, the restriction of a design to some features, and the
gap-safe sphere test that proves features to be zero at the optimum.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from polytask.linear._datafits import SquaredLoss
from polytask.linear._design import TaskDesign
from polytask.linear._objective import Objective
from polytask.linear._penalties import L21, L1Linf, Lasso

__all__ = ["gap_safe_screen", "restrict_design"]

FArray = NDArray[np.float64]
BArray = NDArray[np.bool_]

# Safety margins of the screening test against rounding: relative to alpha on the dual
# norms, and a floor on the duality gap relative to the objective (a gap computed as
# P - D cannot resolve less).
_SCREEN_RTOL = 1e-9
_GAP_FLOOR = 1e-12


def _row_dual(
    penalty: Any, owner: str
) -> tuple[Callable[[FArray], FArray], Callable[[int], float]]:
    """Per-row dual norm ``omega*(G_j)`` of a row-separable penalty, and the constant
    ``kappa(T) = max_{||v||_2 <= 1} omega*(v)``."""
    if isinstance(penalty, L21):
        return (lambda G: np.sqrt(np.einsum("ij,ij->i", G, G))), (lambda T: 1.0)
    if isinstance(penalty, Lasso):
        return (lambda G: np.abs(G).max(axis=1, initial=0.0)), (lambda T: 1.0)
    if isinstance(penalty, L1Linf):
        return (lambda G: np.abs(G).sum(axis=1)), (lambda T: math.sqrt(T))
    raise ValueError(
        f"{owner}: penalty must be a row-separable norm (L21, Lasso or L1Linf); got "
        f"{type(penalty).__name__}. Use FISTA or ADMM for other penalties."
    )


def restrict_design(design: TaskDesign, features: ArrayLike) -> TaskDesign:
    """The same data restricted to some features (columns of every ``X_t``).

    Parameters
    ----------
    design : TaskDesign
        Shared or per-task design; missing labels are kept missing.
    features : array-like of int, shape (n_selected,)
        Indices of the features to keep, in the order wanted.

    Returns
    -------
    TaskDesign
        With ``n_features = n_selected``.

    Raises
    ------
    ValueError
        If ``features`` is not a 1-D array of valid feature indices.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import TaskDesign
    >>> design = TaskDesign.shared(np.arange(12.0).reshape(4, 3), np.ones((4, 2)))
    >>> sub = restrict_design(design, [2, 0])
    >>> sub.n_features, sub.X[:, 0].tolist()
    (2, [2.0, 5.0, 8.0, 11.0])
    """
    idx = np.asarray(features)
    d = design.n_features
    if idx.ndim != 1 or idx.dtype.kind not in "iu" or np.any((idx < 0) | (idx >= d)):
        raise ValueError(
            f"restrict_design: features must be a 1-D array of integer indices in [0, {d}); "
            f"got shape {idx.shape} and dtype {idx.dtype}, or an index out of range."
        )
    if design.is_shared:
        assert design.X is not None and design.Y is not None
        Y = design.Y if design.mask is None else np.where(design.mask, design.Y, np.nan)
        return TaskDesign.shared(design.X[:, idx], Y)
    return TaskDesign.per_task([x[:, idx] for x in design.Xs], design.ys)


def _fresh(datafit: Any, **overrides: Any) -> Any:
    """An uninitialised copy of ``datafit`` with the same constructor arguments."""
    params = inspect.signature(type(datafit)).parameters
    kwargs = {k: getattr(datafit, k) for k in params if hasattr(datafit, k)}
    kwargs.update({k: v for k, v in overrides.items() if k in params})
    return type(datafit)(**kwargs)


def _column_bounds(datafit: Any) -> FArray:
    """Upper bounds of ``max_t ||x~_tj||_2``, the norm of feature ``j`` as the datafit sees
    it (centered per task when fitting intercepts, observed samples only), (n_features,).

    Centering is a projection, so the uncentered norm is a valid bound; the centered one
    is used where it is cheap, inflated against cancellation.
    """
    design = datafit.design_
    icpt = bool(datafit.fit_intercept)
    if design.is_shared:
        X = design.X
        sq = np.einsum("ij,ij->j", X, X)
        if icpt and design.mask is None:
            sq = np.maximum(sq - X.shape[0] * X.mean(axis=0) ** 2, 0.0) + 1e-10 * sq
        return np.sqrt(sq)
    out = np.zeros(design.n_features)
    for t, x in enumerate(design.Xs):
        sq = np.einsum("ij,ij->j", x, x)
        if icpt:
            sq = np.maximum(sq - x.shape[0] * datafit.x_mean_[:, t] ** 2, 0.0) + 1e-10 * sq
        out = np.maximum(out, sq)
    return np.sqrt(out)


def _screen(
    dual_rows: FArray,
    scale: float,
    gap: float,
    objective: float,
    bounds: FArray,
    c_max: float,
    alpha: float,
) -> BArray:
    """Gap-safe test: ``scale * omega*(G_j) + r kappa ||x~_j|| < alpha``, ``r`` the radius."""
    radius = math.sqrt(2.0 * c_max * (max(gap, 0.0) + _GAP_FLOOR * abs(objective)))
    return scale * dual_rows + radius * bounds < alpha * (1.0 - _SCREEN_RTOL)


def gap_safe_screen(datafit: SquaredLoss, penalty: Any, W: ArrayLike) -> BArray:
    r"""Features certified to be zero in every solution, by the gap-safe sphere test.

    For the squared loss ``F(W) = sum_t c_t/2 ||y_t - X_t w_t||^2`` and a row-separable
    norm ``alpha sum_j omega(W_j)`` the dual is ``c``-strongly concave (modulus
    ``1 / max_t c_t``), so the dual optimum lies in the ball of radius
    ``r = sqrt(2 max_t c_t gap)`` around the rescaled residual ``theta`` of any ``W``
    (``gap`` = its duality gap). Feature ``j`` is zero at the optimum when

    .. math::

        \omega^*\big((x_{tj}^\top \theta_t)_t\big) + r\,\kappa \max_t \|x_{tj}\|_2 < \alpha,

    with ``kappa = max_{||v||_2 <= 1} omega*(v)`` (1 for L2,1 and the lasso, ``sqrt(T)``
    for l1/l_inf). The test is safe whatever ``W``: it never removes a feature used by
    a solution; the closer ``W`` to optimal, the more it removes.

    Parameters
    ----------
    datafit : SquaredLoss
        Initialized.
    penalty : L21, Lasso or L1Linf
        With ``alpha > 0``.
    W : array-like of shape (n_features, n_tasks)
        Any point.

    Returns
    -------
    ndarray of bool, shape (n_features,)
        True for the features proved to be zero at the optimum.

    Raises
    ------
    ValueError
        If the datafit is not an initialized ``SquaredLoss``, the penalty is not
        row-separable or has ``alpha = 0``, or ``W`` has the wrong shape.

    References
    ----------
    E. Ndiaye, O. Fercoq, A. Gramfort and J. Salmon. Gap safe screening rules for
    sparsity enforcing penalties. JMLR 18(128), 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import FISTA, L21, SquaredLoss
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 30))
    >>> Y = X[:, :3] @ rng.normal(size=(3, 4))
    >>> datafit, pen = SquaredLoss("mean").initialize(X, Y), L21(alpha=0.5)
    >>> int(gap_safe_screen(datafit, pen, np.zeros((30, 4))).sum())  # W = 0: gap too large
    0
    >>> W = FISTA(tol=1e-2).solve(datafit, pen).W  # a rough solution
    >>> screened = gap_safe_screen(datafit, pen, W)
    >>> bool(screened[:3].any()), int(screened.sum())  # the 27 unused features go
    (False, 27)
    """
    if not isinstance(datafit, SquaredLoss) or not hasattr(datafit, "design_"):
        raise ValueError(
            "gap_safe_screen: datafit must be an initialized SquaredLoss; got "
            f"{type(datafit).__name__}."
        )
    row_dual, kappa = _row_dual(penalty, "gap_safe_screen")
    if not float(penalty.alpha) > 0:
        raise ValueError(f"gap_safe_screen: penalty alpha must be > 0; got {penalty.alpha!r}.")
    W = np.asarray(W, dtype=np.float64)
    datafit._check_ready(W)
    obj = Objective(datafit, penalty, ())
    S = datafit.state(W)
    G = datafit.gradient(W, S)
    P, gap, _ = obj.certificate(W, S, G)
    scale = obj.gap_scale(G)
    assert gap is not None and scale is not None
    bounds = kappa(datafit.n_tasks) * _column_bounds(datafit)
    c_max = float(np.max(datafit.weights_))
    return _screen(row_dual(G), scale, gap, P, bounds, c_max, float(penalty.alpha))
