"""Single-task regression metrics against scikit-learn and their defining properties."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from polytask.metrics import explained_variance, explained_variance_mse, mae, mse, r2, rmse

SEEDS = range(5)


def _pair(seed: int, n: int = 37) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(1.0, 2.0, size=n)
    return y, y + rng.normal(0.3, 1.0, size=n)  # a biased, noisy prediction


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("ours", "reference"),
    [
        (mse, skm.mean_squared_error),
        (rmse, skm.root_mean_squared_error),
        (mae, skm.mean_absolute_error),
        (explained_variance, skm.explained_variance_score),
        (r2, skm.r2_score),
    ],
)
def test_matches_sklearn(seed, ours, reference):
    y, yhat = _pair(seed)
    assert ours(y, yhat) == pytest.approx(reference(y, yhat), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_explained_variance_mse_is_one_minus_mse_over_variance(seed):
    y, yhat = _pair(seed)
    expected = 1.0 - np.sum((y - yhat) ** 2) / np.sum((y - y.mean()) ** 2)
    assert explained_variance_mse(y, yhat) == pytest.approx(expected, rel=1e-12)
    assert explained_variance_mse(y, yhat) == pytest.approx(r2(y, yhat), rel=1e-12)


@pytest.mark.parametrize("bias", [-2.0, 0.5, 3.0])
def test_explained_variance_ignores_a_bias_but_the_mse_version_does_not(bias):
    y, _ = _pair(0)
    assert explained_variance(y, y + bias) == pytest.approx(1.0)
    assert explained_variance_mse(y, y + bias) == pytest.approx(1.0 - bias**2 / np.var(y))


def test_accepts_lists_and_integer_arrays():
    assert mse([1, 2, 3], np.array([1, 2, 5])) == pytest.approx(4.0 / 3.0)
    assert isinstance(mae([1, 2], [1, 2]), float)


@pytest.mark.parametrize("metric", [mse, rmse, mae, explained_variance, explained_variance_mse, r2])
class TestErrors:
    def test_length_mismatch(self, metric):
        match = rf"{metric.__name__}: y_true has 3 samples but y_pred has 2"
        with pytest.raises(ValueError, match=match):
            metric([1.0, 2.0, 3.0], [1.0, 2.0])

    def test_not_1d(self, metric):
        with pytest.raises(ValueError, match=r"y_pred must be 1-D; got an array of shape \(2, 2\)"):
            metric([1.0, 2.0], [[1.0, 2.0], [3.0, 4.0]])

    def test_empty(self, metric):
        with pytest.raises(ValueError, match="y_true is empty"):
            metric([], [])

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_not_finite(self, metric, bad):
        with pytest.raises(ValueError, match="y_pred contains NaN or infinite"):
            metric([1.0, 2.0], [1.0, bad])

    def test_not_numeric(self, metric):
        with pytest.raises(TypeError, match="y_true must be an array of numbers"):
            metric(["a", "b"], [1.0, 2.0])


@pytest.mark.parametrize("metric", [explained_variance, explained_variance_mse, r2])
def test_constant_target_is_undefined(metric):
    match = rf"{metric.__name__}: undefined because y_true is constant"
    with pytest.raises(ValueError, match=match):
        metric([0.1, 0.1, 0.1], [0.0, 0.1, 0.2])
