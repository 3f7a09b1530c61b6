"""Pairwise transfer, rank agreement and negative transfer."""

from __future__ import annotations

import math
import warnings
from itertools import product

import numpy as np
import pytest
from scipy import stats

from polytask.relate import negative_transfer, pairwise_transfer, rank_agreement

NAMES = ["a", "b", "c", "d"]


class KnownTransfer:
    """fit_score whose pair scores are the STL scores moved by a known percentage."""

    def __init__(self, gain: np.ndarray, stl: dict[str, float], higher: dict[str, bool]) -> None:
        self.gain, self.stl, self.higher = gain, stl, higher
        self.calls: list[tuple[tuple[str, ...], int]] = []

    def __call__(self, tasks: tuple[str, ...], seed: int) -> dict[str, float]:
        self.calls.append((tasks, seed))
        jitter = 0.01 * (seed - 1)  # averages to 0 over seeds (0, 1, 2)
        if len(tasks) == 1:
            return {tasks[0]: self.stl[tasks[0]] + jitter}
        out = {}
        for t, other in (tasks, tasks[::-1]):
            i, j = NAMES.index(t), NAMES.index(other)
            sign = 1.0 if self.higher[t] else -1.0
            out[t] = self.stl[t] * (1 + sign * self.gain[i, j] / 100) + jitter
        return out


def _known(seed: int = 0) -> KnownTransfer:
    rng = np.random.default_rng(seed)
    gain = rng.normal(scale=10, size=(4, 4))
    np.fill_diagonal(gain, 0.0)
    stl = {t: float(v) for t, v in zip(NAMES, rng.uniform(0.5, 2.0, size=4), strict=True)}
    higher = {"a": True, "b": False, "c": True, "d": False}
    return KnownTransfer(gain, stl, higher)


def test_all_pairs_recover_the_known_gains_with_directions() -> None:
    fit = _known()
    res = pairwise_transfer(fit, NAMES, higher_is_better=fit.higher, seeds=(0, 1, 2))
    np.testing.assert_allclose(res.gain, fit.gain, atol=1e-9)
    assert res.evaluated.sum() == 12 and not res.evaluated.diagonal().any()
    assert res.n_runs == len(fit.calls) == 3 * (4 + 6)
    assert {seed for _, seed in fit.calls} == {0, 1, 2}
    assert res.stl_scores["a"] == pytest.approx(fit.stl["a"])
    assert set(res.pair_scores) == {(a, b) for i, a in enumerate(NAMES) for b in NAMES[i + 1:]}


def test_budgeted_pairs_are_seeded_symmetric_and_nan_elsewhere() -> None:
    fit = _known(1)
    runs = [pairwise_transfer(fit, NAMES, pairs=3, higher_is_better=fit.higher, seeds=(0, 1, 2),
                              random_state=s) for s in (7, 7, 8, 9, 10)]
    a = runs[0]
    assert a.evaluated.sum() == 6
    np.testing.assert_array_equal(a.evaluated, a.evaluated.T)
    np.testing.assert_array_equal(np.isnan(a.gain), ~a.evaluated & ~np.eye(4, dtype=bool))
    np.testing.assert_allclose(a.gain[a.evaluated], fit.gain[a.evaluated], atol=1e-9)
    np.testing.assert_array_equal(a.evaluated, runs[1].evaluated)
    assert any(not np.array_equal(a.evaluated, r.evaluated) for r in runs[2:])


