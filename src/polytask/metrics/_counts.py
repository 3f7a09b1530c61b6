"""Confusion counts of binary (or multilabel) hard labels: TP, FP and FN.

A count is not a score: it grows with the size of the test part, so it is never a
task's primary metric nor the Δm% comparison metric (the registry marks it with
``MetricSpec.is_count``). Its use is to be *summed over tasks*: with ``TP``, ``FP`` and
``FN`` the totals over the tasks of a set,

- set-level micro-F1 is ``2 TP / (2 TP + FP + FN)``;
- the Hamming loss is ``(FP + FN) / N``, with ``N`` the number of observed labels.

Like the other label metrics they take *hard* 0/1 predictions. When a task is scored
through :meth:`polytask.tasks.Task.evaluate` the model's logit is thresholded at 0, i.e.
the predicted probability at 0.5 (a probability of exactly 0.5 counts as negative), the
same decision rule as :func:`~polytask.metrics.accuracy` and the F1 scores.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from polytask.metrics._validation import as_binary_array, as_label_pair


def _binary_pair(
    y_true: ArrayLike, y_pred: ArrayLike, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    yt, yp = as_label_pair(y_true, y_pred, metric)
    ndim = yt.ndim
    return (as_binary_array(yt, metric, "y_true", ndim=ndim),
            as_binary_array(yp, metric, "y_pred", ndim=ndim))


def n_tp(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Number of true positives, ``Σ [y_true = 1 and y_pred = 1]``.

    Higher is better for a fixed test set (the positives it misses are false negatives).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_labels)
        0/1 labels (or bools), the predictions hard; a 2-D label matrix counts every
        entry.

    Returns
    -------
    float
        The count, a whole number (a float like every metric).

    Raises
    ------
    ValueError
        If the shapes differ, an array holds values other than 0/1, is empty or holds
        NaN/inf.
    TypeError
        If an array holds strings.

    Examples
    --------
    >>> n_tp([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
    2.0
    """
    yt, yp = _binary_pair(y_true, y_pred, "n_tp")
    return float(np.sum((yt == 1) & (yp == 1)))


def n_fp(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Number of false positives, ``Σ [y_true = 0 and y_pred = 1]``; lower is better.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_labels)
        0/1 labels (or bools), the predictions hard; a 2-D label matrix counts every
        entry.

    Returns
    -------
    float
        The count, a whole number.

    Raises
    ------
    ValueError
        As :func:`n_tp`.
    TypeError
        As :func:`n_tp`.

    Examples
    --------
    >>> n_fp([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
    1.0
    """
    yt, yp = _binary_pair(y_true, y_pred, "n_fp")
    return float(np.sum((yt == 0) & (yp == 1)))


def n_fn(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Number of false negatives, ``Σ [y_true = 1 and y_pred = 0]``; lower is better.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_labels)
        0/1 labels (or bools), the predictions hard; a 2-D label matrix counts every
        entry.

    Returns
    -------
    float
        The count, a whole number.

    Raises
    ------
    ValueError
        As :func:`n_tp`.
    TypeError
        As :func:`n_tp`.

    Examples
    --------
    >>> n_fn([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
    1.0
    """
    yt, yp = _binary_pair(y_true, y_pred, "n_fn")
    return float(np.sum((yt == 1) & (yp == 0)))
