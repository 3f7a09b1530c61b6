"""pandas input and output for :class:`~polytask.data.MultiTaskData`.

pandas is imported inside the functions, so that importing polytask stays light.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd

    from ._containers import MultiTaskData

KindsArg = str | Sequence[str] | Mapping[str, str]


class FrameMethods:
    """The pandas methods of :class:`~polytask.data.MultiTaskData` (kept in this module;
    ``MultiTaskData`` inherits them)."""

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        feature_columns: Sequence[Hashable],
        task_columns: Sequence[Hashable] | None = None,
        *,
        task_column: Hashable | None = None,
        label_column: Hashable | None = None,
        kinds: KindsArg = "regression",
    ) -> MultiTaskData:
        """Build from a pandas DataFrame, wide (shared form) or long (per-task form).

        Parameters
        ----------
        df : pandas.DataFrame
            The data; missing labels are NaN or ``pd.NA``.
        feature_columns : sequence of column labels
            Numeric feature columns; their names (as str) become ``feature_names``.
        task_columns : sequence of column labels, optional
            Wide format: one label column per task, giving the shared form.
        task_column, label_column : column label, optional
            Long format (as written by :meth:`to_frame`): the column naming each row's
            task and the column holding its label, giving the per-task form. Tasks are
            ordered by first appearance.
        kinds : str, sequence of str or mapping of str to str, default="regression"
            As in :class:`MultiTaskData`.

        Returns
        -------
        MultiTaskData

        Raises
        ------
        ValueError
            If a column is missing, used twice, or both or neither formats are given.
        TypeError
            If ``df`` is not a DataFrame or a feature or label column is not numeric.

        Examples
        --------
        >>> import pandas as pd
        >>> from polytask.data import MultiTaskData
        >>> df = pd.DataFrame({"x": [0.0, 1.0, 2.0], "a": [1.0, None, 3.0], "b": [0, 1, 1]})
        >>> data = MultiTaskData.from_frame(df, ["x"], ["a", "b"],
        ...                                 kinds={"a": "regression", "b": "binary"})
        >>> data.form, data.task_sizes
        ('shared', {'a': 2, 'b': 3})
        >>> back = MultiTaskData.from_frame(data.to_frame(), ["x"],
        ...                                 task_column="task", label_column="label")
        >>> back.form, back.task_sizes
        ('per_task', {'a': 2, 'b': 3})
        """
        import pandas as pd

        factory = cast("type[MultiTaskData]", cls)
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        wide = task_columns is not None
        long = task_column is not None or label_column is not None
        if wide == long:
            raise ValueError(
                "give either task_columns (wide format, one label column per task) or "
                "task_column and label_column (long format), not both or neither"
            )
        features = list(feature_columns)
        if not features:
            raise ValueError("feature_columns is empty: give at least one feature column")
        feature_names = [str(c) for c in features]
        if wide:
            assert task_columns is not None
            targets = list(task_columns)
            _check_columns(df, features + targets)
            X = _numeric(df, features)
            Y = _numeric(df, targets)
            return factory(X, Y, [str(c) for c in targets], kinds, feature_names)
        if task_column is None or label_column is None:
            raise ValueError("the long format needs both task_column and label_column")
        _check_columns(df, [*features, task_column, label_column])
        owner = df[task_column]
        if owner.isna().any():
            raise ValueError(
                f"task_column {task_column!r} has {int(owner.isna().sum())} missing value(s); "
                "every row must name its task"
            )
        X = _numeric(df, features)
        y = _numeric(df, [label_column])[:, 0]
        owner_arr = owner.to_numpy()
        tasks = {str(t): (X[owner_arr == t], y[owner_arr == t]) for t in pd.unique(owner_arr)}
        if len(tasks) != len(pd.unique(owner_arr)):
            raise ValueError(f"task_column {task_column!r} has values that read as the same name")
        return factory.from_tasks(tasks, kinds, feature_names)

    def to_frame(self) -> pd.DataFrame:
        """Long-format DataFrame of the observed pairs: columns task, label, features.

        Returns
        -------
        pandas.DataFrame of shape (n_observed, 2 + n_features)
            One row per observed ``(task, y, x)``, tasks in order. Read it back with
            ``from_frame(df, feature_names, task_column="task", label_column="label")``.

        Raises
        ------
        ValueError
            If a feature is itself called ``"task"`` or ``"label"``.

        Examples
        --------
        >>> import numpy as np
        >>> from polytask.data import MultiTaskData
        >>> data = MultiTaskData(np.eye(2), [[1.0, np.nan], [2.0, 3.0]], ["a", "b"])
        >>> data.to_frame().columns.tolist()
        ['task', 'label', 'feature_0', 'feature_1']
        >>> data.to_frame()["task"].tolist()
        ['a', 'a', 'b']
        """
        import pandas as pd

        clash = {"task", "label"} & set(cast("MultiTaskData", self).feature_names)
        if clash:
            raise ValueError(
                f"feature name(s) {sorted(clash)} clash with the columns task and label of "
                "the long format; rename those features"
            )
        data = cast("MultiTaskData", self)
        X, y, ids = data.stacked()
        frame = pd.DataFrame(X, columns=list(data.feature_names))
        frame.insert(0, "label", y)
        frame.insert(0, "task", np.asarray(data.task_names, dtype=object)[ids])
        return frame


def _check_columns(df: pd.DataFrame, columns: list[Hashable]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"df has no column(s) {missing}; its columns are {list(df.columns)}")
    seen: set[Hashable] = set()
    for column in columns:
        if column in seen:
            raise ValueError(
                f"column {column!r} is used twice (as a feature, a task or a label column)"
            )
        seen.add(column)


def _numeric(df: pd.DataFrame, columns: list[Any]) -> NDArray[np.float64]:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    for column in columns:
        dtype = df[column].dtype
        if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype)):
            raise TypeError(
                f"column {column!r} must be numeric (bool, int or float), got dtype {dtype}; "
                "encode it as numbers first"
            )
    return df[columns].to_numpy(dtype=np.float64, na_value=np.nan)