def test_pairwise_transfer_errors() -> None:
    fit = _known()
    with pytest.raises(ValueError, match="at least two tasks"):
        pairwise_transfer(fit, ["a"])
    with pytest.raises(ValueError, match="pairs must be 'all'"):
        pairwise_transfer(fit, NAMES, pairs="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pairs must be >= 1 and <= 6"):
        pairwise_transfer(fit, NAMES, pairs=7)
    with pytest.raises(ValueError, match="seeds"):
        pairwise_transfer(fit, NAMES, seeds=())
    with pytest.raises(ValueError, match="no direction for tasks"):
        pairwise_transfer(fit, NAMES, higher_is_better={"a": True})
    with pytest.raises(ValueError, match="no score for task 'a'"):
        pairwise_transfer(lambda tasks, seed: {}, ["a", "b"])
    with pytest.raises(ValueError, match="task 'b'; expected a finite"):
        pairwise_transfer(lambda tasks, seed: dict.fromkeys(tasks, math.nan), ["b", "a"])
    with pytest.raises(TypeError, match="must return a mapping"):
        pairwise_transfer(lambda tasks, seed: 1.0, ["a", "b"])  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="undefined"):
        pairwise_transfer(lambda tasks, seed: dict.fromkeys(tasks, 0.0), ["a", "b"])


