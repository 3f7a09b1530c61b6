"""The metric registry: consistent names, directions that match the functions, defaults."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from polytask._typing import TASK_KINDS
from polytask.metrics import DEFAULT_METRICS, METRICS, MetricSpec, get_metric, mse


def _perfect_and_worse(spec: MetricSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets, a perfect prediction and a worse one, of the kind the metric takes."""
    rng = np.random.default_rng(0)
    if spec.prediction == "value":
        y = rng.normal(size=30)
        return y, y.copy(), y + rng.normal(size=30)
    y = np.tile([0, 1], 15)
    if spec.prediction == "label":
        return y, y.copy(), np.where(rng.random(30) < 0.4, 1 - y, y)
    if spec.prediction == "score":
        return y, y + 0.1 * rng.random(30), rng.random(30)
    return y, 0.05 + 0.9 * y, np.full(30, 0.5)  # probabilities


@pytest.mark.parametrize("name", sorted(METRICS))
def test_direction_agrees_with_the_function(name):
    spec = METRICS[name]
    y, perfect, worse = _perfect_and_worse(spec)
    assert (spec(y, perfect) > spec(y, worse)) == spec.higher_is_better


@pytest.mark.parametrize("name", sorted(METRICS))
def test_entries_are_consistent(name):
    spec = get_metric(name)
    assert spec.name == name
    assert spec.fn.__name__ == name
    assert spec.kind in ("regression", "classification")
    assert (spec.kind == "regression") == (spec.prediction == "value")


def test_defaults_cover_every_task_kind_with_known_metrics():
    assert set(DEFAULT_METRICS) == set(TASK_KINDS)
    assert DEFAULT_METRICS["regression"] == ("mse", "mae", "explained_variance")
    for kind, names in DEFAULT_METRICS.items():
        expected = "regression" if kind == "regression" else "classification"
        assert all(METRICS[n].kind == expected for n in names)


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        METRICS["mine"] = METRICS["mse"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        METRICS["mse"].higher_is_better = True  # type: ignore[misc]


def test_spec_is_callable():
    spec = MetricSpec("mse", mse, False, "regression")
    assert spec([0.0, 0.0], [1.0, 3.0]) == pytest.approx(5.0)


def test_unknown_name_lists_known_names():
    match = r"unknown metric 'auc'; known metrics: accuracy, .*roc_auc"
    with pytest.raises(ValueError, match=match):
        get_metric("auc")


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="metric name must be a string; got int"):
        get_metric(3)  # type: ignore[arg-type]
