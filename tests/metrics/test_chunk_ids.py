"""Chunk F1 of integer-coded chunk tags: agreement with the string reference, registry."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from polytask.metrics import METRICS, chunk_f1, chunk_scores, get_metric
from polytask.metrics._sequence import (
    chunk_f1_ids,
    chunk_scores_ids,
    decode_chunk_ids,
)


def _by_sentence(tags: list[str], lengths: list[int] | None) -> list[list[str]]:
    if lengths is None:
        return [tags]
    cuts = itertools.pairwise(np.cumsum([0, *lengths]).tolist())
    return [tags[a:b] for a, b in cuts]


def _random_lengths(rng: np.random.Generator, n: int) -> list[int]:
    cuts = np.sort(rng.choice(np.arange(1, n), size=rng.integers(0, min(n - 1, 8) + 1),
                              replace=False))
    return np.diff([0, *cuts.tolist(), n]).tolist()


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("with_lengths", [False, True])
def test_scores_equal_the_string_reference(seed: int, with_lengths: bool) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    n_types = int(rng.integers(1, 4))
    y_true = rng.integers(0, 2 * n_types + 1, size=n)
    noise = rng.integers(0, 2 * n_types + 1, size=n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, noise)
    lengths = _random_lengths(rng, n) if with_lengths and n > 1 else None
    expected = chunk_scores(_by_sentence(decode_chunk_ids(y_true), lengths),
                            _by_sentence(decode_chunk_ids(y_pred), lengths))
    got = chunk_scores_ids(y_true, y_pred, lengths)
    assert (got.n_true, got.n_pred, got.n_correct) == (
        expected.n_true, expected.n_pred, expected.n_correct)
    assert got.f1 == pytest.approx(expected.f1)
    assert chunk_f1_ids(y_true.astype(float), y_pred.astype(float), lengths) == pytest.approx(
        expected.f1)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "counts"),
    [
        ([0, 0, 0], [0, 0, 0], (0, 0, 0)),  # no chunk at all
        ([1], [1], (1, 1, 1)),
        ([2, 2, 0, 2], [1, 2, 0, 1], (2, 2, 2)),  # I- after O opens a chunk
        ([1, 2, 4], [1, 2, 3], (2, 2, 2)),  # I-T1 after T0 opens a chunk, like B-T1
        ([1, 1, 1], [1, 2, 2], (3, 1, 0)),
    ],
)
def test_hand_counted_cases(y_true: list[int], y_pred: list[int],
                            counts: tuple[int, int, int]) -> None:
    s = chunk_scores_ids(y_true, y_pred)
    assert (s.n_true, s.n_pred, s.n_correct) == counts


def test_lengths_cut_a_chunk_that_crosses_a_sentence_end() -> None:
    # [B-T0 I-T0 | I-T0 I-T0]: two sentences, so two chunks; flat, one chunk of four
    assert chunk_scores_ids([1, 2, 2, 2], [1, 2, 2, 2], [2, 2]).n_true == 2
    assert chunk_scores_ids([1, 2, 2, 2], [1, 2, 2, 2]).n_true == 1


def test_f1_is_the_harmonic_mean_of_precision_and_recall() -> None:
    s = chunk_scores_ids([1, 2, 0, 3, 0, 5], [1, 0, 0, 3, 3, 5])
    assert s.precision == pytest.approx(s.n_correct / s.n_pred)
    assert s.recall == pytest.approx(s.n_correct / s.n_true)
    assert s.f1 == pytest.approx(2 * s.precision * s.recall / (s.precision + s.recall))


def test_registered_for_label_predictions() -> None:
    spec = get_metric("chunk_f1_ids")
    assert spec.fn is chunk_f1_ids and spec.higher_is_better
    assert (spec.kind, spec.prediction, spec.is_count) == ("classification", "label", False)
    assert "chunk_f1" not in METRICS  # the string-tag function stays unregistered
    tags = ["B-NP", "I-NP", "O"]
    assert chunk_f1(tags, tags) == spec([1, 2, 0], [1, 2, 0]) == 1.0


def test_data_module_re_exports_the_metric_functions() -> None:
    from polytask import data

    assert data.chunk_f1_ids is chunk_f1_ids
    assert data.decode_chunk_ids is decode_chunk_ids


@pytest.mark.parametrize(
    ("y_true", "y_pred", "lengths", "error", "match"),
    [
        ([0, 1], [0], None, ValueError, "y_true and y_pred must have the same length"),
        ([], [], None, ValueError, "y_true is empty"),
        ([[0, 1]], [[0, 1]], None, ValueError, r"y_true must be 1-D"),
        ([0, -1], [0, 1], None, ValueError, r"y_true must hold non-negative integers"),
        ([0, 1], [0, 1.5], None, ValueError, r"y_pred must hold non-negative integers"),
        ([0, 1], [np.nan, 1], None, ValueError, r"y_pred must hold non-negative integers"),
        (["B-NP"], [1], None, TypeError, "y_true must be an array of integer chunk ids"),
        ([0, 1], [0, 1], [3], ValueError, "lengths must sum to the number of tokens 2"),
        ([0, 1], [0, 1], [2, 0], ValueError, r"lengths\[i\] must be an integer >= 1"),
        ([0, 1], [0, 1], [1.0, 1], ValueError, r"lengths\[i\] must be an integer >= 1"),
    ],
)
def test_errors_name_the_argument(y_true, y_pred, lengths, error, match) -> None:
    with pytest.raises(error, match=f"chunk_f1_ids: {match}"):
        chunk_f1_ids(y_true, y_pred, lengths)


def test_decode_names_the_missing_type() -> None:
    with pytest.raises(ValueError, match="id 5 names chunk type 2 but types has 1 entries"):
        decode_chunk_ids([5], ["NP"])
    assert decode_chunk_ids([]) == []
