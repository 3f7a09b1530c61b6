"""Split methods of an experiment: k-fold test parts and scaffold parts of molecule sets.

``split.method`` (:class:`polytask._config_sections.SplitConfig`) chooses how the data
of every seed are divided into a training part (``fit``, itself divided into ``train``
and ``val``) and a test part:

- ``random`` (default): a new random test part for every seed (per task for per-task
  data), then a random validation part of the rest.
- ``kfold``: one permutation, drawn from ``split.fold_seed``, is cut into
  ``split.folds`` folds (per task for per-task data, so every task is folded on its own).
  Seed ``s`` tests on fold ``s % folds`` and draws its validation part from the other
  folds with seed ``s``; seeds ``0 .. folds - 1`` thus test every sample exactly once,
  which is k-fold cross-validation (the protocol of the Mulan multi-target sets, run
  with ``seeds: 10`` and ``split: {method: kfold, folds: 10}``).
- ``scaffold``: the deterministic Bemis-Murcko scaffold split of a molecule set into
  train, validation and test parts, whole scaffolds going to the training part first
  (:func:`polytask.data.scaffold_split`, DeepChem's convention). The parts are **the same
  for every seed**: the seeds then vary only what the models draw (initial weights,
  batches, cross-validation folds), not the data.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from polytask import _registry as reg
from polytask._config_checks import ConfigError
from polytask._config_sections import SplitConfig
from polytask.data import MultiTaskData

IntArray = NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class RowParts:
    """Row indices of a split fixed when the data are loaded (the scaffold split).

    Attributes
    ----------
    train, val, test : ndarray of int
        Sorted, disjoint row indices of the training, validation and test parts.

    Examples
    --------
    >>> import numpy as np
    >>> parts = RowParts(np.array([0, 3]), np.array([1]), np.array([2]))
    >>> parts.fit.tolist()
    [0, 1, 3]
    """

    train: IntArray
    val: IntArray
    test: IntArray

    @property
    def fit(self) -> IntArray:
        """The whole training part: ``train`` and ``val`` rows, sorted."""
        return np.sort(np.concatenate([self.train, self.val]))


def scaffold_fractions(test: float, val: float) -> tuple[float, float, float]:
    """Train, validation and test shares of a scaffold split.

    ``val`` is a fraction of the training part, as for the random split, so the shares
    are ``(1 - test - val (1 - test), val (1 - test), test)``.

    Parameters
    ----------
    test : float
        Test fraction, in (0, 1).
    val : float
        Validation fraction of the rest, in (0, 1).

    Returns
    -------
    tuple of float
        The three shares, summing to one.

    Examples
    --------
    >>> [round(f, 2) for f in scaffold_fractions(0.2, 0.25)]
    [0.6, 0.2, 0.2]
    """
    val_share = val * (1.0 - test)
    return (1.0 - test - val_share, val_share, test)


def scaffold_setting(raw: Any, featurize: Callable[[Sequence[str]], ArrayLike] | None,
                     split: SplitConfig, dataset: str) -> tuple[MultiTaskData, RowParts]:
    """Featurise a molecule set and compute its scaffold split on the SMILES.

    Parameters
    ----------
    raw : MoleculeTasks
        The dataset as its loader returns it without a featuriser.
    featurize : callable or None
        ``dataset.featurizer``, mapping the SMILES to an ``(n_molecules, n_features)``
        matrix.
    split : SplitConfig
        Gives the test and validation fractions (:func:`scaffold_fractions`).
    dataset : str
        The dataset's name (for messages).

    Returns
    -------
    data : MultiTaskData
        The featurised molecules, one row per SMILES in the file's order.
    parts : RowParts
        The scaffold split of those rows.

    Raises
    ------
    ConfigError
        If the dataset has no SMILES (``split.method``), no featuriser is configured
        (``dataset.featurizer``), or a part of the split is empty.
    """
    from polytask.data import scaffold_split
    from polytask.data.datasets import MoleculeTasks

    if not isinstance(raw, MoleculeTasks):
        raise ConfigError(f"split.method: 'scaffold' needs molecules given as SMILES, but "
                          f"dataset {dataset!r} has none (it loads as {type(raw).__name__}); "
                          "use split.method 'random' or 'kfold'")
    if featurize is None:
        raise ConfigError(f"dataset.featurizer: dataset {dataset!r} holds raw inputs "
                          f"(SMILES); choose a featurizer, known: {sorted(reg.featurizers())}")
    parts = scaffold_split(list(raw.smiles), scaffold_fractions(split.test, split.val))
    for name, rows in zip(("training", "validation", "test"), parts, strict=True):
        if rows.size == 0:
            raise ConfigError(f"split.method: the scaffold split of the {raw.n_molecules} "
                              f"molecules of {dataset!r} leaves the {name} part empty "
                              "(whole scaffolds do not fit its share); change split.test "
                              "or split.val")
    return raw.to_data(featurize(raw.smiles)), RowParts(*parts)


def take_rows(data: MultiTaskData, rows: IntArray, part: str) -> MultiTaskData:
    """The rows ``rows`` of shared-design data; a task left without labels is named.

    Raises
    ------
    ConfigError
        If a task has no observed label in those rows.
    """
    try:
        return data.select_rows(rows)
    except ValueError as exc:
        raise ConfigError(f"split.method: the scaffold {part} part: {exc}") from exc


def kfold_fit_test(data: MultiTaskData, split: SplitConfig, seed: int
                   ) -> tuple[MultiTaskData, MultiTaskData]:
    """The training part and test fold of ``seed`` under ``split.method: kfold``.

    The folds are those of :meth:`MultiTaskData.kfold` with ``random_state=fold_seed``:
    one permutation of the rows (of each task's samples, for per-task data) cut into
    ``folds`` nearly equal folds. ``seed`` tests on fold ``seed % folds``.

    Parameters
    ----------
    data : MultiTaskData
        The selected tasks of a setting.
    split : SplitConfig
        With ``folds`` and ``fold_seed``.
    seed : int
        The run seed.

    Returns
    -------
    fit, test : MultiTaskData

    Raises
    ------
    ConfigError
        If a task has fewer samples (observed labels) than folds, or a fold leaves a
        task without labels; the task is named.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.data import MultiTaskData
    >>> data = MultiTaskData.from_tasks({"a": (np.zeros((6, 1)), np.arange(6.0)),
    ...                                  "b": (np.zeros((9, 1)), np.arange(9.0))})
    >>> fit, test = kfold_fit_test(data, SplitConfig(method="kfold", folds=3), seed=4)
    >>> fit.task_sizes, test.task_sizes
    ({'a': 4, 'b': 6}, {'a': 2, 'b': 3})
    """
    k = split.folds
    if k is None or k < 2:
        raise ConfigError(f"split.folds: expected an integer >= 2, got {k!r}")
    for task, size in data.task_sizes.items():
        if size < k:
            raise ConfigError(f"split.folds: task {task!r} has {size} sample(s) with a "
                              f"label, fewer than the {k} folds; lower split.folds or leave "
                              "the task out (tasks.select)")
    try:
        pairs = data.kfold(k, random_state=split.fold_seed)
    except ValueError as exc:
        raise ConfigError(f"split.folds: {exc}") from exc
    fit, test = next(itertools.islice(pairs, seed % k, None))
    return fit, test


__all__ = ["RowParts", "kfold_fit_test", "scaffold_fractions", "scaffold_setting", "take_rows"]