def reference_spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of the (average) ranks."""
    return float(np.corrcoef(stats.rankdata(x), stats.rankdata(y))[0, 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_agreement_is_spearman_over_finite_off_diagonal_entries(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(5, 5))
    ref[1, 3] = ref[3, 1] = np.nan  # an untrained pair
    measure = ref + 0.5 * rng.normal(size=(5, 5))
    measure[0, 0] = 1e9  # the diagonal is ignored
    keep = ~np.eye(5, dtype=bool) & np.isfinite(ref)
    expected = reference_spearman(measure[keep], ref[keep])
    assert rank_agreement(measure, ref) == pytest.approx(expected, abs=1e-12)


def test_rank_agreement_extremes_and_errors() -> None:
    ref = np.arange(9.0).reshape(3, 3)
    assert rank_agreement(np.exp(ref), ref) == pytest.approx(1.0)
    assert rank_agreement(-ref, ref) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="shape"):
        rank_agreement(np.zeros((2, 2)), ref)
    with pytest.raises(ValueError, match="at least 3"):
        rank_agreement(np.zeros((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="measure is constant"):
        rank_agreement(np.ones((3, 3)), ref)


def manual_row(mtl: np.ndarray, stl: np.ndarray, higher: bool, alpha: float) -> dict[str, float]:
    """t-test quantities written out from their textbook formulas."""
    d = (mtl - stl) * (1 if higher else -1)
    n = d.size
    mean = d.sum() / n
    sd = math.sqrt(((d - mean) ** 2).sum() / (n - 1))
    t = mean / (sd / math.sqrt(n))
    half = stats.t.ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
    return {"improvement": mean, "p_value": float(stats.t.cdf(t, n - 1)), "ci_low": mean - half,
            "ci_high": mean + half, "effect_size": mean / sd}


@pytest.mark.parametrize(("higher", "alpha", "seed"), [(True, 0.05, 0), (False, 0.1, 1),
                                                       (True, 0.2, 2)])
def test_t_test_path_matches_the_formulas(higher: bool, alpha: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    stl = rng.normal(1.0, 0.05, size=4)
    mtl = stl + rng.normal(-0.02, 0.03, size=4)
    row = negative_transfer({"t": mtl}, {"t": stl}, higher, alpha=alpha).iloc[0]
    assert row["test"] == "t" and row["n_seeds"] == 4
    for key, value in manual_row(mtl, stl, higher, alpha).items():
        assert row[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key
    assert row["difference"] == pytest.approx(float(np.mean(mtl - stl)))
    assert row["negative"] == (row["p_value"] < alpha and row["ci_high"] < 0)


def exact_wilcoxon_less(d: np.ndarray) -> float:
    """P(W+ <= observed) under the null, by enumerating all 2^n sign patterns."""
    ranks = stats.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    patterns = product([False, True], repeat=d.size)
    count = sum(1 for signs in patterns if ranks[np.array(signs)].sum() <= observed)
    return count / 2**d.size


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wilcoxon_path_from_six_seeds_matches_exact_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    stl = rng.normal(1.0, 0.05, size=7)
    mtl = stl + rng.normal(-0.03, 0.04, size=7)
    row = negative_transfer({"t": mtl}, {"t": stl}, True).iloc[0]
    assert row["test"] == "wilcoxon"
    assert row["p_value"] == pytest.approx(exact_wilcoxon_less(mtl - stl), abs=1e-12)


def test_clear_negative_transfer_is_flagged_and_noise_is_not() -> None:
    rng = np.random.default_rng(3)
    stl = rng.normal(0.8, 0.01, size=8)
    mtl = {"hurt": stl - 0.1 + rng.normal(0, 0.01, size=8), "same": stl + rng.normal(0, 0.01, 8),
           "helped": stl + 0.1}
    df = negative_transfer(mtl, dict.fromkeys(mtl, stl), True)
    assert df.set_index("task")["negative"].to_dict() == {"hurt": True, "same": False,
                                                          "helped": False}
    low = negative_transfer({"err": -mtl["hurt"]}, {"err": -stl}, False)
    assert bool(low["negative"].iloc[0])  # an error going up is also negative


def test_seed_mappings_are_matched_by_seed() -> None:
    stl = {0: 1.0, 1: 1.1, 2: 0.9}
    mtl = {2: 0.8, 0: 0.95, 1: 1.0}
    as_maps = negative_transfer({"a": mtl}, {"a": stl}, True)
    as_lists = negative_transfer({"a": [0.95, 1.0, 0.8]}, {"a": [1.0, 1.1, 0.9]}, True)
    assert as_maps.drop(columns="task").equals(as_lists.drop(columns="task"))


def test_degenerate_cases_emit_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = negative_transfer(
            {"worse": [0.5] * 6, "same": [1.0] * 3, "tied": [1.0, 1.1, 1.0, 1.1, 1.0, 1.1]},
            {"worse": [0.6] * 6, "same": [1.0] * 3, "tied": [1.0, 1.0, 1.1, 1.1, 1.0, 1.0]},
            True,
        ).set_index("task")
    assert df.loc["worse", "negative"] and df.loc["worse", "p_value"] == 0.0
    assert df.loc["worse", "effect_size"] == -math.inf
    assert df.loc["same", "effect_size"] == 0.0 and df.loc["same", "p_value"] == 1.0
    assert not df.loc["tied", "negative"]


@pytest.mark.parametrize(
    ("mtl", "stl", "match"),
    [
        ({"a": [1.0, 2.0]}, {"b": [1.0, 2.0]}, r"missing from mtl_scores: \['b'\]"),
        ({"a": [1.0, 2.0, 3.0]}, {"a": [1.0, 2.0]}, "task 'a': 3 mtl scores but 2 stl"),
        ({"a": [1.0]}, {"a": [1.0]}, "task 'a': 1 paired seed.*at least 2"),
        ({"a": {0: 1.0, 1: 2.0}}, {"a": {0: 1.0, 2: 2.0}}, "task 'a': the seeds differ"),
        ({"a": [1.0, np.nan]}, {"a": [1.0, 2.0]}, "task 'a': mtl scores must be finite"),
        ({"a": [[1.0, 2.0]]}, {"a": [[1.0, 2.0]]}, "task 'a'.*1-D"),
    ],
)
def test_negative_transfer_input_errors(mtl: dict, stl: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        negative_transfer(mtl, stl, True)


def test_negative_transfer_argument_errors() -> None:
    scores = {"a": [1.0, 2.0]}
    with pytest.raises(ValueError, match="alpha"):
        negative_transfer(scores, scores, True, alpha=1.5)
    with pytest.raises(ValueError, match="test must be"):
        negative_transfer(scores, scores, True, test="z")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no direction for task 'a'"):
        negative_transfer(scores, scores, {"b": True})
    with pytest.raises(TypeError, match="both be sequences"):
        negative_transfer({"a": {0: 1.0, 1: 2.0}}, scores, True)
    with pytest.raises(TypeError, match="must be a bool"):
        negative_transfer(scores, scores, "yes")  # type: ignore[arg-type]
