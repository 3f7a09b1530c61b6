"""Parsing of the estimators' inputs: shared designs, per-task designs, task labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from polytask.linear._design import TaskDesign

__all__ = ["ParsedInput", "encode_binary", "parse_fit_input", "task_indices"]


@dataclass
class ParsedInput:
    """Validated training data and what the estimator must remember about it."""

    design: TaskDesign
    tasks: NDArray[Any]
    single_output: bool
    classes: NDArray[Any] | None
    X: NDArray[np.float64]
    task_index: NDArray[np.int64] | None  # per-sample task of a per-task design


def _name(value: Any) -> str:
    """A task label as it reads in messages (numpy scalars unwrapped)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def encode_binary(y: NDArray[Any], where: str) -> tuple[NDArray[np.float64], NDArray[Any]]:
    """Check binary labels (NaN = missing when numeric) and map them to {0., 1., NaN}."""
    y = np.asarray(y)
    numeric = y.dtype.kind in "fiub"
    missing = np.isnan(y.astype(np.float64)) if numeric else np.zeros(y.shape, dtype=bool)
    observed = y[~missing]
    if observed.size == 0:
        raise ValueError(f"{where} has no observed label (all NaN).")
    if numeric and not np.all(np.isfinite(observed.astype(np.float64))):
        raise ValueError(f"{where} contains infinite values.")
    check_classification_targets(observed.ravel())
    classes = np.unique(observed)
    if classes.size > 2:
        raise ValueError(
            "Only binary classification is supported. The type of the target is "
            f"multiclass ({where} has {classes.size} labels; each task must be binary)."
        )
    if classes.size < 2:
        raise ValueError(
            f"{where} has one class only ({classes[0]!r}); classification needs two classes."
        )
    out = np.where(missing, np.nan, (y == classes[1]).astype(np.float64))
    return out, classes


def _labels(y: Any, classification: bool, where: str) -> tuple[NDArray[np.float64], Any]:
    if classification:
        arr = np.asarray(y)
        if arr.dtype.kind == "O":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                pass
        return encode_binary(arr, where)
    arr = check_array(
        y, ensure_2d=False, ensure_all_finite="allow-nan", dtype=np.float64, input_name="y"
    )
    if np.any(np.isinf(arr)):
        raise ValueError(f"{where} contains infinite values; use NaN for missing labels.")
    return arr, None


def _from_pairs(est: Any, pairs: Any, classification: bool) -> ParsedInput:
    if isinstance(pairs, Mapping):
        names = np.asarray(list(pairs.keys()))
        items = list(pairs.values())
    else:
        items = list(pairs)
        names = np.arange(len(items))
    if not items:
        raise ValueError("X: the list of (X_t, y_t) pairs is empty.")
    Xs, ys = [], []
    for t, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(f"X: task {_name(names[t])} must be a pair (X_t, y_t).")
        Xs.append(np.asarray(item[0]))
        ys.append(np.asarray(item[1]).ravel())
    sizes = [len(y) for y in ys]
    for t, (Xt, n) in enumerate(zip(Xs, sizes, strict=True)):
        if Xt.ndim != 2 or Xt.shape[0] != n:
            raise ValueError(
                f"task {_name(names[t])}: X_t must be 2-D with {n} rows like y_t; got {Xt.shape}."
            )
        if Xt.dtype.kind in "fc" and not np.all(np.isfinite(Xt)):
            row = int(np.flatnonzero(~np.isfinite(Xt).all(axis=1))[0])
            raise ValueError(
                f"task {_name(names[t])}: Input X contains NaN or infinity (X_t row {row}); "
                "features must be finite."
            )
    X = validate_data(est, np.vstack(Xs), reset=True, dtype=np.float64)
    task_of = np.repeat(np.arange(len(items)), sizes)
    return _per_task(X, np.concatenate(ys), task_of, names, classification)


def _per_task(
    X: NDArray[np.float64],
    y: NDArray[Any],
    task_of: NDArray[np.int64],
    names: NDArray[Any],
    classification: bool,
) -> ParsedInput:
    labels, classes = _labels(y, classification, "y")
    Xs, ys = [], []
    for t, name in enumerate(names):
        rows = np.flatnonzero((task_of == t) & ~np.isnan(labels))
        if rows.size == 0:
            raise ValueError(f"task {_name(name)} has no sample with an observed label.")
        Xs.append(X[rows])
        ys.append(labels[rows])
    design = TaskDesign.per_task(Xs, ys)
    return ParsedInput(design, names, False, classes, X, task_of)


