"""Tests of MultiTaskData: construction, validation, accessors, conversions, subsets."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from polytask.data import MultiTaskData

if TYPE_CHECKING:
    from conftest import Builders


# ---------------------------------------------------------------- construction
def test_shared_properties_match_the_arrays(mtd: Builders) -> None:
    X, Y = mtd.shared_arrays()
    data = MultiTaskData(X, Y, task_names=list(mtd.kinds), kinds=mtd.kinds)
    assert data.form == "shared"
    assert data.task_names == ("score", "pass", "grade")
    assert data.kinds == mtd.kinds
    assert (data.n_tasks, data.n_features, data.n_samples) == (3, 3, 30)
    assert data.task_sizes == {n: int((~np.isnan(Y[:, j])).sum()) for j, n in enumerate(mtd.kinds)}
    assert data.feature_names == ("feature_0", "feature_1", "feature_2")
    np.testing.assert_array_equal(data.label_matrix(), Y)  # NaN pattern kept
    np.testing.assert_array_equal(data.feature_matrix(), X)


def test_one_dimensional_Y_is_one_task_with_default_name() -> None:
    data = MultiTaskData(np.ones((4, 2)), [1.0, 2.0, np.nan, 4.0])
    assert data.task_names == ("task_0",)
    assert data.task_sizes == {"task_0": 3}


@pytest.mark.parametrize(
    "kinds",
    [
        ["regression", "binary", "multiclass"],
        ("regression", "binary", "multiclass"),
        {"grade": "multiclass", "score": "regression", "pass": "binary"},
    ],
)
def test_kinds_as_sequence_or_mapping(kinds: Any, mtd: Builders) -> None:
    X, Y = mtd.shared_arrays()
    data = MultiTaskData(X, Y, task_names=list(mtd.kinds), kinds=kinds)
    assert data.kinds == mtd.kinds
    assert list(data.kinds) == list(mtd.kinds)  # task order, whatever the mapping's order


def test_one_kind_for_all_tasks() -> None:
    data = MultiTaskData(np.zeros((3, 1)), np.eye(3), kinds="binary")
    assert set(data.kinds.values()) == {"binary"}


def test_arrays_are_float64_read_only_copies() -> None:
    X = np.arange(6).reshape(3, 2)
    Y = np.array([[1, 0], [0, 1], [1, 1]])
    X_before, Y_before = X.copy(), Y.copy()
    data = MultiTaskData(X, Y, kinds="binary")
    stored = data.feature_matrix()
    assert stored.dtype == np.float64 and data.label_matrix().dtype == np.float64
    assert not np.shares_memory(stored, X)
    with pytest.raises(ValueError, match="read-only"):
        stored[0, 0] = 5.0
    X[0, 0] = 100
    assert data.feature_matrix()[0, 0] == 0.0
    np.testing.assert_array_equal(Y, Y_before)
    np.testing.assert_array_equal(X[1:], X_before[1:])
    kinds = data.kinds
    kinds["task_0"] = "regression"
    assert data.kinds["task_0"] == "binary"


def test_per_task_properties_and_missing_labels_dropped() -> None:
    X_a, y_a = np.arange(10.0).reshape(5, 2), np.array([1.0, np.nan, 3.0, 4.0, np.nan])
    X_b, y_b = np.ones((3, 2)), np.array([[0.0], [1.0], [2.0]])  # (n, 1) labels accepted
    data = MultiTaskData.from_tasks(
        {"a": (X_a, y_a), "b": (X_b, y_b)}, kinds={"a": "regression", "b": "multiclass"}
    )
    assert data.form == "per_task"
    assert data.task_sizes == {"a": 3, "b": 3}
    assert data.n_samples == 6
    X_t, y_t = data.task("a")
    np.testing.assert_array_equal(X_t, X_a[[0, 2, 3]])
    np.testing.assert_array_equal(y_t, [1.0, 3.0, 4.0])
    assert np.isnan(y_a).sum() == 2  # caller's labels untouched


def test_from_tasks_sequence_gets_default_names() -> None:
    data = MultiTaskData.from_tasks([(np.zeros((2, 1)), [1.0, 2.0]), (np.ones((3, 1)), [0, 1, 2])])
    assert data.task_names == ("task_0", "task_1")
    assert data.task_sizes == {"task_0": 2, "task_1": 3}


def test_task_returns_only_observed_rows(mtd: Builders) -> None:
    X, Y = mtd.shared_arrays()
    data = MultiTaskData(X, Y, task_names=list(mtd.kinds), kinds=mtd.kinds)
    for j, name in enumerate(mtd.kinds):
        mask = ~np.isnan(Y[:, j])
        X_t, y_t = data.task(name)
        np.testing.assert_array_equal(X_t, X[mask])
        np.testing.assert_array_equal(y_t, Y[mask, j])
        assert not np.isnan(y_t).any()


@pytest.mark.parametrize("form", ["shared", "per_task"])
def test_iter_tasks_and_stacked_agree_with_task(form: str, mtd: Builders) -> None:
    data = mtd.build(form)
    names = [name for name, _, _ in data.iter_tasks()]
    assert tuple(names) == data.task_names
    X, y, task_ids = data.stacked()
    assert X.shape == (sum(data.task_sizes.values()), data.n_features)
    for t, name in enumerate(data.task_names):
        X_t, y_t = data.task(name)
        np.testing.assert_array_equal(X[task_ids == t], X_t)
        np.testing.assert_array_equal(y[task_ids == t], y_t)


def test_shared_only_accessors_refuse_per_task_data(mtd: Builders) -> None:
    data = mtd.per_task()
    for method in (data.label_matrix, data.feature_matrix):
        with pytest.raises(ValueError, match=r"needs the shared form.*to_shared"):
            method()


def test_repr_shows_form_tasks_and_sizes(mtd: Builders) -> None:
    text = repr(mtd.shared())
    assert "form='shared'" in text and "'pass'" in text and "binary" in text
    many = MultiTaskData(np.zeros((2, 1)), np.ones((2, 9)))
    assert "+3 more" in repr(many) and "'task_8'" not in repr(many)


# ---------------------------------------------------------------- validation
SHARED_ERRORS: list[tuple[dict[str, Any], type[Exception], str]] = [
    (dict(X=np.ones((5, 2)), Y=np.ones(4)), ValueError, "X has 5 rows but Y has 4"),
    (dict(X=np.ones(4), Y=np.ones(4)), ValueError, "X must be 2-D"),
    (dict(X=np.ones((4, 2)), Y=np.ones((4, 1, 1))), ValueError, "Y must be 1-D or 2-D"),
    (dict(X=np.ones((4, 0)), Y=np.ones(4)), ValueError, "no feature column"),
    (dict(X=np.ones((4, 2)), Y=np.ones((4, 0))), ValueError, "at least one task"),
    (dict(X=[["a", "b"]] * 4, Y=np.ones(4)), TypeError, "X must hold numbers"),
    (dict(X=np.ones((4, 2)), Y=np.full(4, 1 + 1j)), TypeError, "Y must hold numbers"),
    (
        dict(
            X=[[1.0], [np.nan], [np.inf], [1.0]],
            Y=[[1, np.nan], [1, 2], [np.nan, 3], [1, 1]],
            task_names=["a", "b"],
        ),
        ValueError,
        r"2 row\(s\) with non-finite features.*first at row 1.*\['a', 'b'\]",
    ),
    (
        dict(
            X=np.ones((3, 1)),
            Y=[[0.5, 0], [1, 2], [2, 1]],
            task_names=["score", "pass"],
            kinds=["regression", "binary"],
        ),
        ValueError,
        r"task 'pass' \(binary\): labels must be 0 or 1.*\b2\b",
    ),
    (
        dict(X=np.ones((3, 1)), Y=[0, -1, 0.5], task_names=["pass"], kinds="binary"),
        ValueError,
        r"task 'pass' \(binary\): labels must be 0 or 1, found 2 other value\(s\), e.g. -1, 0.5",
    ),
    (
        dict(X=np.ones((3, 1)), Y=[0, 1.5, 2], task_names=["grade"], kinds="multiclass"),
        ValueError,
        r"task 'grade' \(multiclass\): labels must be non-negative integers.*1\.5",
    ),
    (
        dict(X=np.ones((3, 1)), Y=[0, -1, 2], task_names=["grade"], kinds="multiclass"),
        ValueError,
        r"task 'grade' \(multiclass\).*-1",
    ),
    (
        dict(X=np.ones((3, 1)), Y=[0, np.inf, 2], task_names=["score"]),
        ValueError,
        r"task 'score' \(regression\): 1 label\(s\) are infinite",
    ),
    (
        dict(X=np.ones((2, 1)), Y=[[1, np.nan], [2, np.nan]], task_names=["a", "b"]),
        ValueError,
        "task 'b' has no observed label",
    ),
    (
        dict(X=np.ones((0, 1)), Y=np.ones(0), task_names=["a"]),
        ValueError,
        "task 'a' has no samples",
    ),
    (
        dict(
            X=np.ones((2, 1)),
            Y=np.ones((2, 2)),
            task_names=["tags", "b"],
            kinds={"tags": "multilabel", "b": "binary"},
        ),
        ValueError,
        r"task 'tags': 'multilabel' is not a column kind.*own column.*'binary'",
    ),
    (
        dict(X=np.ones((2, 1)), Y=np.ones(2), task_names=["a"], kinds="ordinal"),
        ValueError,
        "task 'a': unknown kind 'ordinal'; expected one of regression, binary, multiclass",
    ),
    (dict(X=np.ones((2, 1)), Y=np.ones((2, 2)), task_names=["a", "a"]), ValueError, "'a' twice"),
    (dict(X=np.ones((2, 1)), Y=np.ones((2, 2)), task_names=["a", " "]), ValueError, "empty task"),
    (
        dict(X=np.ones((2, 1)), Y=np.ones((2, 2)), task_names=["a", "b", "c"]),
        ValueError,
        "task_names has 3 names but there are 2 tasks",
    ),
    (dict(X=np.ones((2, 1)), Y=np.ones((2, 2)), task_names=["a", 1]), TypeError, r"\[1\] must be"),
    (dict(X=np.ones((2, 1)), Y=np.ones(2), task_names="a"), TypeError, "sequence of str, got str"),
    (
        dict(X=np.ones((2, 1)), Y=np.ones((2, 2)), kinds=["binary"] * 3),
        ValueError,
        "kinds has 3 entries but there are 2 tasks",
    ),
    (
        dict(X=np.ones((2, 1)), Y=np.ones((2, 2)), task_names=["a", "b"], kinds={"a": "binary"}),
        ValueError,
        r"kinds gives no kind for task\(s\) \['b'\]",
    ),
    (
        dict(
            X=np.ones((2, 1)),
            Y=np.ones((2, 2)),
            task_names=["a", "b"],
            kinds={"a": "binary", "b": "binary", "z": "binary"},
        ),
        ValueError,
        r"unknown task\(s\) \['z'\]",
    ),
    (dict(X=np.ones((2, 1)), Y=np.ones(2), kinds=3), TypeError, "kinds must be"),
    (
        dict(X=np.ones((2, 2)), Y=np.ones(2), feature_names=["f"]),
        ValueError,
        "feature_names has 1 names but there are 2 features",
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), SHARED_ERRORS)
def test_shared_validation_errors(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        MultiTaskData(**kwargs)


GOOD = (np.ones((3, 2)), np.ones(3))
PER_TASK_ERRORS: list[tuple[Any, dict[str, Any], type[Exception], str]] = [
    (
        {"a": GOOD, "b": (np.ones((4, 2)), np.ones(3))},
        {},
        ValueError,
        "task 'b': X_t has 4 rows but y_t has 3 labels",
    ),
    (
        {"a": GOOD, "b": (np.ones((3, 3)), np.ones(3))},
        {},
        ValueError,
        "task 'b' has 3 features but task 'a' has 2",
    ),
    (
        {"a": GOOD, "b": ([[1.0, np.nan], [1, 1], [np.inf, 0]], np.ones(3))},
        {},
        ValueError,
        r"task 'b': X has 2 row\(s\) with non-finite features",
    ),
    ({"a": GOOD, "b": (np.ones((0, 2)), np.ones(0))}, {}, ValueError, "task 'b' has no samples"),
    (
        {"a": GOOD, "b": (np.ones((2, 2)), [np.nan, np.nan])},
        {},
        ValueError,
        "task 'b' has no observed label",
    ),
    ({"a": GOOD, "b": np.ones((3, 2))}, {}, TypeError, "task 'b': expected a pair"),
    (
        {"a": GOOD, "b": (np.ones((3, 2)), np.ones((3, 2)))},
        {},
        ValueError,
        "task 'b': y_t must be 1-D",
    ),
    ({"a": GOOD, "b": (np.ones(3), np.ones(3))}, {}, ValueError, "task 'b': X_t must be 2-D"),
    (
        {"a": GOOD, "b": (np.ones((2, 2)), [0.0, 3.0])},
        {"kinds": "binary"},
        ValueError,
        r"task 'b' \(binary\)",
    ),
    ({"a": GOOD, "b": (np.ones((2, 2)), ["x", "y"])}, {}, TypeError, "task 'b': y_t must hold"),
    ({"a": GOOD, "": GOOD}, {}, ValueError, "empty task name"),
    ({"a": GOOD}, {"kinds": ["binary", "binary"]}, ValueError, "kinds has 2 entries"),
    ({}, {}, ValueError, "tasks is empty"),
    (GOOD[0], {}, TypeError, "tasks must be a mapping"),
    ("abc", {}, TypeError, "tasks must be a mapping"),
    ([GOOD, (np.ones(2),)], {}, TypeError, "task 'task_1': expected a pair"),
]


@pytest.mark.parametrize(("tasks", "kwargs", "error", "match"), PER_TASK_ERRORS)
def test_per_task_validation_errors(
    tasks: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        MultiTaskData.from_tasks(tasks, **kwargs)


def test_missing_label_rows_may_have_nonfinite_features_in_per_task_form() -> None:
    data = MultiTaskData.from_tasks({"a": ([[np.nan], [1.0], [2.0]], [np.nan, 1.0, 2.0])})
    assert data.task_sizes == {"a": 2}


@pytest.mark.parametrize("form", ["shared", "per_task"])
def test_unknown_task_lists_known_tasks(form: str, mtd: Builders) -> None:
    data = mtd.build(form)
    with pytest.raises(ValueError, match=r"unknown task 'zzz'; known tasks are \["):
        data.task("zzz")
    with pytest.raises(ValueError, match="unknown task 'zzz'"):
        data.subset(["zzz"])


# ---------------------------------------------------------------- conversions, subsets
def test_shared_to_per_task_to_shared_preserves_pairs(mtd: Builders) -> None:
    data = mtd.shared()
    per_task = data.to_per_task()
    assert per_task.form == "per_task"
    assert per_task.task_sizes == data.task_sizes
    assert mtd.pairs(per_task) == mtd.pairs(data)
    back = per_task.to_shared()
    assert mtd.pairs(back) == mtd.pairs(data)
    assert back.kinds == data.kinds and back.feature_names == data.feature_names


def test_per_task_to_shared_is_block_missing_and_round_trips_exactly(mtd: Builders) -> None:
    data = mtd.per_task()
    shared = data.to_shared()
    Y = shared.label_matrix()
    assert shared.n_samples == data.n_samples
    assert ((~np.isnan(Y)).sum(axis=1) == 1).all()  # each row labelled for one task only
    assert mtd.pairs(shared) == mtd.pairs(data)
    again = shared.to_per_task()
    for name in data.task_names:
        for a, b in zip(again.task(name), data.task(name), strict=True):
            np.testing.assert_array_equal(a, b)


def test_conversion_to_the_same_form_is_identity(mtd: Builders) -> None:
    shared, per_task = mtd.shared(), mtd.per_task()
    assert shared.to_shared() is shared and per_task.to_per_task() is per_task


@pytest.mark.parametrize("form", ["shared", "per_task"])
def test_subset_keeps_the_chosen_tasks_in_order(form: str, mtd: Builders) -> None:
    data = mtd.build(form)
    first, last = data.task_names[0], data.task_names[-1]
    sub = data.subset([last, first])
    assert sub.task_names == (last, first)
    assert sub.kinds == {last: data.kinds[last], first: data.kinds[first]}
    assert mtd.pairs(sub) == Counter(
        {k: v for k, v in mtd.pairs(data).items() if k[0] in (first, last)}
    )
    with pytest.raises(ValueError, match="twice"):
        data.subset([first, first])
    with pytest.raises(ValueError, match="tasks is empty"):
        data.subset([])


def test_select_rows_by_index_and_mask(mtd: Builders) -> None:
    X, Y = mtd.shared_arrays()
    data = MultiTaskData(X, Y, task_names=list(mtd.kinds), kinds=mtd.kinds)
    rows = np.arange(0, 30, 2)
    for idx in (rows, np.isin(np.arange(30), rows)):
        sub = data.select_rows(idx)
        np.testing.assert_array_equal(sub.feature_matrix(), X[rows])
        np.testing.assert_array_equal(sub.label_matrix(), Y[rows])


@pytest.mark.parametrize(
    ("idx", "error", "match"),
    [
        (np.zeros(5, dtype=bool), ValueError, r"mask has shape \(5,\)"),
        ([0, 99], ValueError, "outside"),
        ([0.5], TypeError, "integer row indices"),
        ([], ValueError, "task 'a' has no observed label in the selected rows"),
    ],
)
def test_select_rows_errors(idx: Any, error: type[Exception], match: str) -> None:
    data = MultiTaskData(np.ones((3, 1)), [[1.0, 1.0], [2.0, np.nan], [3.0, 4.0]], ["a", "b"])
    with pytest.raises(error, match=match):
        data.select_rows(np.asarray(idx, dtype=None if len(idx) else int))


def test_select_rows_names_the_task_left_without_labels(mtd: Builders) -> None:
    data = MultiTaskData(np.ones((3, 1)), [[1.0, 1.0], [2.0, np.nan], [3.0, 4.0]], ["a", "b"])
    with pytest.raises(ValueError, match="task 'b' has no observed label in the selected rows"):
        data.select_rows([1])
    with pytest.raises(ValueError, match="needs the shared form"):
        mtd.per_task().select_rows([0])
