"""The benchmark scripts' shared plumbing (benchmarks/_school_common.py), on small data.

The School tables in docs/benchmarks.md rest on these helpers: the per-school split and
its coding, the per-task folds, the cross-validated choice, the scores and the section
writer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import explained_variance_score, mean_squared_error

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _school_common as sc

from polytask.data import MultiTaskData
from polytask.linear import MeanRegularizedRegressor


def _data(n_tasks=5, d=28, seed=0):
    rng = np.random.default_rng(seed)
    pairs = []
    for t in range(n_tasks):
        n = 20 + 8 * t
        X = rng.integers(0, 3, size=(n, d)).astype(float)
        X[:, sc.BIAS_COLUMN] = 1.0
        pairs.append((X, X[:, :3].sum(axis=1) + t + rng.normal(size=n)))
    return MultiTaskData.from_tasks({f"s{t}": p for t, p in enumerate(pairs)}), pairs


def test_split_keeps_a_quarter_of_every_school_and_codes_with_training_statistics():
    data, pairs = _data()
    s = sc.split(data, rep=3, coding="standardized")
    for t, (_, y) in enumerate(pairs):
        n_test = int(np.sum(s.task_test == t))
        assert n_test + int(np.sum(s.task == t)) == y.size
        assert abs(n_test - 0.25 * y.size) <= 1
    assert s.X.shape[1] == 27  # the constant bias column is dropped
    assert np.allclose(s.X.mean(axis=0), 0) and np.allclose(s.X.std(axis=0)[s.X.std(axis=0) > 0], 1)
    raw = sc.split(data, rep=3, coding="raw")
    mean, std = raw.X.mean(axis=0), raw.X.std(axis=0)
    std[std == 0] = 1.0
    assert np.allclose(s.X_test, (raw.X_test - mean) / std)  # test coded with train stats
    again = sc.split(data, rep=3, coding="raw")
    assert np.array_equal(again.y_test, raw.y_test)  # seed = repetition
    assert not np.array_equal(sc.split(data, rep=4, coding="raw").y_test, raw.y_test)
    with pytest.raises(ValueError, match="coding must be 'raw' or 'standardized'"):
        sc.split(data, rep=0, coding="zscore")


def test_task_folds_deal_every_task_evenly():
    task = np.repeat(np.arange(4), [7, 10, 13, 25])
    fold = sc.task_folds(task, n_folds=5, seed=1)
    for t in range(4):
        counts = np.bincount(fold[task == t], minlength=5)
        assert counts.max() - counts.min() <= 1
    assert not np.array_equal(fold, sc.task_folds(task, n_folds=5, seed=2))


def test_scores_are_pooled_explained_variance_and_size_weighted_nmse():
    rng = np.random.default_rng(1)
    task = np.repeat(np.arange(3), [10, 20, 30])
    y = rng.normal(size=60) + task
    pred = y + rng.normal(scale=0.5, size=60)
    ev, nm = sc.scores(y, pred, task)
    assert ev == pytest.approx(1 - mean_squared_error(y, pred) / np.var(y))
    per_task = [
        mean_squared_error(y[task == t], pred[task == t]) / np.var(y[task == t]) for t in range(3)
    ]
    assert nm == pytest.approx(np.average(per_task, weights=[10, 20, 30]))
    assert ev != pytest.approx(explained_variance_score(y, pred))  # not the bias-corrected one


def test_cross_validation_picks_the_grid_point_of_least_validation_error():
    data, _ = _data(n_tasks=6)
    s = sc.split(data, rep=0, coding="standardized")
    grid = [{"a": a} for a in (1e4, 1e2, 1.0, 1e-2)]
    method = sc.Method(
        "mr", lambda p: MeanRegularizedRegressor(p["a"], 1e-3, fit_intercept=True), grid
    )
    best, errors = sc.cross_validate(method, s.X, s.y, s.task, n_folds=3, seed=0)
    assert best == grid[int(np.argmin(errors))] and errors.shape == (4,)
    # the errors are the pooled validation MSE of each point, recomputed here for one
    fold = sc.task_folds(s.task, 3, 0)
    total = 0.0
    for f in range(3):
        tr, va = fold != f, fold == f
        est = method.make(grid[2]).fit(s.X[tr], s.y[tr], task=s.task[tr])
        total += float(np.sum((s.y[va] - est.predict(s.X[va], task=s.task[va])) ** 2))
    assert errors[2] == pytest.approx(total / s.y.size)


def test_write_section_replaces_only_its_own_markers(tmp_path):
    doc = tmp_path / "docs" / "b.md"
    sc.write_section("one", "first", doc)
    sc.write_section("two", "second", doc)
    sc.write_section("one", "first again", doc)
    text = doc.read_text()
    assert text.startswith("# Benchmarks")
    assert "<!-- one:start -->\nfirst again\n<!-- one:end -->" in text
    assert "<!-- two:start -->\nsecond\n<!-- two:end -->" in text
    assert "first\n" not in text.replace("first again\n", "")
    assert text.index("one:start") < text.index("two:start")  # kept in place
    assert not list(doc.parent.glob("*.tmp"))


def test_paired_rows_report_mean_and_paired_difference_in_points():
    reps = [{"base": 0.30, "new": 0.32}, {"base": 0.34, "new": 0.35}]
    rows, ev = sc.paired_rows(reps, base="base")
    assert list(ev) == ["base", "new"] and np.allclose(ev["new"], [32.0, 35.0])
    assert rows[0] == "| base | 32.00 ± 2.00 | +0.00 ± 0.00 |"
    assert rows[1] == "| new | 33.50 ± 1.50 | +1.50 ± 0.50 |"
