"""Classification metrics: binary, multiclass and multilabel.

Conventions: metrics that compare *labels* (:func:`accuracy`, :func:`f1_micro`,
:func:`f1_macro`, :func:`hamming_loss`) take hard labels in ``y_pred``; threshold scores
or probabilities yourself first (e.g. ``proba >= 0.5``). Ranking metrics
(:func:`roc_auc`, :func:`average_precision`) take real-valued scores of the positive
class, and :func:`log_loss` takes probabilities.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from polytask.metrics._validation import (
    UndefinedMetricError,
    as_binary_array,
    as_float_array,
    as_label_pair,
    check_same_shape,
)


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of correctly predicted labels; higher is better.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_labels)
        Hard labels (numbers or strings). For 2-D label matrices a sample counts as
        correct only when its whole row matches (subset accuracy).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the shapes differ, an array is empty or holds NaN/inf.

    Examples
    --------
    >>> accuracy([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    """
    yt, yp = as_label_pair(y_true, y_pred, "accuracy")
    correct = yt == yp
    if correct.ndim == 2:
        correct = correct.all(axis=1)
    return float(np.mean(correct))


def _binary_with_scores(
    y_true: ArrayLike, y_score: ArrayLike, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    yt = as_binary_array(y_true, metric, "y_true")
    ys = as_float_array(y_score, metric, "y_score")
    check_same_shape(yt, ys, metric, ("y_true", "y_score"))
    return yt, ys


def roc_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve of binary scores; higher is better, 0.5 is chance.

    Computed as the Mann–Whitney statistic: the probability that a random positive
    scores above a random negative, ties counting one half.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary labels, 0/1 (or bool).
    y_score : array-like of shape (n_samples,)
        Scores of the positive class (probabilities, logits or any monotone score).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If only one class is present in ``y_true`` (the AUC is undefined), if
        ``y_true`` holds values other than 0/1, or the arrays differ in length, are
        empty or hold NaN/inf.

    References
    ----------
    J. A. Hanley and B. J. McNeil, "The meaning and use of the area under a receiver
    operating characteristic (ROC) curve", Radiology 143(1), 1982.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    yt, ys = _binary_with_scores(y_true, y_score, "roc_auc")
    n_pos = int(yt.sum())
    n_neg = yt.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise UndefinedMetricError(
            "roc_auc: undefined because y_true holds only one class; "
            "it needs both positives (1) and negatives (0)"
        )
    ranks = rankdata(ys)  # average ranks: ties count one half
    u_stat = float(np.sum(ranks[yt == 1])) - n_pos * (n_pos + 1) / 2.0
    return u_stat / (n_pos * n_neg)


def average_precision(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Average precision of binary scores, ``Σ_k (R_k - R_{k-1}) P_k``; higher is better.

    ``P_k`` and ``R_k`` are the precision and recall when predicting positive every
    sample scoring at least the k-th largest distinct score (tied scores enter together);
    this is the step-wise area under the precision-recall curve, without interpolation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary labels, 0/1 (or bool).
    y_score : array-like of shape (n_samples,)
        Scores of the positive class.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``y_true`` holds no positive (the recall is undefined), or as
        :func:`roc_auc`.

    References
    ----------
    M. Zhu, "Recall, precision and average precision", technical report, University of
    Waterloo, 2004.

    Examples
    --------
    >>> round(average_precision([0, 1, 0, 1], [0.1, 0.9, 0.8, 0.3]), 4)
    0.8333
    """
    yt, ys = _binary_with_scores(y_true, y_score, "average_precision")
    n_pos = int(yt.sum())
    if n_pos == 0:
        raise UndefinedMetricError(
            "average_precision: undefined because y_true holds no positive (1); "
            "recall needs at least one"
        )
    order = np.argsort(-ys, kind="stable")
    scores, labels = ys[order], yt[order]
    # last index of every run of tied scores: the thresholds of the PR curve
    ends = np.r_[np.flatnonzero(np.diff(scores) != 0.0), scores.size - 1]
    tp = np.cumsum(labels)[ends]
    predicted = ends + 1
    precision = tp / predicted
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _f1_counts(
    y_true: ArrayLike, y_pred: ArrayLike, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-label true positives, false positives and false negatives."""
    yt, yp = as_label_pair(y_true, y_pred, metric)
    if yt.ndim == 2:  # multilabel indicator matrices
        t = as_binary_array(yt, metric, "y_true", ndim=2)
        p = as_binary_array(yp, metric, "y_pred", ndim=2)
        tp = np.sum(t & p, axis=0)
        return tp, np.sum(p, axis=0) - tp, np.sum(t, axis=0) - tp
    labels = np.union1d(yt, yp)  # multiclass: every label seen in either array
    t1 = yt[:, None] == labels[None, :]
    p1 = yp[:, None] == labels[None, :]
    tp = np.sum(t1 & p1, axis=0)
    return tp, np.sum(p1, axis=0) - tp, np.sum(t1, axis=0) - tp


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2.0 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)


def f1_micro(y_true: ArrayLike, y_pred: ArrayLike, *, zero_division: float | None = None) -> float:
    """Micro-averaged F1 score: F1 of the true/false positives summed over labels.

    Higher is better. For 1-D multiclass labels it equals the accuracy.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_labels)
        Hard labels: 1-D multiclass labels (numbers or strings, every label present in
        either array counts), or 2-D 0/1 label matrices (multilabel).
    zero_division : float, optional
        Value returned when no label is positive in either matrix (F1 is 0/0). By
        default that case raises.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If F1 is undefined and ``zero_division`` is None, if the shapes differ, if a 2-D
        array holds values other than 0/1, or an array is empty or holds NaN/inf.

    Examples
    --------
    >>> round(f1_micro([[1, 0], [1, 1]], [[1, 1], [0, 1]]), 4)  # 2·2 / (2·2 + 1 + 1)
    0.6667
    """
    tp, fp, fn = _f1_counts(y_true, y_pred, "f1_micro")
    tp_sum, fp_sum, fn_sum = tp.sum(), fp.sum(), fn.sum()
    if 2 * tp_sum + fp_sum + fn_sum == 0:
        if zero_division is None:
            raise UndefinedMetricError(
                "f1_micro: undefined because no label is positive in y_true or y_pred; "
                "pass zero_division to choose a value"
            )
        return float(zero_division)
    return float(2.0 * tp_sum / (2 * tp_sum + fp_sum + fn_sum))


def f1_macro(y_true: ArrayLike, y_pred: ArrayLike, *, zero_division: float | None = None) -> float:
    """Macro-averaged F1 score: the unweighted mean of the per-label F1 scores.

    Higher is better. For 1-D labels every class seen in ``y_true`` or ``y_pred`` is a
    label (so binary 0/1 input averages the F1 of both classes; pass ``(n, 1)`` matrices
    for the F1 of the positive class alone).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_labels)
        Hard labels: 1-D multiclass labels (numbers or strings), or 2-D 0/1 label
        matrices (multilabel).
    zero_division : float, optional
        F1 given to a label column that is positive nowhere in either matrix (its F1 is
        0/0). By default such a column raises.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If a label's F1 is undefined and ``zero_division`` is None (the message lists
        the label columns), or as :func:`f1_micro`.

    Examples
    --------
    >>> round(f1_macro([0, 0, 1, 2], [0, 1, 1, 2]), 4)  # mean of 2/3, 2/3 and 1
    0.7778
    """
    tp, fp, fn = _f1_counts(y_true, y_pred, "f1_macro")
    scores = _f1(tp, fp, fn)
    undefined = np.flatnonzero(2 * tp + fp + fn == 0)
    if undefined.size:
        if zero_division is None:
            raise UndefinedMetricError(
                f"f1_macro: undefined for label column(s) {undefined.tolist()}: no "
                "positive in y_true or y_pred; pass zero_division to choose a value"
            )
        scores[undefined] = zero_division
    return float(np.mean(scores))


def hamming_loss(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of wrong entries of a label array; lower is better.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples, n_labels) or (n_samples,)
        0/1 label matrices (multilabel), or 1-D labels (then ``1 - accuracy``).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the shapes differ, a 2-D array holds values other than 0/1, or an array is
        empty or holds NaN/inf.

    Examples
    --------
    >>> hamming_loss([[1, 0, 1], [0, 0, 1]], [[1, 1, 1], [0, 0, 0]])
    0.3333333333333333
    """
    yt, yp = as_label_pair(y_true, y_pred, "hamming_loss")
    if yt.ndim == 2:
        yt = as_binary_array(yt, "hamming_loss", "y_true", ndim=2)
        yp = as_binary_array(yp, "hamming_loss", "y_pred", ndim=2)
    return float(np.mean(yt != yp))


def log_loss(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Mean negative log-likelihood of the true labels (cross-entropy); lower is better.

    Probabilities are clipped to ``[eps, 1 - eps]`` with ``eps`` the float64 machine
    epsilon, so a confident mistake costs about 36 nats rather than infinity.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary 0/1 labels when ``y_prob`` is 1-D; class indices ``0 .. n_classes - 1``
        when ``y_prob`` is 2-D.
    y_prob : array-like of shape (n_samples,) or (n_samples, n_classes)
        Probability of the positive class, or class probabilities whose rows sum to 1.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If probabilities fall outside [0, 1], rows do not sum to 1, labels are out of
        range, or the arrays differ in length, are empty or hold NaN/inf.

    Examples
    --------
    >>> round(log_loss([1, 0], [0.5, 0.5]), 4)  # log 2
    0.6931
    """
    prob = np.asarray(y_prob)
    ndim = 2 if prob.ndim == 2 else 1
    p = as_float_array(y_prob, "log_loss", "y_prob", ndim=ndim)
    if np.any((p < 0.0) | (p > 1.0)):
        raise ValueError("log_loss: y_prob must hold probabilities in [0, 1]")
    eps = np.finfo(np.float64).eps
    if ndim == 1:
        yt = as_binary_array(y_true, "log_loss", "y_true")
        check_same_shape(yt, p, "log_loss", ("y_true", "y_prob"))
        p = np.clip(p, eps, 1.0 - eps)
        return float(-np.mean(yt * np.log(p) + (1 - yt) * np.log1p(-p)))
    yt_raw = as_float_array(y_true, "log_loss", "y_true")
    if yt_raw.size != p.shape[0]:
        raise ValueError(
            f"log_loss: y_true has {yt_raw.size} samples but y_prob has {p.shape[0]} rows; "
            "expected the same length"
        )
    n_classes = p.shape[1]
    if np.any(yt_raw != np.round(yt_raw)) or np.any((yt_raw < 0) | (yt_raw >= n_classes)):
        raise ValueError(
            f"log_loss: y_true must hold class indices in 0..{n_classes - 1} "
            f"(y_prob has {n_classes} columns)"
        )
    if not np.allclose(p.sum(axis=1), 1.0, rtol=0.0, atol=1e-6):
        raise ValueError("log_loss: every row of y_prob must sum to 1")
    picked = p[np.arange(p.shape[0]), yt_raw.astype(np.int64)]
    return float(-np.mean(np.log(np.clip(picked, eps, 1.0))))
