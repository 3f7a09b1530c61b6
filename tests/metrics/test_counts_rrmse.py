"""Relative RMSE and the per-task confusion counts, against scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    hamming_loss,
    mean_squared_error,
    multilabel_confusion_matrix,
    r2_score,
)

from polytask.metrics import METRICS, delta_m, get_metric, n_fn, n_fp, n_tp, rrmse
from polytask.tasks import Task

# -------------------------------------------------------------------------------- rrmse


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [2, 7, 50])
def test_rrmse_is_the_rmse_relative_to_predicting_the_mean(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(loc=3.0, size=n)
    pred = y + rng.normal(scale=0.5, size=n)
    expected = np.sqrt(mean_squared_error(y, pred) / mean_squared_error(y, np.full(n, y.mean())))
    assert rrmse(y, pred) == pytest.approx(expected, rel=1e-12)
    assert rrmse(y, pred) == pytest.approx(np.sqrt(1.0 - r2_score(y, pred)), rel=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_rrmse_with_the_training_mean_as_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_train, y = rng.normal(size=40), rng.normal(loc=0.5, size=15)
    pred = y + rng.normal(scale=0.3, size=15)
    c = float(y_train.mean())
    expected = np.sqrt(mean_squared_error(y, pred) / mean_squared_error(y, np.full(15, c)))
    assert rrmse(y, pred, reference=c) == pytest.approx(expected, rel=1e-12)
    # the test mean is the best constant, so the training mean gives a smaller ratio
    assert rrmse(y, pred, reference=c) <= rrmse(y, pred)


def test_rrmse_landmarks() -> None:
    y = np.array([1.0, 4.0, 2.0, 8.0])
    assert rrmse(y, y) == 0.0
    assert rrmse(y, np.full(4, y.mean())) == pytest.approx(1.0)
    assert rrmse(y, 2 * y - y.mean()) == pytest.approx(1.0)  # the error mirrors the spread


@pytest.mark.parametrize("kwargs, y, exc, match", [
    ({}, [2.0, 2.0, 2.0], ValueError, r"^rrmse: undefined because y_true is constant"),
    ({"reference": 2.0}, [2.0, 2.0], ValueError, r"^rrmse: undefined because every y_true "
                                                 r"equals the reference 2\.0"),
    ({"reference": float("nan")}, [1.0, 2.0], ValueError, r"^rrmse: reference must be finite"),
    ({"reference": "mean"}, [1.0, 2.0], TypeError, r"^rrmse: reference must be a real number"),
    ({"reference": True}, [1.0, 2.0], TypeError, r"^rrmse: reference must be a real number"),
])
def test_rrmse_errors(kwargs: dict[str, Any], y: list[float], exc: type[Exception],
                      match: str) -> None:
    with pytest.raises(exc, match=match):
        rrmse(y, [0.0] * len(y), **kwargs)


def test_rrmse_validates_its_arrays() -> None:
    with pytest.raises(ValueError, match=r"^rrmse: .*(length|same)"):
        rrmse([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"^rrmse: .*NaN"):
        rrmse([1.0, float("nan")], [1.0, 2.0])


def test_rrmse_with_a_constant_target_is_fine_against_another_reference() -> None:
    assert rrmse([2.0, 2.0], [2.0, 3.0], reference=0.0) == pytest.approx(np.sqrt(1.0 / 8.0))


# ------------------------------------------------------------------------------- counts


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [1, 9, 60])
def test_counts_match_sklearn_confusion_matrix(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y, pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert (n_tp(y, pred), n_fp(y, pred), n_fn(y, pred)) == (tp, fp, fn)
    assert all(isinstance(v, float) for v in (n_tp(y, pred), n_fp(y, pred), n_fn(y, pred)))
    assert n_tp(y, pred) + n_fp(y, pred) + n_fn(y, pred) + tn == n


@pytest.mark.parametrize("seed", range(3))
def test_counts_of_label_matrices_sum_over_labels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    Y, P = rng.integers(0, 2, (20, 4)), rng.integers(0, 2, (20, 4))
    mcm = multilabel_confusion_matrix(Y, P)  # per label [[tn, fp], [fn, tp]]
    assert n_tp(Y, P) == mcm[:, 1, 1].sum()
    assert n_fp(Y, P) == mcm[:, 0, 1].sum()
    assert n_fn(Y, P) == mcm[:, 1, 0].sum()


@pytest.mark.parametrize("seed", range(3))
def test_summed_counts_give_set_level_micro_f1_and_hamming_loss(seed: int) -> None:
    rng = np.random.default_rng(seed)
    Y = rng.integers(0, 2, (30, 5))
    P = np.where(rng.random((30, 5)) < 0.3, 1 - Y, Y)
    tp = sum(n_tp(Y[:, t], P[:, t]) for t in range(5))
    fp = sum(n_fp(Y[:, t], P[:, t]) for t in range(5))
    fn = sum(n_fn(Y[:, t], P[:, t]) for t in range(5))
    assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(f1_score(Y, P, average="micro"))
    assert (fp + fn) / Y.size == pytest.approx(hamming_loss(Y, P))


def test_counts_accept_bools() -> None:
    assert n_tp([True, False, True], [True, True, False]) == 1.0
    assert n_fp([True, False, True], [True, True, False]) == 1.0
    assert n_fn([True, False, True], [True, True, False]) == 1.0


@pytest.mark.parametrize("fn", [n_tp, n_fp, n_fn], ids=lambda f: f.__name__)
@pytest.mark.parametrize("y, pred, exc, match", [
    ([0, 1, 2], [0, 1, 1], ValueError, r"y_true must hold only 0/1 values; found \[2\]"),
    ([0, 1], [0.5, 1.0], ValueError, r"y_pred must hold only 0/1 values; found \[0\.5\]"),
    ([0, 1, 1], [0, 1], ValueError, r"(length|shape)"),
    ([], [], ValueError, r"empty"),
    ([0, 1], [0, float("nan")], ValueError, r"NaN"),
    (["a", "b"], ["a", "b"], TypeError, r"must hold 0/1 values; got dtype"),
])
def test_count_errors_name_the_metric(fn: Any, y: Any, pred: Any, exc: type[Exception],
                                      match: str) -> None:
    with pytest.raises(exc, match=rf"^{fn.__name__}: .*{match}"):
        fn(y, pred)


@pytest.mark.parametrize("seed", range(3))
def test_task_evaluate_thresholds_like_accuracy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 40).astype(float)
    y[rng.random(40) < 0.2] = np.nan
    logits = rng.normal(size=40)
    logits[:3] = 0.0  # probability exactly 0.5: counted as negative, as for accuracy
    task = Task("t", kind="binary", metrics=["roc_auc", "accuracy", "n_tp", "n_fp", "n_fn"])
    got = task.evaluate(y, logits)
    keep = ~np.isnan(y)
    proba = 1.0 / (1.0 + np.exp(-logits[keep]))
    tn, fp, fn, tp = confusion_matrix(y[keep], (proba > 0.5).astype(int), labels=[0, 1]).ravel()
    assert (got["n_tp"], got["n_fp"], got["n_fn"]) == (tp, fp, fn)
    assert got["accuracy"] == pytest.approx((tp + tn) / keep.sum())


def test_regression_task_reports_rrmse() -> None:
    rng = np.random.default_rng(0)
    y, pred = rng.normal(size=25), rng.normal(size=25)
    got = Task("r", metrics=["mse", "rrmse"]).evaluate(y, pred)
    assert got["rrmse"] == pytest.approx(np.sqrt(1.0 - r2_score(y, pred)))


# ----------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name, higher, kind, prediction, count", [
    ("rrmse", False, "regression", "value", False),
    ("n_tp", True, "classification", "label", True),
    ("n_fp", False, "classification", "label", True),
    ("n_fn", False, "classification", "label", True),
])
def test_registry_entries(name: str, higher: bool, kind: str, prediction: str,
                          count: bool) -> None:
    spec = get_metric(name)
    assert (spec.higher_is_better, spec.kind, spec.prediction, spec.is_count) == (
        higher, kind, prediction, count)


def test_only_the_counts_are_counts() -> None:
    assert {n for n, s in METRICS.items() if s.is_count} == {"n_tp", "n_fp", "n_fn"}


def test_count_directions_make_fewer_errors_a_gain() -> None:
    # fewer false negatives and more true positives at a fixed test set are gains
    gain = delta_m({"a": 8.0, "b": 12.0}, {"a": 10.0, "b": 10.0},
                   {"a": get_metric("n_fn").higher_is_better,
                    "b": get_metric("n_tp").higher_is_better})
    assert gain == pytest.approx(20.0)


@pytest.mark.parametrize("metrics, ok", [
    (["n_tp", "roc_auc"], False),
    (["n_fn"], False),
    (["roc_auc", "n_tp", "n_fp", "n_fn"], True),
    (["rrmse", "mse"], True),
])
def test_a_count_cannot_be_the_primary_metric(metrics: list[str], ok: bool) -> None:
    from polytask._config import ConfigError, parse_config

    raw = {"dataset": {"synthetic": "mmoe"}, "tasks": {"metrics": metrics},
           "models": [{"name": "STL", "type": "linear", "model": "ridge", "fit": "per_task"}]}
    if ok:
        assert parse_config(raw).tasks.metrics == tuple(metrics)
    else:
        with pytest.raises(ConfigError, match=rf"^tasks\.metrics\[0\]: '{metrics[0]}' is a "
                                              r"count .* cannot be the primary metric"):
            parse_config(raw)
