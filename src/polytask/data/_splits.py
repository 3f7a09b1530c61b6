"""Seeded train/validation/test splits and k-fold partitions of multi-task data.

Per-task data are split task by task with the same ratio (the protocol of MALSAR and of
Argyriou, Evgeniou & Pontil 2008 on School): every task keeps at least one sample on each
side. Shared-design data are split by rows.

References
----------
.. [1] A. Argyriou, T. Evgeniou, M. Pontil, "Convex multi-task feature learning",
   Machine Learning 73(3), 2008.
.. [2] J. Zhou, J. Chen, J. Ye, "MALSAR: Multi-tAsk Learning via StructurAl
   Regularization", Arizona State University, 2011.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from ._containers import MultiTaskData

IntArray = NDArray[np.intp]
RandomState = int | np.random.Generator | None


def as_rng(random_state: Any) -> np.random.Generator:
    """Return a NumPy ``Generator`` from ``None``, an int seed or a ``Generator``.

    Parameters
    ----------
    random_state : None, int or numpy.random.Generator
        ``None`` draws fresh entropy; an int gives reproducible splits; a ``Generator``
        is used (and advanced) as is.

    Returns
    -------
    numpy.random.Generator
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (
        isinstance(random_state, Integral) and not isinstance(random_state, bool)
    ):
        return np.random.default_rng(None if random_state is None else int(random_state))
    raise TypeError(
        "random_state must be None, an int or a numpy.random.Generator, "
        f"got {type(random_state).__name__}"
    )


def part_sizes(n: int, fractions: Sequence[float]) -> IntArray:
    """Split ``n`` items into parts close to ``fractions`` with at least one item each.

    Parts start at ``floor(fraction * n)`` (at least 1); leftover items go to the parts
    furthest below their share, surplus items leave the parts furthest above theirs.

    Parameters
    ----------
    n : int
        Number of items; must be at least ``len(fractions)``.
    fractions : sequence of float
        Positive shares summing to one.

    Returns
    -------
    ndarray of int of shape (len(fractions),)
        Part sizes, each at least 1, summing to ``n``.

    Examples
    --------
    >>> part_sizes(20, [0.75, 0.25]).tolist()
    [15, 5]
    >>> part_sizes(3, [0.8, 0.1, 0.1]).tolist()
    [1, 1, 1]
    """
    share = np.asarray(fractions, dtype=float) * n
    sizes = np.maximum(np.floor(share).astype(np.intp), 1)
    while sizes.sum() < n:
        sizes[int(np.argmax(share - sizes))] += 1
    while sizes.sum() > n:
        excess = np.where(sizes > 1, sizes - share, -np.inf)
        sizes[int(np.argmax(excess))] -= 1
    return sizes


def random_parts(n: int, fractions: Sequence[float], rng: np.random.Generator) -> list[IntArray]:
    """Randomly partition ``range(n)`` into parts sized by :func:`part_sizes`.

    Each part's indices are sorted, so samples keep their original order.
    """
    order = rng.permutation(n)
    bounds = np.cumsum(part_sizes(n, fractions))[:-1]
    return [np.sort(part) for part in np.split(order, bounds)]


def check_fractions(**fractions: Any) -> list[float]:
    """Check that each fraction lies in (0, 1) and that they sum to less than one.

    Returns the fractions followed by the remainder (the test share).
    """
    values = []
    for name, value in fractions.items():
        if not isinstance(value, Real) or isinstance(value, bool) or not 0.0 < float(value) < 1.0:
            raise ValueError(f"{name} must be a fraction strictly between 0 and 1, got {value!r}")
        values.append(float(value))
    rest = 1.0 - sum(values)
    if rest <= 1e-12:
        names = " + ".join(fractions)
        raise ValueError(f"{names} = {sum(values):g} leaves no test samples; it must be below 1")
    return [*values, rest]


