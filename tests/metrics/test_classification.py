"""Classification metrics against scikit-learn, plus every refusal."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from polytask.metrics import (
    accuracy,
    average_precision,
    f1_macro,
    f1_micro,
    hamming_loss,
    log_loss,
    roc_auc,
)

SEEDS = range(6)


def _binary(seed: int, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.r_[0, 1, rng.integers(0, 2, size=n - 2)]  # both classes present
    score = np.round(0.6 * y + rng.normal(scale=0.5, size=n), 1)  # rounded: many ties
    return y, score


def _multiclass(seed: int, n: int = 50, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, k + 1, size=n))  # k: unseen label
    return y, pred


def _multilabel(seed: int, n: int = 40, n_labels: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_labels)) < 0.3).astype(int)
    flips = rng.random((n, n_labels)) < 0.2
    return y, np.where(flips, 1 - y, y)


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_auc_matches_sklearn(seed):
    y, s = _binary(seed)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_average_precision_matches_sklearn(seed):
    y, s = _binary(seed)
    assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_ranking_metrics_accept_bool_labels_and_are_invariant_to_monotone_maps(seed):
    y, s = _binary(seed)
    assert roc_auc(y.astype(bool), np.exp(s)) == pytest.approx(roc_auc(y, s))
    assert average_precision(y.astype(bool), 3 * s - 1) == pytest.approx(average_precision(y, s))


@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_matches_sklearn(seed):
    y, p = _multiclass(seed)
    assert accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p))
    ym, pm = _multilabel(seed)
    assert accuracy(ym, pm) == pytest.approx(skm.accuracy_score(ym, pm))  # subset accuracy


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("ours", "average"), [(f1_micro, "micro"), (f1_macro, "macro")])
def test_f1_multiclass_matches_sklearn(seed, ours, average):
    y, p = _multiclass(seed)
    assert ours(y, p) == pytest.approx(skm.f1_score(y, p, average=average), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("ours", "average"), [(f1_micro, "micro"), (f1_macro, "macro")])
def test_f1_multilabel_matches_sklearn(seed, ours, average):
    y, p = _multilabel(seed)
    assert ours(y, p) == pytest.approx(skm.f1_score(y, p, average=average), rel=1e-12)


@pytest.mark.parametrize("zero_division", [0.0, 1.0])
def test_f1_macro_zero_division_matches_sklearn(zero_division):
    y, p = _multilabel(0)
    y[:, 2] = 0
    p[:, 2] = 0  # label 2: no positive anywhere, F1 is 0/0
    expected = skm.f1_score(y, p, average="macro", zero_division=zero_division)
    assert f1_macro(y, p, zero_division=zero_division) == pytest.approx(expected)


def test_f1_on_string_labels_and_micro_equals_accuracy():
    y = np.array(["cat", "dog", "dog", "bird", "cat"])
    p = np.array(["cat", "dog", "cat", "bird", "bird"])
    assert f1_micro(y, p) == pytest.approx(accuracy(y, p))
    assert f1_macro(y, p) == pytest.approx(skm.f1_score(y, p, average="macro"))


@pytest.mark.parametrize("seed", SEEDS)
def test_hamming_loss_matches_sklearn(seed):
    y, p = _multilabel(seed)
    assert hamming_loss(y, p) == pytest.approx(skm.hamming_loss(y, p))
    yc, pc = _multiclass(seed)
    assert hamming_loss(yc, pc) == pytest.approx(skm.hamming_loss(yc, pc))


@pytest.mark.parametrize("seed", SEEDS)
def test_log_loss_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = np.r_[0, 1, rng.integers(0, 2, size=28)]
    prob = rng.uniform(0.01, 0.99, size=30)
    assert log_loss(y, prob) == pytest.approx(skm.log_loss(y, prob), rel=1e-10)
    yk = rng.integers(0, 3, size=30)
    probk = rng.dirichlet(np.ones(4), size=30)  # class 3 never occurs in yk
    expected = skm.log_loss(yk, probk, labels=[0, 1, 2, 3])
    assert log_loss(yk, probk) == pytest.approx(expected, rel=1e-10)


def test_log_loss_clips_certain_mistakes():
    assert np.isfinite(log_loss([1, 0], [0.0, 1.0]))
    assert log_loss([1, 0], [1.0, 0.0]) == pytest.approx(0.0, abs=1e-12)


class TestErrors:
    @pytest.mark.parametrize("metric", [roc_auc, average_precision])
    def test_only_negatives(self, metric):
        with pytest.raises(ValueError, match=rf"{metric.__name__}: undefined because y_true"):
            metric([0, 0, 0], [0.1, 0.2, 0.3])

    def test_roc_auc_only_positives(self):
        with pytest.raises(ValueError, match="roc_auc: undefined because y_true holds only one"):
            roc_auc([1, 1], [0.1, 0.2])

    @pytest.mark.parametrize("metric", [roc_auc, average_precision, log_loss])
    def test_labels_not_binary(self, metric):
        with pytest.raises(ValueError, match=r"y_true must hold only 0/1 values; found \[2\]"):
            metric([0, 1, 2], [0.1, 0.2, 0.3])

    @pytest.mark.parametrize("metric", [roc_auc, average_precision])
    def test_string_labels_for_ranking(self, metric):
        with pytest.raises(TypeError, match="y_true must hold 0/1 values"):
            metric(["a", "b"], [0.1, 0.2])

    @pytest.mark.parametrize("metric", [roc_auc, average_precision])
    def test_score_nan(self, metric):
        with pytest.raises(ValueError, match="y_score contains NaN"):
            metric([0, 1], [0.1, np.nan])

    @pytest.mark.parametrize(
        "metric", [accuracy, roc_auc, average_precision, f1_micro, f1_macro, hamming_loss, log_loss]
    )
    def test_length_mismatch(self, metric):
        with pytest.raises(ValueError, match=rf"{metric.__name__}: y_true has 3 samples but"):
            metric([0, 1, 1], [0, 1])

    @pytest.mark.parametrize("metric", [accuracy, f1_micro, f1_macro, hamming_loss])
    def test_label_matrix_shape_mismatch(self, metric):
        match = r"y_true has shape \(2, 2\) but y_pred has shape \(2, 3\)"
        with pytest.raises(ValueError, match=match):
            metric(np.zeros((2, 2)), np.zeros((2, 3)))

    @pytest.mark.parametrize("metric", [accuracy, f1_micro, f1_macro, hamming_loss])
    def test_empty_and_nan_labels(self, metric):
        with pytest.raises(ValueError, match="y_true is empty"):
            metric([], [])
        with pytest.raises(ValueError, match="y_pred contains NaN"):
            metric([0.0, 1.0], [0.0, np.nan])

    @pytest.mark.parametrize("metric", [accuracy, f1_micro, f1_macro, hamming_loss])
    def test_three_dimensional_labels(self, metric):
        with pytest.raises(ValueError, match="y_true must be 1-D or 2-D"):
            metric(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))

    @pytest.mark.parametrize("metric", [f1_micro, f1_macro, hamming_loss])
    def test_label_matrix_not_binary(self, metric):
        with pytest.raises(ValueError, match=r"y_pred must hold only 0/1 values; found \[0.7\]"):
            metric([[0, 1], [1, 0]], [[0, 0.7], [1, 0]])

    @pytest.mark.parametrize("metric", [accuracy, f1_micro, f1_macro, hamming_loss])
    def test_numbers_against_strings(self, metric):
        with pytest.raises(TypeError, match="y_true holds numbers but y_pred holds strings"):
            metric([1, 2], ["1", "2"])

    def test_f1_micro_all_negative(self):
        with pytest.raises(ValueError, match="f1_micro: undefined because no label is positive"):
            f1_micro(np.zeros((3, 2)), np.zeros((3, 2)))
        assert f1_micro(np.zeros((3, 2)), np.zeros((3, 2)), zero_division=1.0) == 1.0

    def test_f1_macro_names_undefined_columns(self):
        y = np.array([[1, 0, 0], [0, 0, 1]])
        with pytest.raises(ValueError, match=r"f1_macro: undefined for label column\(s\) \[1\]"):
            f1_macro(y, y)

    @pytest.mark.parametrize("prob", [[0.5, 1.2], [-0.1, 0.5]])
    def test_log_loss_probability_out_of_range(self, prob):
        with pytest.raises(ValueError, match=r"y_prob must hold probabilities in \[0, 1\]"):
            log_loss([0, 1], prob)

    def test_log_loss_rows_must_sum_to_one(self):
        with pytest.raises(ValueError, match="every row of y_prob must sum to 1"):
            log_loss([0, 1], [[0.5, 0.4], [0.2, 0.8]])

    @pytest.mark.parametrize("labels", [[0, 2], [0, -1], [0, 0.5]])
    def test_log_loss_class_index_out_of_range(self, labels):
        with pytest.raises(ValueError, match=r"y_true must hold class indices in 0..1"):
            log_loss(labels, [[0.5, 0.5], [0.2, 0.8]])

    def test_log_loss_multiclass_length(self):
        with pytest.raises(ValueError, match="y_true has 3 samples but y_prob has 2 rows"):
            log_loss([0, 1, 1], [[0.5, 0.5], [0.2, 0.8]])
