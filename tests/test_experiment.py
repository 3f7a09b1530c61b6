"""Tests for polytask.experiment: tidy tables, per-task gains and Δm% over seeds."""

from __future__ import annotations

import numpy as np
import pytest

from polytask.experiment import TIDY_COLUMNS, compare, tidy_frame


def _rows(values: dict[tuple[str, str, int], float], metric: str = "mse") -> list[dict]:
    return [{"task": t, "method": m, "seed": s, "metric": metric, "value": v}
            for (t, m, s), v in values.items()]


def test_tidy_frame_validates_rows() -> None:
    df = tidy_frame(_rows({("a", "STL", 0): 1.0}))
    assert tuple(df.columns) == TIDY_COLUMNS
    assert df.loc[0, "setting"] == "default"
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['metric'\]"):
        tidy_frame([{"task": "a", "method": "m", "seed": 0, "value": 1.0}])
    with pytest.raises(ValueError, match=r"task 'a', method 'm'.*non-finite value nan"):
        tidy_frame([{"task": "a", "method": "m", "seed": 0, "metric": "mse",
                     "value": float("nan")}])


def test_compare_lower_is_better_gains_and_delta_m_over_seeds() -> None:
    # seed 0: task a 2 -> 1 (+50%), task b 1 -> 1.5 (-50%)  => Δm = 0
    # seed 1: task a 2 -> 1 (+50%), task b 1 -> 0.5 (+50%)  => Δm = +50
    values = {("a", "STL", 0): 2.0, ("a", "MTL", 0): 1.0, ("b", "STL", 0): 1.0,
              ("b", "MTL", 0): 1.5, ("a", "STL", 1): 2.0, ("a", "MTL", 1): 1.0,
              ("b", "STL", 1): 1.0, ("b", "MTL", 1): 0.5}
    cmp = compare(tidy_frame(_rows(values)), "mse")
    dm = cmp.delta_m.set_index("method")
    assert dm.loc["MTL", "delta_m"] == pytest.approx(25.0)
    assert dm.loc["MTL", "delta_m_std"] == pytest.approx(np.std([0.0, 50.0], ddof=1))
    assert dm.loc["STL", "delta_m"] == pytest.approx(0.0)
    per = cmp.per_task.set_index(["task", "method"])
    assert per.loc[("a", "MTL"), "gain_pct"] == pytest.approx(50.0)
    assert per.loc[("b", "MTL"), "gain_pct"] == pytest.approx(0.0)  # mean 1.0 vs 1.0
    assert per.loc[("b", "MTL"), "std"] == pytest.approx(np.std([1.5, 0.5], ddof=1))


def test_compare_higher_is_better_sign() -> None:
    values = {("a", "STL", 0): 0.5, ("a", "MTL", 0): 0.6}
    cmp = compare(tidy_frame(_rows(values, metric="accuracy")), "accuracy")
    assert cmp.delta_m.set_index("method").loc["MTL", "delta_m"] == pytest.approx(20.0)


def test_compare_errors() -> None:
    df = tidy_frame(_rows({("a", "STL", 0): 1.0}))
    with pytest.raises(ValueError, match="metric 'accuracy' is not in the table"):
        compare(df, "accuracy")
    with pytest.raises(ValueError, match="baseline method 'ridge' is not in the table"):
        compare(df, "mse", baseline="ridge")
