"""Tests of MultiTaskData's seeded splits: per-task ratios (MALSAR), rows, k-fold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from polytask.data import MultiTaskData

if TYPE_CHECKING:
    from conftest import Builders


@pytest.mark.parametrize("train_size", [0.5, 0.75, 0.9])
def test_per_task_split_ratio_disjoint_exhaustive(train_size: float, mtd: Builders) -> None:
    data = mtd.per_task({"a": 12, "b": 7, "c": 20, "d": 2})
    train, test = data.train_test_split(train_size, random_state=1)
    assert train.form == test.form == "per_task"
    for name, n in data.task_sizes.items():
        n_train, n_test = train.task_sizes[name], test.task_sizes[name]
        assert n_train + n_test == n and n_train >= 1 and n_test >= 1
        assert abs(n_train - train_size * n) < 1 or n_train in (1, n - 1)
        assert not mtd.ids(train, name) & mtd.ids(test, name)
        assert mtd.ids(train, name) | mtd.ids(test, name) == mtd.ids(data, name)
    assert mtd.pairs(train) + mtd.pairs(test) == mtd.pairs(data)


def test_malsar_sizes_for_exact_ratios(mtd: Builders) -> None:
    data = mtd.per_task({"a": 20, "b": 8, "c": 100})
    train, test = data.train_test_split(0.75, random_state=0)
    assert train.task_sizes == {"a": 15, "b": 6, "c": 75}
    assert test.task_sizes == {"a": 5, "b": 2, "c": 25}


@pytest.mark.parametrize("form", ["shared", "per_task"])
def test_splits_are_reproducible_with_a_seed(form: str, mtd: Builders) -> None:
    data = mtd.build(form)
    a = data.train_test_split(0.7, random_state=3)
    b = data.train_test_split(0.7, random_state=np.random.default_rng(3))
    c = data.train_test_split(0.7, random_state=4)
    assert [mtd.pairs(part) for part in a] == [mtd.pairs(part) for part in b]
    assert mtd.pairs(a[1]) != mtd.pairs(c[1])


def test_split_needs_two_samples_per_task(mtd: Builders) -> None:
    data = mtd.per_task({"a": 10, "tiny": 1})
    with pytest.raises(ValueError, match=r"task 'tiny' has 1 sample\(s\).*at least 2"):
        data.train_test_split(0.75, random_state=0)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.2, True, "0.5", None])
def test_split_fraction_must_be_in_open_unit_interval(bad: Any, mtd: Builders) -> None:
    with pytest.raises(ValueError, match="train_size must be a fraction strictly between 0 and 1"):
        mtd.per_task().train_test_split(bad)


def test_random_state_type_is_checked(mtd: Builders) -> None:
    with pytest.raises(TypeError, match="random_state must be None, an int or"):
        mtd.per_task().train_test_split(0.5, random_state="seed")  # type: ignore[arg-type]


def test_train_val_test_split_per_task(mtd: Builders) -> None:
    data = mtd.per_task({"a": 50, "b": 3, "c": 21})
    parts = data.train_val_test_split(0.6, 0.2, random_state=0)
    assert mtd.pairs(parts[0]) + mtd.pairs(parts[1]) + mtd.pairs(parts[2]) == mtd.pairs(data)
    for name, n in data.task_sizes.items():
        sizes = [part.task_sizes[name] for part in parts]
        assert sum(sizes) == n and min(sizes) >= 1
        sets = [mtd.ids(part, name) for part in parts]
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert [part.task_sizes["a"] for part in parts] == [30, 10, 10]


@pytest.mark.parametrize(
    ("train", "val", "match"),
    [
        (0.8, 0.2, "leaves no test samples"),
        (0.5, 0.0, "val must be a fraction"),
        (1.0, 0.1, "train must be a fraction"),
    ],
)
def test_train_val_test_fraction_errors(
    train: float, val: float, match: str, mtd: Builders
) -> None:
    with pytest.raises(ValueError, match=match):
        mtd.per_task().train_val_test_split(train, val)


def test_train_val_test_needs_three_samples_per_task(mtd: Builders) -> None:
    with pytest.raises(ValueError, match=r"task 'b' has 2 sample\(s\).*at least 3"):
        mtd.per_task({"a": 9, "b": 2}).train_val_test_split(random_state=0)


def test_shared_split_by_rows_keeps_missing_labels(mtd: Builders) -> None:
    X, Y = mtd.shared_arrays(40)
    data = MultiTaskData(X, Y, task_names=list(mtd.kinds), kinds=mtd.kinds)
    train, test = data.train_test_split(0.75, random_state=0)
    assert (train.n_samples, test.n_samples) == (30, 10)
    rows_train = train.feature_matrix()[:, 0].astype(int)
    rows_test = test.feature_matrix()[:, 0].astype(int)
    assert sorted([*rows_train, *rows_test]) == list(range(40))
    np.testing.assert_array_equal(train.label_matrix(), Y[rows_train])  # NaN stays NaN
    np.testing.assert_array_equal(test.label_matrix(), Y[rows_test])
    tr, va, te = data.train_val_test_split(random_state=0)
    assert (tr.n_samples, va.n_samples, te.n_samples) == (32, 4, 4)


def test_shared_split_names_a_task_left_without_labels() -> None:
    Y = np.column_stack([np.arange(10.0), np.r_[1.0, np.full(9, np.nan)]])
    data = MultiTaskData(np.ones((10, 1)), Y, task_names=["common", "rare"])
    with pytest.raises(ValueError, match=r"task 'rare' has no observed label in the (train|test)"):
        data.train_test_split(0.5, random_state=0)


def test_kfold_per_task_partitions_each_task(mtd: Builders) -> None:
    data = mtd.per_task({"a": 12, "b": 7, "c": 3})
    folds = list(data.kfold(3, random_state=0))
    assert len(folds) == 3
    for name, n in data.task_sizes.items():
        tests = [mtd.ids(test, name) for _, test in folds]
        assert set().union(*tests) == mtd.ids(data, name)
        assert sum(len(t) for t in tests) == n  # disjoint
        assert max(map(len, tests)) - min(map(len, tests)) <= 1
        for (train, _), test_ids in zip(folds, tests, strict=True):
            assert mtd.ids(train, name) == mtd.ids(data, name) - test_ids
    again = [mtd.pairs(test) for _, test in data.kfold(3, random_state=0)]
    assert again == [mtd.pairs(test) for _, test in folds]


def test_kfold_shared_partitions_rows(mtd: Builders) -> None:
    data = mtd.shared(30)
    folds = list(data.kfold(5, random_state=2))
    test_rows = [test.feature_matrix()[:, 0].astype(int) for _, test in folds]
    assert sorted(np.concatenate(test_rows).tolist()) == list(range(30))
    for (train, _), rows in zip(folds, test_rows, strict=True):
        assert set(train.feature_matrix()[:, 0].astype(int)) == set(range(30)) - set(rows)


@pytest.mark.parametrize("n_splits", [1, 0, 2.5, True])
def test_kfold_n_splits_is_checked(n_splits: Any, mtd: Builders) -> None:
    with pytest.raises(ValueError, match="n_splits must be an int of at least 2"):
        mtd.per_task().kfold(n_splits)


def test_kfold_errors_name_the_task_before_iterating(mtd: Builders) -> None:
    with pytest.raises(ValueError, match=r"task 'b' has 2 sample\(s\), fewer than n_splits=3"):
        mtd.per_task({"a": 9, "b": 2}).kfold(3)
    Y = np.column_stack([np.arange(9.0), np.r_[1.0, np.full(8, np.nan)]])
    shared = MultiTaskData(np.ones((9, 1)), Y, task_names=["common", "rare"])
    with pytest.raises(
        ValueError, match=r"task 'rare' has no observed label in the (training|test) fold"
    ):
        shared.kfold(3, random_state=0)  # raised eagerly, not on iteration