def split_data(
    data: MultiTaskData, fractions: list[float], random_state: Any, part_names: Sequence[str]
) -> tuple[MultiTaskData, ...]:
    """Split ``data`` into ``len(fractions)`` parts (per task, or by rows when shared)."""
    rng = as_rng(random_state)
    k = len(fractions)
    if data.form == "per_task":
        per_task: list[list[IntArray]] = []
        for name, size in data.task_sizes.items():
            if size < k:
                raise ValueError(
                    f"task {name!r} has {size} sample(s); splitting it into "
                    f"{', '.join(part_names)} needs at least {k} (one in each part)"
                )
            per_task.append(random_parts(size, fractions, rng))
        return tuple(data._take_tasks([parts[i] for parts in per_task]) for i in range(k))
    if data.n_samples < k:
        raise ValueError(f"data has {data.n_samples} rows; a {k}-way split needs at least {k}")
    parts = random_parts(data.n_samples, fractions, rng)
    return tuple(data._take_rows(parts[i], part_names[i]) for i in range(k))


def kfold_data(
    data: MultiTaskData, n_splits: Any, random_state: Any
) -> Iterator[tuple[MultiTaskData, MultiTaskData]]:
    """Check the fold count, draw the folds, and lazily yield ``(train, test)`` pairs."""
    if not isinstance(n_splits, Integral) or isinstance(n_splits, bool) or n_splits < 2:
        raise ValueError(f"n_splits must be an int of at least 2, got {n_splits!r}")
    k = int(n_splits)
    rng = as_rng(random_state)
    if data.form == "per_task":
        folds: list[list[IntArray]] = []
        for name, size in data.task_sizes.items():
            if size < k:
                raise ValueError(
                    f"task {name!r} has {size} sample(s), fewer than n_splits={k}; "
                    "lower n_splits or drop the task"
                )
            folds.append([np.sort(f) for f in np.array_split(rng.permutation(size), k)])
        sizes = list(data.task_sizes.values())
        pairs = [
            (
                [np.setdiff1d(np.arange(n), f[i]) for n, f in zip(sizes, folds, strict=True)],
                [f[i] for f in folds],
            )
            for i in range(k)
        ]
        return ((data._take_tasks(tr), data._take_tasks(te)) for tr, te in pairs)
    if data.n_samples < k:
        raise ValueError(f"data has {data.n_samples} rows, fewer than n_splits={k}")
    row_folds = [np.sort(f) for f in np.array_split(rng.permutation(data.n_samples), k)]
    row_pairs = [(np.setdiff1d(np.arange(data.n_samples), f), f) for f in row_folds]
    for i, (tr, te) in enumerate(row_pairs):
        data._check_rows_label_every_task(tr, f"training fold {i}")
        data._check_rows_label_every_task(te, f"test fold {i}")
    return (
        (data._take_rows(tr, f"training fold {i}"), data._take_rows(te, f"test fold {i}"))
        for i, (tr, te) in enumerate(row_pairs)
    )