def parse_fit_input(est: Any, X: Any, y: Any, task: Any, classification: bool) -> ParsedInput:
    """Validate ``fit`` inputs in any of the three accepted forms.

    Forms: ``fit(X, Y)`` (shared design, ``Y`` (n, T) or (n,), ``NaN`` = missing),
    ``fit(X, y, task=ids)`` (per-task designs given by a task label per sample), and
    ``fit([(X_1, y_1), ...])`` or ``fit({name: (X_t, y_t)})`` (per-task designs).
    Sets ``est.n_features_in_``.
    """
    if isinstance(X, (list, tuple, Mapping)) and y is None and task is None:
        items = list(X.values()) if isinstance(X, Mapping) else list(X)
        if items and all(isinstance(i, (tuple, list)) and len(i) == 2 for i in items):
            return _from_pairs(est, X, classification)
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None.")
    Xv = validate_data(est, X, reset=True, dtype=np.float64)
    n = Xv.shape[0]
    if task is not None:
        ids = np.asarray(task)
        yv = np.asarray(y)
        if ids.ndim != 1 or ids.shape[0] != n:
            raise ValueError(
                f"task must hold one task label per sample: expected shape ({n},), got {ids.shape}."
            )
        if yv.ndim != 1 or yv.shape[0] != n:
            raise ValueError(
                f"with task=..., y must be 1-D with one label per sample ({n}); got shape "
                f"{yv.shape}."
            )
        names, task_of = np.unique(ids, return_inverse=True)
        return _per_task(Xv, yv, task_of.astype(np.int64), names, classification)
    yarr = np.asarray(y)
    if yarr.ndim == 0 or yarr.shape[0] != n:
        raise ValueError(f"y must have {n} rows like X; got shape {yarr.shape}.")
    single = yarr.ndim == 1
    columns = getattr(y, "columns", None)
    labels, classes = _labels(y, classification, "Y")
    labels = labels[:, None] if labels.ndim == 1 else labels
    if labels.ndim != 2:
        raise ValueError(f"Y must be 1-D or 2-D (n_samples, n_tasks); got shape {yarr.shape}.")
    names = np.asarray(columns) if columns is not None else np.arange(labels.shape[1])
    design = TaskDesign.shared(Xv, labels)
    return ParsedInput(design, names, single, classes, Xv, None)


def task_indices(tasks: NDArray[Any], task: Any, n_samples: int) -> NDArray[np.int64]:
    """Positions in ``tasks`` of the per-sample labels ``task``; clear error otherwise."""
    ids = np.asarray(task)
    if ids.ndim != 1 or ids.shape[0] != n_samples:
        raise ValueError(
            f"task must hold one task label per sample: expected shape ({n_samples},), "
            f"got {ids.shape}."
        )
    if tasks.dtype.kind in "iu" and ids.dtype.kind not in "iu" and ids.size:
        raise ValueError(
            f"unknown task label {_name(ids.flat[0])}; known tasks: {tasks.tolist()[:10]}."
        )
    pos = np.searchsorted(tasks, ids) if tasks.size > 1 and _sorted(tasks) else None
    if pos is None:
        lookup = {v: i for i, v in enumerate(tasks.tolist())}
        out = np.empty(ids.shape[0], dtype=np.int64)
        for i, v in enumerate(ids.tolist()):
            if v not in lookup:
                raise ValueError(
                    f"unknown task label {_name(v)}; known tasks: {tasks.tolist()[:10]}."
                )
            out[i] = lookup[v]
        return out
    pos = np.clip(pos, 0, tasks.size - 1)
    bad = np.flatnonzero(tasks[pos] != ids)
    if bad.size:
        raise ValueError(
            f"unknown task label {_name(ids[bad[0]])}; known tasks: {tasks.tolist()[:10]}."
        )
    return pos.astype(np.int64)


def _sorted(a: NDArray[Any]) -> bool:
    try:
        return bool(np.all(a[:-1] <= a[1:]))
    except TypeError:
        return False
