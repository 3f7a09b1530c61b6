"""Input checks for :class:`~polytask.data.MultiTaskData`, run once on construction.

Every function raises ``ValueError`` (wrong value) or ``TypeError`` (wrong type) with one
message that names the argument, the task when there is one, and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from polytask._typing import TaskKind

COLUMN_KINDS: tuple[str, ...] = ("regression", "binary", "multiclass")
"""Task kinds a single label column can hold (``"multilabel"`` is several columns)."""

F64 = NDArray[np.float64]

_MULTILABEL_HINT = (
    "'multilabel' is not a column kind: a multilabel problem is several tasks, so give "
    "each label its own column of Y (its own task) with kind 'binary'"
)


def as_float_array(value: Any, *, name: str) -> NDArray[np.float64]:
    """Return a float64 copy of a numeric array-like.

    Parameters
    ----------
    value : array-like
        Numbers (bool, integer or float).
    name : str
        How the argument is called in error messages.

    Returns
    -------
    ndarray of float64
        A fresh copy: the caller's array is never shared or mutated.

    Raises
    ------
    TypeError
        If ``value`` is not numeric (strings, objects, complex numbers).
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array; could not convert it ({exc})") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold numbers (bool, int or float), got dtype {arr.dtype}; "
            "encode categorical values as numbers first"
        )
    return np.array(arr, dtype=np.float64, copy=True)


def default_names(prefix: str, count: int) -> tuple[str, ...]:
    """Names ``prefix_0, prefix_1, ...``."""
    return tuple(f"{prefix}_{i}" for i in range(count))


def check_names(names: Any, *, count: int, argument: str, what: str) -> tuple[str, ...]:
    """Validate a sequence of ``count`` distinct, non-empty string names.

    Parameters
    ----------
    names : sequence of str
        The names given by the user.
    count : int
        How many names are expected.
    argument : str
        The argument's name, for messages (``"task_names"``).
    what : str
        What one name designates, for messages (``"task"``).

    Returns
    -------
    tuple of str
    """
    if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray):
        raise TypeError(f"{argument} must be a sequence of str, got {type(names).__name__}")
    names = tuple(names)
    if len(names) != count:
        raise ValueError(f"{argument} has {len(names)} names but there are {count} {what}s")
    seen: set[str] = set()
    for i, item in enumerate(names):
        if not isinstance(item, str):
            raise TypeError(f"{argument}[{i}] must be a str, got {type(item).__name__} ({item!r})")
        if not item.strip():
            raise ValueError(f"{argument}[{i}] is an empty {what} name; give every {what} a name")
        if item in seen:
            raise ValueError(f"{argument} has the {what} name {item!r} twice; names must be unique")
        seen.add(item)
    return names


def _check_kind(kind: Any, task: str) -> TaskKind:
    if kind == "multilabel":
        raise ValueError(f"task {task!r}: {_MULTILABEL_HINT}")
    if not isinstance(kind, str) or kind not in COLUMN_KINDS:
        raise ValueError(
            f"task {task!r}: unknown kind {kind!r}; expected one of {', '.join(COLUMN_KINDS)}"
        )
    return cast(TaskKind, kind)


def resolve_kinds(kinds: Any, names: tuple[str, ...]) -> dict[str, TaskKind]:
    """Turn ``kinds`` (one kind, a sequence, or a mapping) into ``{task: kind}``.

    Parameters
    ----------
    kinds : str, sequence of str or mapping of str to str
        One kind for every task, one per task in order, or one per task name.
    names : tuple of str
        The task names, in order.

    Returns
    -------
    dict
        ``{task name: kind}`` in task order.
    """
    if isinstance(kinds, str):
        return {name: _check_kind(kinds, name) for name in names}
    if isinstance(kinds, Mapping):
        unknown = [key for key in kinds if key not in names]
        if unknown:
            raise ValueError(
                f"kinds names unknown task(s) {unknown}; known tasks are {list(names)}"
            )
        missing = [name for name in names if name not in kinds]
        if missing:
            raise ValueError(f"kinds gives no kind for task(s) {missing}")
        return {name: _check_kind(kinds[name], name) for name in names}
    if isinstance(kinds, Sequence):
        if len(kinds) != len(names):
            raise ValueError(f"kinds has {len(kinds)} entries but there are {len(names)} tasks")
        return {name: _check_kind(kind, name) for name, kind in zip(names, kinds, strict=True)}
    raise TypeError(
        f"kinds must be a str, a sequence of str or a mapping task -> kind, "
        f"got {type(kinds).__name__}"
    )


