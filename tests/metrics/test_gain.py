"""Δm and relative gains: hand-derived cases, defining properties and every refusal."""

from __future__ import annotations

import numpy as np
import pytest

from polytask.metrics import delta_m, relative_gain


def test_hand_derived_mixed_directions():
    # accuracy 0.80 -> 0.84 is +5 %; error 0.50 -> 0.60 is 20 % worse, i.e. -20 %
    stl = {"cls": 0.80, "reg": 0.50}
    mtl = {"cls": 0.84, "reg": 0.60}
    hib = {"cls": True, "reg": False}
    gains = relative_gain(mtl, stl, hib)
    assert gains == pytest.approx({"cls": 5.0, "reg": -20.0})
    assert delta_m(mtl, stl, hib) == pytest.approx(-7.5)


def test_lower_is_better_improvement_is_positive():
    assert delta_m({"a": 1.0}, {"a": 4.0}, higher_is_better=False) == pytest.approx(75.0)
    assert delta_m({"a": 1.0}, {"a": 4.0}, higher_is_better=True) == pytest.approx(-75.0)


def test_task_metric_tuple_keys():
    stl = {("t1", "mse"): 2.0, ("t1", "mae"): 1.0, ("t2", "r2"): 0.5}
    mtl = {("t1", "mse"): 1.0, ("t1", "mae"): 1.5, ("t2", "r2"): 0.6}
    hib = {("t1", "mse"): False, ("t1", "mae"): False, ("t2", "r2"): True}
    assert delta_m(mtl, stl, hib) == pytest.approx((50.0 - 50.0 + 20.0) / 3)


def test_negative_stl_value_keeps_the_meaning_of_the_sign():
    # R² from -0.5 (STL) to -0.25 (MTL) is an improvement of 50 % of |STL|
    assert relative_gain({"a": -0.25}, {"a": -0.5}, True)["a"] == pytest.approx(50.0)


def test_keys_follow_the_order_of_stl():
    gains = relative_gain({"b": 1.0, "a": 1.0}, {"a": 2.0, "b": 2.0}, False)
    assert list(gains) == ["a", "b"]


@pytest.mark.parametrize("seed", range(5))
def test_properties(seed):
    rng = np.random.default_rng(seed)
    names = [f"task_{i}" for i in range(5)]
    stl = {k: float(v) for k, v in zip(names, rng.uniform(0.1, 2.0, 5), strict=True)}
    mtl = {k: float(v) for k, v in zip(names, rng.uniform(0.1, 2.0, 5), strict=True)}
    hib = {k: bool(v) for k, v in zip(names, rng.integers(0, 2, 5), strict=True)}
    flipped = {k: not v for k, v in hib.items()}
    assert delta_m(stl, stl, hib) == 0.0
    assert delta_m(mtl, stl, flipped) == pytest.approx(-delta_m(mtl, stl, hib))
    gains = relative_gain(mtl, stl, hib)
    assert delta_m(mtl, stl, hib) == pytest.approx(np.mean(list(gains.values())))
    for k in names:  # each term is the signed relative change, written out
        sign = 1.0 if hib[k] else -1.0
        assert gains[k] == pytest.approx(100 * sign * (mtl[k] / stl[k] - 1.0))


def test_numpy_scalars_are_accepted():
    mtl = {"a": np.float32(2.0)}
    stl = {"a": np.float64(1.0)}
    assert delta_m(mtl, stl, np.True_) == 100.0  # type: ignore[arg-type]
    assert delta_m(mtl, stl, {"a": np.False_}) == -100.0  # type: ignore[arg-type,dict-item]


class TestErrors:
    def test_missing_and_extra_keys_are_listed(self):
        with pytest.raises(ValueError, match=r"missing from mtl: \['b'\]; extra in mtl: \['c'\]"):
            delta_m({"a": 1.0, "c": 1.0}, {"a": 1.0, "b": 1.0}, True)

    def test_direction_keys_must_match(self):
        with pytest.raises(ValueError, match=r"missing from higher_is_better: \['b'\]"):
            relative_gain({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0}, {"a": True})

    def test_zero_stl_names_the_task(self):
        with pytest.raises(ValueError, match=r"stl\['depth'\] is 0: .* undefined for 'depth'"):
            delta_m({"seg": 1.0, "depth": 1.0}, {"seg": 1.0, "depth": 0.0}, True)

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite_value(self, bad):
        with pytest.raises(ValueError, match=r"mtl\['a'\] must be finite"):
            delta_m({"a": bad}, {"a": 1.0}, True)

    @pytest.mark.parametrize("bad", ["0.5", None, True])
    def test_non_real_value(self, bad):
        with pytest.raises(TypeError, match=r"stl\['a'\] must be a real number"):
            delta_m({"a": 1.0}, {"a": bad}, True)

    def test_empty(self):
        with pytest.raises(ValueError, match="stl is empty"):
            delta_m({}, {}, True)

    @pytest.mark.parametrize("bad", [1, "yes", None])
    def test_direction_not_bool(self, bad):
        with pytest.raises(TypeError, match="higher_is_better must be a bool or a mapping"):
            delta_m({"a": 1.0}, {"a": 1.0}, bad)

    def test_direction_entry_not_bool(self):
        with pytest.raises(TypeError, match=r"higher_is_better\['a'\] must be a bool"):
            delta_m({"a": 1.0}, {"a": 1.0}, {"a": 1})  # type: ignore[dict-item]

    def test_not_mappings(self):
        with pytest.raises(TypeError, match="mtl and stl must be mappings"):
            delta_m([1.0], [1.0], True)  # type: ignore[arg-type]