class SplitMethods:
    """Row selection and splits of :class:`~polytask.data.MultiTaskData` (one
    responsibility, kept in this module; ``MultiTaskData`` inherits them)."""

    def select_rows(self, idx: ArrayLike) -> MultiTaskData:
        """Rows of the shared form, by integer indices or a boolean mask.

        Parameters
        ----------
        idx : array-like of int of shape (n_selected,), or of bool of shape (n_samples,)
            Row indices or a row mask.

        Returns
        -------
        MultiTaskData
            Shared-form data on the selected rows.

        Raises
        ------
        ValueError
            If the data are per-task, an index is out of range, or a task keeps no
            observed label (named).
        TypeError
            If ``idx`` holds neither integers nor booleans.

        Examples
        --------
        >>> import numpy as np
        >>> from polytask.data import MultiTaskData
        >>> data = MultiTaskData(np.eye(3), [1.0, 2.0, 3.0])
        >>> data.select_rows([0, 2]).label_matrix().ravel().tolist()
        [1.0, 3.0]
        """
        data = cast("MultiTaskData", self)
        X, _ = data._shared_arrays("select_rows")
        rows = np.asarray(idx)
        if rows.dtype == bool:
            if rows.shape != (X.shape[0],):
                raise ValueError(f"idx mask has shape {rows.shape}, expected ({X.shape[0]},)")
            rows = np.flatnonzero(rows)
        elif rows.dtype.kind not in "iu" or rows.ndim != 1:
            raise TypeError("idx must be a 1-D array of integer row indices or a boolean mask")
        elif rows.size and (rows.min() < -X.shape[0] or rows.max() >= X.shape[0]):
            raise ValueError(f"idx holds row indices outside [0, {X.shape[0]})")
        return data._take_rows(rows.astype(np.intp), "selected rows")

    def train_test_split(
        self, train_size: float = 0.75, random_state: RandomState = None
    ) -> tuple[MultiTaskData, MultiTaskData]:
        """Random train/test split, per task (per-task form) or by rows (shared form).

        In the per-task form every task's samples are split with the ratio
        ``train_size`` (the protocol of MALSAR [1]_ and of Argyriou et al. on School
        [2]_): task ``t`` gets ``train_size * n_t`` training samples, rounded, and at
        least one sample on each side. The shared form splits rows; every task must
        keep an observed label on both sides. Samples keep their original order within
        each part.

        Parameters
        ----------
        train_size : float, default=0.75
            Fraction in (0, 1) of each task's samples (or of the rows) used for training.
        random_state : int, numpy.random.Generator or None
            Seed for reproducible splits.

        Returns
        -------
        train, test : MultiTaskData

        Raises
        ------
        ValueError
            If a task has fewer than two samples, naming it.

        References
        ----------
        .. [1] J. Zhou, J. Chen, J. Ye, "MALSAR: Multi-tAsk Learning via StructurAl
           Regularization", Arizona State University, 2011.
        .. [2] A. Argyriou, T. Evgeniou, M. Pontil, "Convex multi-task feature
           learning", Machine Learning 73(3), 2008.

        Examples
        --------
        >>> import numpy as np
        >>> from polytask.data import MultiTaskData
        >>> data = MultiTaskData.from_tasks({"a": (np.zeros((20, 2)), np.arange(20.0)),
        ...                                  "b": (np.zeros((8, 2)), np.arange(8.0))})
        >>> train, test = data.train_test_split(0.75, random_state=0)
        >>> train.task_sizes, test.task_sizes
        ({'a': 15, 'b': 6}, {'a': 5, 'b': 2})
        """
        data = cast("MultiTaskData", self)
        fractions = check_fractions(train_size=train_size)
        train, test = split_data(data, fractions, random_state, ("train part", "test part"))
        return train, test

    def train_val_test_split(
        self,
        train: float = 0.8,
        val: float = 0.1,
        random_state: RandomState = None,
    ) -> tuple[MultiTaskData, MultiTaskData, MultiTaskData]:
        """Random train/validation/test split (per task, or by rows); test gets the rest.

        Parameters
        ----------
        train, val : float, default=0.8, 0.1
            Fractions in (0, 1) with ``train + val < 1``.
        random_state : int, numpy.random.Generator or None
            Seed for reproducible splits.

        Returns
        -------
        train, val, test : MultiTaskData
            Every task keeps at least one sample in each part.

        Raises
        ------
        ValueError
            If a fraction is outside (0, 1), nothing is left for the test part, or a
            task has fewer than three samples (named).

        Examples
        --------
        >>> import numpy as np
        >>> from polytask.data import MultiTaskData
        >>> data = MultiTaskData.from_tasks({"a": (np.zeros((10, 1)), np.arange(10.0))})
        >>> [part.task_sizes["a"] for part in data.train_val_test_split(0.6, 0.2, 0)]
        [6, 2, 2]
        """
        fractions = check_fractions(train=train, val=val)
        parts = ("train part", "validation part", "test part")
        tr, va, te = split_data(cast("MultiTaskData", self), fractions, random_state, parts)
        return tr, va, te

    def kfold(
        self, n_splits: int = 5, random_state: RandomState = None
    ) -> Iterator[tuple[MultiTaskData, MultiTaskData]]:
        """K-fold ``(train, test)`` pairs: folds per task (per-task form) or of rows (shared).

        The folds are drawn and checked when ``kfold`` is called, then the pairs are
        built lazily.

        Parameters
        ----------
        n_splits : int, default=5
            Number of folds, at least 2.
        random_state : int, numpy.random.Generator or None
            Seed for reproducible folds.

        Returns
        -------
        iterator of (MultiTaskData, MultiTaskData)

        Raises
        ------
        ValueError
            If a task has fewer samples than folds, naming it.

        Examples
        --------
        >>> import numpy as np
        >>> from polytask.data import MultiTaskData
        >>> data = MultiTaskData.from_tasks([(np.zeros((6, 1)), np.ones(6))])
        >>> [test.n_samples for _, test in data.kfold(3, random_state=0)]
        [2, 2, 2]
        """
        return kfold_data(cast("MultiTaskData", self), n_splits, random_state)