def check_labels(y: NDArray[np.float64], *, task: str, kind: str) -> None:
    """Check a task's labels against its kind; NaN marks a missing label.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        The task's labels, NaN where missing.
    task : str
        The task name, for messages.
    kind : str
        One of :data:`COLUMN_KINDS`.

    Raises
    ------
    ValueError
        If the task has no observed label, an infinite label, or labels outside the
        values its kind allows (binary: 0 or 1; multiclass: non-negative integers).
    """
    if y.size == 0:
        raise ValueError(f"task {task!r} has no samples")
    observed = y[~np.isnan(y)]
    if observed.size == 0:
        raise ValueError(f"task {task!r} has no observed label (all {y.size} are NaN)")
    n_inf = int(np.isinf(observed).sum())
    if n_inf:
        raise ValueError(
            f"task {task!r} ({kind}): {n_inf} label(s) are infinite; labels must be "
            "finite (NaN marks a missing label)"
        )
    if kind == "binary":
        bad = observed[(observed != 0.0) & (observed != 1.0)]
        if bad.size:
            raise ValueError(
                f"task {task!r} (binary): labels must be 0 or 1, found {bad.size} other "
                f"value(s), e.g. {_preview(bad)}"
            )
    elif kind == "multiclass":
        bad = observed[(observed < 0) | (observed != np.floor(observed))]
        if bad.size:
            raise ValueError(
                f"task {task!r} (multiclass): labels must be non-negative integers (class "
                f"indices 0, 1, ...), found {bad.size} other value(s), e.g. {_preview(bad)}"
            )


def nonfinite_rows(X: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Boolean mask of the rows of ``X`` holding a NaN or an infinity."""
    return np.asarray(~np.isfinite(X).all(axis=1), dtype=bool)


def check_features(X: NDArray[np.float64], *, task: str) -> None:
    """Raise if a task's feature matrix has non-finite entries, saying how many rows."""
    bad = nonfinite_rows(X)
    if bad.any():
        raise ValueError(
            f"task {task!r}: X has {int(bad.sum())} row(s) with non-finite features "
            f"(NaN or inf; first at row {int(np.flatnonzero(bad)[0])}); impute or drop them "
            "(NaN marks missing labels only, never missing features)"
        )


def _preview(values: NDArray[np.float64], limit: int = 3) -> str:
    shown = np.unique(values)[:limit]
    return ", ".join(f"{v:g}" for v in shown)


def validate_shared(
    X: Any, Y: Any, task_names: Any, kinds: Any, feature_names: Any
) -> tuple[F64, F64, tuple[str, ...], dict[str, TaskKind], tuple[str, ...]]:
    """Validate the shared form; return float64 copies of X, Y, names, kinds, feature names."""
    X_arr = as_float_array(X, name="X")
    Y_arr = as_float_array(Y, name="Y")
    if X_arr.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X_arr.shape}")
    if Y_arr.ndim == 1:
        Y_arr = Y_arr.reshape(-1, 1)
    if Y_arr.ndim != 2:
        raise ValueError(f"Y must be 1-D or 2-D (n_samples, n_tasks), got shape {Y_arr.shape}")
    if X_arr.shape[0] != Y_arr.shape[0]:
        raise ValueError(
            f"X has {X_arr.shape[0]} rows but Y has {Y_arr.shape[0]}; "
            "they must match (one row per sample)"
        )
    if Y_arr.shape[1] == 0:
        raise ValueError("Y has no column: give at least one task")
    if task_names is None:
        names = default_names("task", Y_arr.shape[1])
    else:
        names = check_names(task_names, count=Y_arr.shape[1], argument="task_names", what="task")
    kind_map = resolve_kinds(kinds, names)
    fnames = _feature_names(feature_names, X_arr.shape[1])
    bad = nonfinite_rows(X_arr)
    if bad.any():
        hit = [n for j, n in enumerate(names) if (~np.isnan(Y_arr[bad, j])).any()]
        raise ValueError(
            f"X has {int(bad.sum())} row(s) with non-finite features (NaN or inf; first at "
            f"row {int(np.flatnonzero(bad)[0])}), labelled for task(s) {hit}; impute or drop "
            "them (NaN marks missing labels only, in Y)"
        )
    for j, name in enumerate(names):
        check_labels(Y_arr[:, j], task=name, kind=kind_map[name])
    return X_arr, Y_arr, names, kind_map, fnames


