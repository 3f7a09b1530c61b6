"""``MultiTaskData``: one validated container for multi-task data in two forms."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from polytask._typing import TaskKind

from ._frames import FrameMethods
from ._splits import SplitMethods
from ._validation import check_names, validate_per_task, validate_shared

if TYPE_CHECKING:
    from torch.utils.data import TensorDataset

    from ._torch_views import MultiTaskTorchDataset

Form = Literal["shared", "per_task"]
KindsArg = str | Sequence[str] | Mapping[str, str]
F64 = NDArray[np.float64]

_REPR_TASKS = 6


def _frozen(arr: F64) -> F64:
    arr.flags.writeable = False
    return arr


class MultiTaskData(SplitMethods, FrameMethods):
    """Multi-task data, validated once: a shared design or one design per task.

    *Shared form*: one feature matrix ``X`` for all tasks and a label matrix ``Y`` whose
    column ``t`` holds task ``t``'s labels, NaN where a label is missing. *Per-task form*
    (:meth:`from_tasks`): each task has its own ``(X_t, y_t)`` of its own size, as in
    School. Both forms share every accessor, split and conversion. Arrays are copied to
    float64 and stored read-only; the caller's arrays are never modified.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features, finite numbers.
    Y : array-like of shape (n_samples, n_tasks) or (n_samples,)
        Labels; NaN marks a missing label. A 1-D ``Y`` is one task.
    task_names : sequence of str of length n_tasks, optional
        Distinct, non-empty names; default ``"task_0", "task_1", ...``.
    kinds : str, sequence of str or mapping of str to str, default="regression"
        Kind of every task (``"regression"``, ``"binary"`` or ``"multiclass"``): one kind
        for all, one per task in order, or a mapping ``{task: kind}`` covering every task.
        Binary labels are 0/1; multiclass labels are class indices 0, 1, ...
    feature_names : sequence of str of length n_features, optional
        Default ``"feature_0", "feature_1", ...``.

    Raises
    ------
    ValueError
        On any inconsistency, naming the task and the problem: shape mismatches,
        non-finite features, labels invalid for the task's kind, a task without observed
        labels, duplicate or empty names, wrong number of names or kinds, unknown kinds.
    TypeError
        If the arrays are not numeric or names are not strings.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(8.0).reshape(4, 2)
    >>> Y = np.array([[1.0, 0], [2.0, np.nan], [np.nan, 1], [4.0, 0]])
    >>> data = MultiTaskData(X, Y, task_names=["score", "pass"],
    ...                      kinds={"score": "regression", "pass": "binary"})
    >>> data.form, data.n_tasks, data.n_samples
    ('shared', 2, 4)
    >>> data.task_sizes
    {'score': 3, 'pass': 3}
    >>> X_t, y_t = data.task("pass")
    >>> y_t.tolist()
    [0.0, 1.0, 0.0]
    """

    _form: Form
    _names: tuple[str, ...]
    _kinds: dict[str, TaskKind]
    _feature_names: tuple[str, ...]
    _X: F64 | None
    _Y: F64 | None
    _tasks: tuple[tuple[F64, F64], ...] | None

    def __init__(
        self,
        X: ArrayLike,
        Y: ArrayLike,
        task_names: Sequence[str] | None = None,
        kinds: KindsArg = "regression",
        feature_names: Sequence[str] | None = None,
    ) -> None:
        X_arr, Y_arr, names, kind_map, fnames = validate_shared(
            X, Y, task_names, kinds, feature_names
        )
        self._set("shared", names, kind_map, fnames, X=_frozen(X_arr), Y=_frozen(Y_arr))

    @classmethod
    def from_tasks(
        cls,
        tasks: Mapping[str, tuple[ArrayLike, ArrayLike]] | Sequence[tuple[ArrayLike, ArrayLike]],
        kinds: KindsArg = "regression",
        feature_names: Sequence[str] | None = None,
    ) -> MultiTaskData:
        """Build the per-task form: each task has its own design ``(X_t, y_t)``.

        Parameters
        ----------
        tasks : mapping of str to (X_t, y_t), or sequence of (X_t, y_t)
            ``X_t`` of shape (n_t, n_features) and ``y_t`` of shape (n_t,); ``n_t`` may
            differ between tasks, ``n_features`` may not. A sequence gets the names
            ``"task_0", "task_1", ...``. Rows whose label is NaN (missing) are dropped.
        kinds : str, sequence of str or mapping of str to str, default="regression"
            As in :class:`MultiTaskData`.
        feature_names : sequence of str of length n_features, optional
            Default ``"feature_0", "feature_1", ...``.

        Returns
        -------
        MultiTaskData
            Data in the ``"per_task"`` form.

        Raises
        ------
        ValueError
            As in :class:`MultiTaskData`, naming the task (rows of ``X_t`` vs length of
            ``y_t``, different ``n_features`` between tasks, non-finite features, ...).

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> data = MultiTaskData.from_tasks({
        ...     "school_a": (rng.normal(size=(5, 3)), rng.normal(size=5)),
        ...     "school_b": (rng.normal(size=(8, 3)), rng.normal(size=8)),
        ... })
        >>> data.form, data.task_sizes
        ('per_task', {'school_a': 5, 'school_b': 8})
        """
        designs, names, kind_map, fnames = validate_per_task(tasks, kinds, feature_names)
        obj = cls.__new__(cls)
        designs = [(_frozen(x), _frozen(y)) for x, y in designs]
        obj._set("per_task", names, kind_map, fnames, tasks=tuple(designs))
        return obj

    def _set(
        self,
        form: Form,
        names: tuple[str, ...],
        kinds: dict[str, TaskKind],
        feature_names: tuple[str, ...],
        *,
        X: F64 | None = None,
        Y: F64 | None = None,
        tasks: tuple[tuple[F64, F64], ...] | None = None,
    ) -> None:
        self._form, self._names, self._kinds = form, names, kinds
        self._feature_names, self._X, self._Y, self._tasks = feature_names, X, Y, tasks

    def _derive(
        self,
        names: tuple[str, ...],
        *,
        X: F64 | None = None,
        Y: F64 | None = None,
        tasks: Sequence[tuple[F64, F64]] | None = None,
    ) -> MultiTaskData:
        """A new container from already-validated parts (no re-validation)."""
        obj = type(self).__new__(type(self))
        kinds = {n: self._kinds[n] for n in names}
        if tasks is not None:
            designs = tuple((_frozen(x), _frozen(y)) for x, y in tasks)
            obj._set("per_task", names, kinds, self._feature_names, tasks=designs)
        else:
            assert X is not None and Y is not None
            obj._set("shared", names, kinds, self._feature_names, X=_frozen(X), Y=_frozen(Y))
        return obj

    # ------------------------------------------------------------------ properties
    @property
    def form(self) -> Form:
        """``"shared"`` (one X, label matrix Y) or ``"per_task"`` (one design per task)."""
        return self._form

    @property
    def task_names(self) -> tuple[str, ...]:
        """Task names, in order."""
        return self._names

    @property
    def kinds(self) -> dict[str, TaskKind]:
        """``{task: kind}`` (a fresh dict)."""
        return dict(self._kinds)

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self._names)

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self._feature_names)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names, in column order."""
        return self._feature_names

    @property
    def n_samples(self) -> int:
        """Total number of rows: rows of X (shared) or sum of the tasks' sizes (per-task)."""
        if self._X is not None:
            return int(self._X.shape[0])
        return sum(self.task_sizes.values())

    @property
    def task_sizes(self) -> dict[str, int]:
        """``{task: number of observed labels}``."""
        if self._Y is not None:
            counts = (~np.isnan(self._Y)).sum(axis=0)
            return {n: int(c) for n, c in zip(self._names, counts, strict=True)}
        assert self._tasks is not None
        return {n: int(y.size) for n, (_, y) in zip(self._names, self._tasks, strict=True)}

    # ------------------------------------------------------------------ accessors
    def _index(self, name: str) -> int:
        try:
            return self._names.index(name)
        except ValueError:
            known = list(self._names)
            raise ValueError(f"unknown task {name!r}; known tasks are {known}") from None

    def task(self, name: str) -> tuple[F64, F64]:
        """Observed rows of one task.

        Parameters
        ----------
        name : str
            The task.

        Returns
        -------
        X_t : ndarray of shape (n_t, n_features)
        y_t : ndarray of shape (n_t,)
            Only the rows whose label is observed (no NaN).

        Raises
        ------
        ValueError
            If ``name`` is not a task; the message lists the known tasks.
        """
        t = self._index(name)
        if self._tasks is not None:
            return self._tasks[t]
        assert self._X is not None and self._Y is not None
        observed = ~np.isnan(self._Y[:, t])
        return self._X[observed], self._Y[observed, t]

    def iter_tasks(self) -> Iterator[tuple[str, F64, F64]]:
        """Yield ``(name, X_t, y_t)`` for every task, observed rows only, in task order."""
        for name in self._names:
            yield (name, *self.task(name))

    def stacked(self) -> tuple[F64, F64, NDArray[np.intp]]:
        """Every observed ``(x, y, task index)`` triple, tasks concatenated in order.

        This is the input of the linear estimators' ``fit(X, y, task=task_ids)``.

        Returns
        -------
        X : ndarray of shape (n_observed, n_features)
        y : ndarray of shape (n_observed,)
        task_ids : ndarray of int of shape (n_observed,)
            Index into :attr:`task_names` of each row's task.

        Examples
        --------
        >>> import numpy as np
        >>> data = MultiTaskData(np.eye(3), [[1.0, np.nan], [2.0, 5.0], [np.nan, 6.0]])
        >>> X, y, ids = data.stacked()
        >>> y.tolist(), ids.tolist()
        ([1.0, 2.0, 5.0, 6.0], [0, 0, 1, 1])
        """
        parts = [self.task(name) for name in self._names]
        ids = np.concatenate([np.full(y.size, t, dtype=np.intp) for t, (_, y) in enumerate(parts)])
        return (
            np.concatenate([x for x, _ in parts]),
            np.concatenate([y for _, y in parts]),
            ids,
        )

    def _shared_arrays(self, method: str) -> tuple[F64, F64]:
        if self._X is None or self._Y is None:
            raise ValueError(
                f"{method}() needs the shared form; this data is per-task: call to_shared() first"
            )
        return self._X, self._Y

    def feature_matrix(self) -> F64:
        """The shared feature matrix X, read-only, of shape (n_samples, n_features)."""
        return self._shared_arrays("feature_matrix")[0]

    def label_matrix(self) -> F64:
        """The shared label matrix Y, read-only, of shape (n_samples, n_tasks), NaN = missing."""
        return self._shared_arrays("label_matrix")[1]

    # ------------------------------------------------------------------ conversions
    def to_per_task(self) -> MultiTaskData:
        """Per-task form: each task keeps the rows where its label is observed.

        Returns
        -------
        MultiTaskData
            ``self`` when already per-task.

        Examples
        --------
        >>> import numpy as np
        >>> data = MultiTaskData(np.eye(3), [[1.0, np.nan], [2.0, 5.0], [np.nan, 6.0]])
        >>> data.to_per_task().task_sizes
        {'task_0': 2, 'task_1': 2}
        """
        if self._tasks is not None:
            return self
        return self._derive(self._names, tasks=[self.task(n) for n in self._names])

    def to_shared(self) -> MultiTaskData:
        """Shared form in the block-missing layout.

        Every task's rows are stacked in task order; row ``i`` of task ``t`` has its label
        in column ``t`` of Y and NaN in every other column. Deep models train on
        per-task data this way, masking the missing labels in the loss.

        Returns
        -------
        MultiTaskData
            ``self`` when already shared.

        Examples
        --------
        >>> import numpy as np
        >>> data = MultiTaskData.from_tasks([(np.zeros((2, 1)), [1.0, 2.0]),
        ...                                  (np.ones((1, 1)), [3.0])])
        >>> data.to_shared().label_matrix().tolist()
        [[1.0, nan], [2.0, nan], [nan, 3.0]]
        """
        if self._tasks is None:
            return self
        sizes = [y.size for _, y in self._tasks]
        Y = np.full((sum(sizes), self.n_tasks), np.nan)
        start = 0
        for t, (_, y) in enumerate(self._tasks):
            Y[start : start + y.size, t] = y
            start += y.size
        X = np.concatenate([x for x, _ in self._tasks])
        return self._derive(self._names, X=X, Y=Y)

    # ------------------------------------------------------------------ subsetting
    def subset(self, tasks: Sequence[str]) -> MultiTaskData:
        """Keep some tasks, in the order given (shared form keeps every row).

        Parameters
        ----------
        tasks : sequence of str
            Distinct task names.

        Returns
        -------
        MultiTaskData

        Raises
        ------
        ValueError
            If a name is unknown (the known ones are listed), repeated, or none is given.

        Examples
        --------
        >>> import numpy as np
        >>> data = MultiTaskData(np.eye(2), np.eye(2), task_names=["a", "b"])
        >>> data.subset(["b"]).task_names
        ('b',)
        """
        names = check_names(tasks, count=len(tasks), argument="tasks", what="task")
        if not names:
            raise ValueError("tasks is empty: keep at least one task")
        idx = [self._index(n) for n in names]
        if self._tasks is not None:
            return self._derive(names, tasks=[self._tasks[i] for i in idx])
        assert self._X is not None and self._Y is not None
        return self._derive(names, X=self._X, Y=self._Y[:, idx])

    def _check_rows_label_every_task(self, rows: NDArray[np.intp], part: str) -> None:
        _, Y = self._shared_arrays("split")
        counts = (~np.isnan(Y[rows])).sum(axis=0)
        for name, count in zip(self._names, counts, strict=True):
            if count == 0:
                raise ValueError(
                    f"task {name!r} has no observed label in the {part} ({rows.size} rows); "
                    "it has too few labels for this split, so drop it or change the sizes"
                )

    def _take_rows(self, rows: NDArray[np.intp], part: str) -> MultiTaskData:
        X, Y = self._shared_arrays("select_rows")
        self._check_rows_label_every_task(rows, part)
        return self._derive(self._names, X=X[rows], Y=Y[rows])

    def _take_tasks(self, rows: Sequence[NDArray[np.intp]]) -> MultiTaskData:
        assert self._tasks is not None
        return self._derive(
            self._names, tasks=[(x[r], y[r]) for (x, y), r in zip(self._tasks, rows, strict=True)]
        )

    # ------------------------------------------------------------------ torch views
    def torch_dataset(self) -> MultiTaskTorchDataset:
        """Torch ``Dataset`` of ``(x, {task: y})`` items; see :func:`torch_dataset`."""
        from ._torch_views import torch_dataset

        return torch_dataset(self)

    def task_datasets(self) -> dict[str, TensorDataset]:
        """``{task: Dataset of (x, y)}`` for per-task sampling; see :func:`task_datasets`."""
        from ._torch_views import task_datasets

        return task_datasets(self)

    def __repr__(self) -> str:
        sizes = self.task_sizes
        shown = [f"{n!r}: {sizes[n]} {self._kinds[n]}" for n in self._names[:_REPR_TASKS]]
        if self.n_tasks > _REPR_TASKS:
            shown.append(f"... +{self.n_tasks - _REPR_TASKS} more")
        return (
            f"MultiTaskData(form={self._form!r}, n_tasks={self.n_tasks}, "
            f"n_samples={self.n_samples}, n_features={self.n_features}, "
            f"tasks={{{', '.join(shown)}}})"
        )
