"""Single-task regression metrics on 1-D arrays."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from polytask.metrics._validation import UndefinedMetricError, as_regression_pair


def _check_not_constant(y_true: np.ndarray, metric: str) -> None:
    if np.ptp(y_true) == 0.0:
        raise UndefinedMetricError(
            f"{metric}: undefined because y_true is constant (Var(y_true) = 0); "
            "it needs at least two distinct target values"
        )


def mse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean squared error, ``mean((y_true - y_pred)**2)``; lower is better.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Targets and predictions, finite.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in length, are empty or hold NaN/inf.

    Examples
    --------
    >>> mse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    1.3333333333333333
    """
    yt, yp = as_regression_pair(y_true, y_pred, "mse")
    return float(np.mean((yt - yp) ** 2))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error, ``sqrt(mse)``; lower is better.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Targets and predictions, finite.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        As :func:`mse`.

    Examples
    --------
    >>> rmse([0.0, 0.0], [3.0, -3.0])
    3.0
    """
    yt, yp = as_regression_pair(y_true, y_pred, "rmse")
    return float(np.sqrt(np.mean((yt - yp) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error, ``mean(|y_true - y_pred|)``; lower is better.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Targets and predictions, finite.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        As :func:`mse`.

    Examples
    --------
    >>> mae([1.0, 2.0], [2.0, 0.0])
    1.5
    """
    yt, yp = as_regression_pair(y_true, y_pred, "mae")
    return float(np.mean(np.abs(yt - yp)))


def explained_variance(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Explained variance score, ``1 - Var(y_true - y_pred) / Var(y_true)``.

    This is scikit-learn's ``explained_variance_score``: the *variance* of the residual
    ignores a constant bias, so a prediction that is off by a constant still scores 1.
    The School benchmark's "explained variance" is instead ``1 - MSE / Var(y)``
    (see :func:`explained_variance_mse` and
    :func:`~polytask.metrics.pooled_explained_variance`), which does penalise a bias.
    Higher is better; 1 is perfect.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Targets and predictions, finite.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``y_true`` is constant (the score is undefined), or as :func:`mse`.

    Examples
    --------
    >>> explained_variance([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])  # a pure bias is ignored
    1.0
    """
    yt, yp = as_regression_pair(y_true, y_pred, "explained_variance")
    _check_not_constant(yt, "explained_variance")
    return float(1.0 - np.var(yt - yp) / np.var(yt))


def explained_variance_mse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Explained variance as defined by the School benchmark, ``1 - MSE / Var(y_true)``.

    Unlike :func:`explained_variance` it divides the mean squared error (bias included)
    by the population variance of the targets. On a single array it equals the
    coefficient of determination :func:`r2`; the two definitions part ways when pooled
    over tasks (:func:`~polytask.metrics.pooled_explained_variance`). Higher is better.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Targets and predictions, finite.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``y_true`` is constant (the score is undefined), or as :func:`mse`.

    References
    ----------
    A. Argyriou, T. Evgeniou and M. Pontil, "Convex multi-task feature learning",
    Machine Learning 73(3), 2008 (the School protocol).

    Examples
    --------
    >>> explained_variance_mse([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])  # the bias counts
    -0.5
    """
    yt, yp = as_regression_pair(y_true, y_pred, "explained_variance_mse")
    _check_not_constant(yt, "explained_variance_mse")
    return float(1.0 - np.mean((yt - yp) ** 2) / np.var(yt))


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination, ``1 - Σ(y - ŷ)² / Σ(y - ȳ)²``; higher is better.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Targets and predictions, finite.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``y_true`` is constant (the score is undefined), or as :func:`mse`.

    Examples
    --------
    >>> r2([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    0.5
    """
    yt, yp = as_regression_pair(y_true, y_pred, "r2")
    _check_not_constant(yt, "r2")
    return float(1.0 - np.sum((yt - yp) ** 2) / np.sum((yt - yt.mean()) ** 2))


def rrmse(y_true: ArrayLike, y_pred: ArrayLike, *, reference: float | None = None) -> float:
    """Relative root mean squared error, ``sqrt(Σ(y - ŷ)² / Σ(y - c)²)``; lower is better.

    The error of the predictions relative to that of the constant prediction ``c``:
    0 is perfect, 1 is no better than predicting ``c``. By default ``c = ȳ``, the mean of
    ``y_true`` (the test targets), so that ``rrmse = sqrt(1 - r2)``. Spyromitros-Xioufis
    et al. (2016), whose multi-target regression benchmarks report the RRMSE of each
    target, take ``c`` to be the mean of the *training* targets; pass it as
    ``reference`` to reproduce their definition exactly.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Targets and predictions, finite.
    reference : float, optional
        The constant prediction ``c`` compared with; default the mean of ``y_true``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``Σ(y - c)² = 0`` (a constant ``y_true`` equal to ``c``: the ratio is
        undefined), if ``reference`` is not finite, or as :func:`mse`.
    TypeError
        If ``reference`` is not a real number.

    References
    ----------
    E. Spyromitros-Xioufis, G. Tsoumakas, W. Groves and I. Vlahavas, "Multi-target
    regression via input space expansion: treating targets as inputs", Machine Learning
    104(1), 55-98, 2016.

    Examples
    --------
    >>> round(rrmse([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]), 4)  # sqrt(1 / 2)
    0.7071
    >>> rrmse([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])  # the mean itself
    1.0
    >>> round(rrmse([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], reference=0.0), 4)  # sqrt(1 / 14)
    0.2673
    """
    yt, yp = as_regression_pair(y_true, y_pred, "rrmse")
    if reference is None:
        _check_not_constant(yt, "rrmse")
        centre = float(yt.mean())
    else:
        if isinstance(reference, bool) or not isinstance(reference, (int, float, np.number)):
            raise TypeError(f"rrmse: reference must be a real number; got {reference!r}")
        centre = float(reference)
        if not np.isfinite(centre):
            raise ValueError(f"rrmse: reference must be finite; got {reference!r}")
    denom = float(np.sum((yt - centre) ** 2))
    if denom == 0.0:
        raise UndefinedMetricError(
            f"rrmse: undefined because every y_true equals the reference {centre!r} "
            "(Σ(y - c)² = 0)"
        )
    return float(np.sqrt(np.sum((yt - yp) ** 2) / denom))