def validate_per_task(
    tasks: Any, kinds: Any, feature_names: Any
) -> tuple[list[tuple[F64, F64]], tuple[str, ...], dict[str, TaskKind], tuple[str, ...]]:
    """Validate the per-task form; return designs (observed rows only), names, kinds and
    feature names."""
    if isinstance(tasks, Mapping):
        names = check_names(list(tasks), count=len(tasks), argument="tasks", what="task")
        pairs: list[Any] = [tasks[name] for name in names]
    elif isinstance(tasks, Sequence) and not isinstance(tasks, str):
        pairs = list(tasks)
        names = default_names("task", len(pairs))
    else:
        raise TypeError(
            "tasks must be a mapping {name: (X_t, y_t)} or a sequence of (X_t, y_t) pairs, "
            f"got {type(tasks).__name__}"
        )
    if not pairs:
        raise ValueError("tasks is empty: give at least one task")
    kind_map = resolve_kinds(kinds, names)
    designs: list[tuple[F64, F64]] = []
    for name, pair in zip(names, pairs, strict=True):
        X_t, y_t = _task_pair(pair, name)
        if designs and X_t.shape[1] != designs[0][0].shape[1]:
            raise ValueError(
                f"task {name!r} has {X_t.shape[1]} features but task {names[0]!r} has "
                f"{designs[0][0].shape[1]}; all tasks must share the same features"
            )
        check_labels(y_t, task=name, kind=kind_map[name])
        observed = ~np.isnan(y_t)
        X_t, y_t = X_t[observed], y_t[observed]
        check_features(X_t, task=name)
        designs.append((X_t, y_t))
    fnames = _feature_names(feature_names, designs[0][0].shape[1])
    return designs, names, kind_map, fnames


def _feature_names(names: Any, n_features: int) -> tuple[str, ...]:
    if n_features == 0:
        raise ValueError("X has no feature column: give at least one feature")
    if names is None:
        return default_names("feature", n_features)
    return check_names(names, count=n_features, argument="feature_names", what="feature")


def _task_pair(pair: Any, name: str) -> tuple[F64, F64]:
    """Check one task's ``(X_t, y_t)`` and return float64 copies."""
    if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
        raise TypeError(f"task {name!r}: expected a pair (X_t, y_t), got {type(pair).__name__}")
    X_t = as_float_array(pair[0], name=f"task {name!r}: X_t")
    y_t = as_float_array(pair[1], name=f"task {name!r}: y_t")
    if X_t.ndim != 2:
        raise ValueError(f"task {name!r}: X_t must be 2-D (n_t, n_features), got {X_t.shape}")
    if y_t.ndim == 2 and y_t.shape[1] == 1:
        y_t = y_t[:, 0]
    if y_t.ndim != 1:
        raise ValueError(f"task {name!r}: y_t must be 1-D (n_t,), got shape {y_t.shape}")
    if X_t.shape[0] != y_t.shape[0]:
        raise ValueError(
            f"task {name!r}: X_t has {X_t.shape[0]} rows but y_t has {y_t.shape[0]} labels"
        )
    return X_t, y_t
