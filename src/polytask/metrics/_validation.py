"""Input validation shared by the metric functions.

Every helper takes the metric's name and the argument's name so that an error message
says which metric refused which argument, and why.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from polytask._typing import FloatArray


class UndefinedMetricError(ValueError):
    """A metric is undefined on its labels (ROC-AUC of one class, EV of a constant target).

    A subclass of ``ValueError``, so code that catches ``ValueError`` still does; callers
    that can leave such a score out (a rare task's small validation or test part holding
    one class) catch this class alone, never a malformed input.
    """


class UndefinedMetricWarning(UserWarning):
    """A metric was left out because it is undefined on one task's labels."""


def as_float_array(x: ArrayLike, metric: str, arg: str, ndim: int = 1) -> FloatArray:
    """``x`` as a finite, non-empty float64 array with ``ndim`` dimensions."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{metric}: {arg} must be an array of numbers; got {x!r:.80}") from exc
    if arr.ndim != ndim:
        raise ValueError(
            f"{metric}: {arg} must be {ndim}-D; got an array of shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{metric}: {arg} is empty; expected at least one sample")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{metric}: {arg} contains NaN or infinite values")
    return arr


def as_label_array(x: ArrayLike, metric: str, arg: str, ndims: tuple[int, ...] = (1,)) -> NDArray:
    """``x`` as a non-empty label array (numbers or strings) with one of ``ndims``."""
    arr = np.asarray(x)
    if arr.ndim not in ndims:
        expected = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{metric}: {arg} must be {expected}; got an array of shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{metric}: {arg} is empty; expected at least one sample")
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{metric}: {arg} contains NaN or infinite values")
    if arr.dtype.kind not in "biufUSO":
        raise TypeError(f"{metric}: {arg} must hold numbers or strings; got dtype {arr.dtype}")
    return arr


def as_label_pair(
    y_true: ArrayLike, y_pred: ArrayLike, metric: str, ndims: tuple[int, ...] = (1, 2)
) -> tuple[NDArray, NDArray]:
    """Validate two label arrays of the same shape whose labels are comparable."""
    yt = as_label_array(y_true, metric, "y_true", ndims=ndims)
    yp = as_label_array(y_pred, metric, "y_pred", ndims=ndims)
    check_same_shape(yt, yp, metric, ("y_true", "y_pred"))
    numeric_t, numeric_p = yt.dtype.kind in "biuf", yp.dtype.kind in "biuf"
    if {yt.dtype.kind, yp.dtype.kind} & set("US") and numeric_t != numeric_p:
        raise TypeError(
            f"{metric}: y_true holds {'numbers' if numeric_t else 'strings'} but y_pred holds "
            f"{'numbers' if numeric_p else 'strings'}; labels must be of the same type"
        )
    return yt, yp


def as_binary_array(x: ArrayLike, metric: str, arg: str, ndim: int = 1) -> NDArray[np.int64]:
    """``x`` as an integer array whose entries are all 0 or 1 (bools accepted)."""
    arr = as_label_array(x, metric, arg, ndims=(ndim,))
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{metric}: {arg} must hold 0/1 values; got dtype {arr.dtype}")
    if not np.all((arr == 0) | (arr == 1)):
        bad = np.unique(arr[(arr != 0) & (arr != 1)])[:5].tolist()
        raise ValueError(f"{metric}: {arg} must hold only 0/1 values; found {bad}")
    return arr.astype(np.int64)


def check_same_shape(a: NDArray, b: NDArray, metric: str, names: tuple[str, str]) -> None:
    """Raise if ``a`` and ``b`` differ in shape (length for 1-D arrays)."""
    if a.shape != b.shape:
        if a.ndim == b.ndim == 1:
            raise ValueError(
                f"{metric}: {names[0]} has {a.shape[0]} samples but {names[1]} has "
                f"{b.shape[0]}; expected the same length"
            )
        raise ValueError(
            f"{metric}: {names[0]} has shape {a.shape} but {names[1]} has shape {b.shape}; "
            "expected the same shape"
        )


def as_regression_pair(
    y_true: ArrayLike, y_pred: ArrayLike, metric: str
) -> tuple[FloatArray, FloatArray]:
    """Validate a ``(y_true, y_pred)`` pair of 1-D finite arrays of the same length."""
    yt = as_float_array(y_true, metric, "y_true")
    yp = as_float_array(y_pred, metric, "y_pred")
    check_same_shape(yt, yp, metric, ("y_true", "y_pred"))
    return yt, yp


def split_tasks(y: Sequence[ArrayLike] | NDArray, metric: str, arg: str) -> list[ArrayLike]:
    """The per-task arrays of ``y``: a sequence of arrays, or the columns of a 2-D array."""
    if isinstance(y, np.ndarray):
        if y.ndim != 2:
            raise ValueError(
                f"{metric}: {arg} must be a sequence of per-task arrays or a 2-D array "
                f"(n_samples, n_tasks); got an array of shape {y.shape}"
            )
        return [y[:, t] for t in range(y.shape[1])]
    if isinstance(y, (str, bytes)) or not isinstance(y, Sequence):
        raise TypeError(
            f"{metric}: {arg} must be a sequence of per-task arrays; got {type(y).__name__}"
        )
    return list(y)


def as_task_pairs(
    y_true: Sequence[ArrayLike] | NDArray, y_pred: Sequence[ArrayLike] | NDArray, metric: str
) -> list[tuple[FloatArray, FloatArray]]:
    """Validate per-task ``(y_true_t, y_pred_t)`` pairs; errors name the task index."""
    trues = split_tasks(y_true, metric, "y_true")
    preds = split_tasks(y_pred, metric, "y_pred")
    if len(trues) == 0:
        raise ValueError(f"{metric}: y_true holds no task; expected at least one")
    if len(trues) != len(preds):
        raise ValueError(
            f"{metric}: y_true has {len(trues)} tasks but y_pred has {len(preds)}; "
            "expected one prediction array per task"
        )
    return [
        as_regression_pair(yt, yp, f"{metric} (task {t})")
        for t, (yt, yp) in enumerate(zip(trues, preds, strict=True))
    ]
