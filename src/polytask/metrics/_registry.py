"""The metric registry: names, directions and default metrics of each task kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from numpy.typing import ArrayLike

from polytask._typing import TaskKind
from polytask.metrics._classification import (
    accuracy,
    average_precision,
    f1_macro,
    f1_micro,
    hamming_loss,
    log_loss,
    roc_auc,
)
from polytask.metrics._counts import n_fn, n_fp, n_tp
from polytask.metrics._regression import (
    explained_variance,
    explained_variance_mse,
    mae,
    mse,
    r2,
    rmse,
    rrmse,
)
from polytask.metrics._sequence import chunk_f1_ids

MetricFn = Callable[[ArrayLike, ArrayLike], float]
"""A metric: ``fn(y_true, y_pred) -> float``."""

MetricKind = Literal["regression", "classification"]
PredictionType = Literal["value", "label", "score", "probability"]


@dataclass(frozen=True)
class MetricSpec:
    """A named metric with its direction and the kind of prediction it takes.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"roc_auc"``.
    fn : callable
        ``fn(y_true, y_pred) -> float``.
    higher_is_better : bool
        Direction of the metric (used by :func:`~polytask.metrics.delta_m` and model
        selection).
    kind : {"regression", "classification"}
        The family of tasks the metric applies to.
    prediction : {"value", "label", "score", "probability"}, default "value"
        What ``fn`` expects as ``y_pred``: real values (regression), hard labels,
        real-valued scores of the positive class, or probabilities.
    is_count : bool, default False
        The metric is a count that grows with the test set (``n_tp``, ``n_fp``,
        ``n_fn``): meant to be summed over tasks, never a task's primary metric nor the
        Δm% comparison metric. ``higher_is_better`` still gives its direction at a fixed
        test set.

    Examples
    --------
    >>> spec = MetricSpec("mse", mse, higher_is_better=False, kind="regression")
    >>> spec.fn([0.0, 1.0], [0.0, 3.0])
    2.0
    """

    name: str
    fn: MetricFn
    higher_is_better: bool
    kind: MetricKind
    prediction: PredictionType = "value"
    is_count: bool = False

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        """Evaluate the metric, ``fn(y_true, y_pred)``."""
        return self.fn(y_true, y_pred)


def _build_registry() -> Mapping[str, MetricSpec]:
    specs = [
        MetricSpec("mse", mse, False, "regression"),
        MetricSpec("rmse", rmse, False, "regression"),
        MetricSpec("mae", mae, False, "regression"),
        MetricSpec("explained_variance", explained_variance, True, "regression"),
        MetricSpec("explained_variance_mse", explained_variance_mse, True, "regression"),
        MetricSpec("r2", r2, True, "regression"),
        MetricSpec("accuracy", accuracy, True, "classification", "label"),
        MetricSpec("roc_auc", roc_auc, True, "classification", "score"),
        MetricSpec("average_precision", average_precision, True, "classification", "score"),
        MetricSpec("f1_micro", f1_micro, True, "classification", "label"),
        MetricSpec("f1_macro", f1_macro, True, "classification", "label"),
        MetricSpec("hamming_loss", hamming_loss, False, "classification", "label"),
        MetricSpec("log_loss", log_loss, False, "classification", "probability"),
        MetricSpec("rrmse", rrmse, False, "regression"),
        MetricSpec("n_tp", n_tp, True, "classification", "label", is_count=True),
        MetricSpec("n_fp", n_fp, False, "classification", "label", is_count=True),
        MetricSpec("n_fn", n_fn, False, "classification", "label", is_count=True),
        # conlleval's chunk F1 of class ids coded O = 0, B-X = 2k+1, I-X = 2k+2, rows in
        # corpus order (polytask.data.conll_windows); chunk_f1 itself takes string tags
        MetricSpec("chunk_f1_ids", chunk_f1_ids, True, "classification", "label"),
    ]
    return MappingProxyType({spec.name: spec for spec in specs})


METRICS: Mapping[str, MetricSpec] = _build_registry()
"""Every single-task metric of polytask, by name (read-only)."""

DEFAULT_METRICS: Mapping[TaskKind, tuple[str, ...]] = MappingProxyType(
    {
        "regression": ("mse", "mae", "explained_variance"),
        "binary": ("roc_auc", "accuracy", "average_precision"),
        "multiclass": ("accuracy", "f1_macro"),
        "multilabel": ("f1_micro", "f1_macro", "hamming_loss"),
    }
)
"""The metrics reported by default for each task kind (read-only)."""


def get_metric(name: str) -> MetricSpec:
    """The registered metric called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`METRICS`.

    Returns
    -------
    MetricSpec

    Raises
    ------
    ValueError
        If no metric has that name (the message lists the known names).
    TypeError
        If ``name`` is not a string.

    Examples
    --------
    >>> spec = get_metric("roc_auc")
    >>> spec.higher_is_better, spec.kind, spec.prediction
    (True, 'classification', 'score')
    """
    if not isinstance(name, str):
        raise TypeError(f"metric name must be a string; got {type(name).__name__}")
    try:
        return METRICS[name]
    except KeyError:
        known = ", ".join(sorted(METRICS))
        raise ValueError(f"unknown metric {name!r}; known metrics: {known}") from None
