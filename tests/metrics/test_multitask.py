"""Multi-task regression summaries against closed forms written out independently."""

from __future__ import annotations

import numpy as np
import pytest

from polytask.metrics import (
    amse,
    explained_variance_mse,
    nmse,
    pooled_explained_variance,
    pooled_mse,
    r2,
)

SEEDS = range(4)


def _tasks(seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Tasks of different sizes, means and scales."""
    rng = np.random.default_rng(seed)
    trues, preds = [], []
    for t in range(4):
        n = int(rng.integers(5, 30))
        y = rng.normal(loc=t - 1.0, scale=0.5 + t, size=n)
        trues.append(y)
        preds.append(y + rng.normal(scale=0.7, size=n))
    return trues, preds


@pytest.mark.parametrize("seed", SEEDS)
def test_pooled_mse(seed):
    yt, yp = _tasks(seed)
    errors = np.concatenate([a - b for a, b in zip(yt, yp, strict=True)])
    assert pooled_mse(yt, yp) == pytest.approx(errors @ errors / errors.size, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_nmse_is_size_weighted_mean_of_mse_over_variance(seed):
    yt, yp = _tasks(seed)
    ratios = [
        np.mean((a - b) ** 2) / np.mean((a - a.mean()) ** 2) for a, b in zip(yt, yp, strict=True)
    ]
    sizes = [a.size for a in yt]
    assert nmse(yt, yp) == pytest.approx(np.average(ratios, weights=sizes), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_amse_is_size_weighted_mean_of_mse_over_mean_square(seed):
    yt, yp = _tasks(seed)
    ratios = [np.sum((a - b) ** 2) / np.sum(a * a) for a, b in zip(yt, yp, strict=True)]
    sizes = [a.size for a in yt]
    assert amse(yt, yp) == pytest.approx(np.average(ratios, weights=sizes), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_pooled_explained_variance(seed):
    yt, yp = _tasks(seed)
    y, yhat = np.concatenate(yt), np.concatenate(yp)
    expected = 1.0 - np.sum((y - yhat) ** 2) / np.sum((y - y.mean()) ** 2)
    assert pooled_explained_variance(yt, yp) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_single_task_reduces_to_single_task_metrics(seed):
    yt, yp = _tasks(seed)
    assert nmse(yt[:1], yp[:1]) == pytest.approx(1.0 - r2(yt[0], yp[0]), rel=1e-12)
    assert pooled_explained_variance(yt[:1], yp[:1]) == pytest.approx(
        explained_variance_mse(yt[0], yp[0]), rel=1e-12
    )


@pytest.mark.parametrize("metric", [pooled_mse, nmse, amse, pooled_explained_variance])
def test_two_dimensional_arrays_are_read_by_column(metric):
    rng = np.random.default_rng(0)
    y = rng.normal(size=(20, 3))
    yhat = y + rng.normal(size=(20, 3))
    columns = metric([y[:, t] for t in range(3)], [yhat[:, t] for t in range(3)])
    assert metric(y, yhat) == pytest.approx(columns, rel=1e-12)


def test_means_score_one():
    yt, _ = _tasks(0)
    assert nmse(yt, [np.full_like(a, a.mean()) for a in yt]) == pytest.approx(1.0)
    assert amse(yt, [np.zeros_like(a) for a in yt]) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", [pooled_mse, nmse, amse, pooled_explained_variance])
class TestErrors:
    def test_task_count_mismatch(self, metric):
        with pytest.raises(ValueError, match="y_true has 2 tasks but y_pred has 1"):
            metric([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0]])

    def test_error_names_the_task(self, metric):
        with pytest.raises(ValueError, match=r"\(task 1\): y_true has 2 samples but y_pred has 3"):
            metric([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0, 5.0]])

    def test_nan_in_a_task(self, metric):
        with pytest.raises(ValueError, match=r"\(task 0\): y_pred contains NaN"):
            metric([[1.0, 2.0]], [[np.nan, 2.0]])

    def test_no_task(self, metric):
        with pytest.raises(ValueError, match="y_true holds no task"):
            metric([], [])

    def test_one_dimensional_array(self, metric):
        match = r"y_true must be a sequence of per-task arrays or a 2-D"
        with pytest.raises(ValueError, match=match):
            metric(np.array([1.0, 2.0]), np.array([1.0, 2.0]))

    @pytest.mark.parametrize("bad", ["abc", {"a": [1.0]}, 3.0])
    def test_not_a_sequence(self, metric, bad):
        with pytest.raises(TypeError, match="y_true must be a sequence of per-task arrays"):
            metric(bad, [[1.0]])


def test_nmse_constant_task_is_undefined():
    with pytest.raises(ValueError, match="nmse: undefined for task 1: its y_true is constant"):
        nmse([[1.0, 2.0], [3.0, 3.0]], [[1.0, 2.0], [3.0, 3.0]])


def test_amse_zero_task_is_undefined():
    with pytest.raises(ValueError, match="amse: undefined for task 0: its y_true is all zero"):
        amse([[0.0, 0.0], [3.0, 3.0]], [[1.0, 2.0], [3.0, 3.0]])


def test_pooled_explained_variance_constant_is_undefined():
    with pytest.raises(ValueError, match="pooled y_true is constant"):
        pooled_explained_variance([[2.0], [2.0, 2.0]], [[1.0], [2.0, 3.0]])
