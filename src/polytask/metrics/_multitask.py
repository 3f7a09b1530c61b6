"""Multi-task regression summaries over per-task arrays.

Each function takes ``y_true`` and ``y_pred`` as sequences with one 1-D array per task
(tasks may have different sizes), or as two 2-D arrays of shape (n_samples, n_tasks)
whose columns are the tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from polytask.metrics._validation import UndefinedMetricError, as_task_pairs

PerTask = Sequence[ArrayLike] | NDArray
"""One 1-D array per task, or a 2-D array (n_samples, n_tasks)."""


def pooled_mse(y_true: PerTask, y_pred: PerTask) -> float:
    """Mean squared error over all samples of all tasks pooled; lower is better.

    ``Σ_t Σ_i (y_ti - ŷ_ti)² / Σ_t n_t``: tasks weigh in proportion to their size.

    Parameters
    ----------
    y_true, y_pred : sequence of array-like, or ndarray of shape (n_samples, n_tasks)
        Per-task targets and predictions: one array of shape (n_samples_t,) per task,
        or a 2-D array whose columns are the tasks.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the number of tasks differ, or a task's arrays are not 1-D, differ in length,
        are empty or hold NaN/inf (the message names the task index).
    TypeError
        If ``y_true`` or ``y_pred`` is not a sequence or a 2-D array.

    Examples
    --------
    >>> pooled_mse([[0.0, 0.0, 0.0], [0.0]], [[1.0, 1.0, 1.0], [3.0]])
    3.0
    """
    pairs = as_task_pairs(y_true, y_pred, "pooled_mse")
    sse = sum(float(np.sum((yt - yp) ** 2)) for yt, yp in pairs)
    return sse / sum(yt.size for yt, _ in pairs)


def _weighted_normalised_mse(y_true: PerTask, y_pred: PerTask, metric: str, by: str) -> float:
    pairs = as_task_pairs(y_true, y_pred, metric)
    total, n_total = 0.0, 0
    for t, (yt, yp) in enumerate(pairs):
        if by == "variance":
            if np.ptp(yt) == 0.0:
                raise UndefinedMetricError(
                    f"{metric}: undefined for task {t}: its y_true is constant (Var = 0)"
                )
            scale = float(np.var(yt))
        else:
            scale = float(np.mean(yt**2))
            if scale == 0.0:
                raise UndefinedMetricError(
                    f"{metric}: undefined for task {t}: its y_true is all zero")
        total += yt.size * float(np.mean((yt - yp) ** 2)) / scale
        n_total += yt.size
    return total / n_total


def nmse(y_true: PerTask, y_pred: PerTask) -> float:
    """Normalised mean squared error of several tasks; lower is better.

    Each task's MSE is divided by the (population) variance of its targets, and the
    ratios are averaged with the tasks' sample sizes as weights:
    ``Σ_t n_t · MSE_t / Var(y_t) / Σ_t n_t``. Predicting each task's mean scores 1.

    Parameters
    ----------
    y_true, y_pred : sequence of array-like, or ndarray of shape (n_samples, n_tasks)
        Per-task targets and predictions: one array of shape (n_samples_t,) per task,
        or a 2-D array whose columns are the tasks.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If a task's targets are constant (its nMSE is undefined), or as
        :func:`pooled_mse`.

    References
    ----------
    J. Zhou, J. Chen and J. Ye, "MALSAR: Multi-tAsk Learning via StructurAl
    Regularization", user manual, Arizona State University, 2011.
    J. Chen, J. Zhou and J. Ye, "Integrating low-rank and group-sparse structures for
    robust multi-task learning", KDD 2011.

    Examples
    --------
    >>> y = [[1.0, 3.0], [0.0, 2.0, 4.0]]
    >>> round(nmse(y, [[2.0, 2.0], [2.0, 2.0, 2.0]]), 6)  # each task's mean: nMSE = 1
    1.0
    """
    return _weighted_normalised_mse(y_true, y_pred, "nmse", by="variance")


def amse(y_true: PerTask, y_pred: PerTask) -> float:
    """Averaged mean squared error of several tasks; lower is better.

    Each task's MSE is divided by the mean square of its targets (its squared norm over
    ``n_t``) and the ratios are averaged with the tasks' sample sizes as weights:
    ``Σ_t n_t · MSE_t / mean(y_t²) / Σ_t n_t``. Predicting zero scores 1.

    Parameters
    ----------
    y_true, y_pred : sequence of array-like, or ndarray of shape (n_samples, n_tasks)
        Per-task targets and predictions: one array of shape (n_samples_t,) per task,
        or a 2-D array whose columns are the tasks.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If a task's targets are all zero (its aMSE is undefined), or as
        :func:`pooled_mse`.

    References
    ----------
    J. Zhou, J. Chen and J. Ye, "MALSAR: Multi-tAsk Learning via StructurAl
    Regularization", user manual, Arizona State University, 2011.
    P. Gong, J. Ye and C. Zhang, "Robust multi-task feature learning", KDD 2012.

    Examples
    --------
    >>> amse([[1.0, -1.0], [2.0]], [[0.0, 0.0], [0.0]])  # predicting zero: aMSE = 1
    1.0
    """
    return _weighted_normalised_mse(y_true, y_pred, "amse", by="mean_square")


def pooled_explained_variance(y_true: PerTask, y_pred: PerTask) -> float:
    """Explained variance over all tasks pooled, ``1 - pooled MSE / Var(pooled y)``.

    This is the School benchmark's score: every test sample of every task is put in one
    vector, and ``1 - MSE / Var`` is taken on it (population variance). It is *not*
    scikit-learn's ``explained_variance_score`` (which ignores a constant bias, see
    :func:`~polytask.metrics.explained_variance`). Higher is better.

    Parameters
    ----------
    y_true, y_pred : sequence of array-like, or ndarray of shape (n_samples, n_tasks)
        Per-task targets and predictions: one array of shape (n_samples_t,) per task,
        or a 2-D array whose columns are the tasks.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the pooled targets are constant (the score is undefined), or as
        :func:`pooled_mse`.

    References
    ----------
    A. Argyriou, T. Evgeniou and M. Pontil, "Convex multi-task feature learning",
    Machine Learning 73(3), 2008.

    Examples
    --------
    >>> round(pooled_explained_variance([[0.0, 2.0], [4.0]], [[0.0, 2.0], [2.0]]), 6)
    0.5
    """
    pairs = as_task_pairs(y_true, y_pred, "pooled_explained_variance")
    yt = np.concatenate([p[0] for p in pairs])
    yp = np.concatenate([p[1] for p in pairs])
    if np.ptp(yt) == 0.0:
        raise UndefinedMetricError(
            "pooled_explained_variance: undefined because the pooled y_true is constant "
            "(Var = 0)"
        )
    return float(1.0 - np.mean((yt - yp) ** 2) / np.var(yt))
