"""Experiments: STL-vs-MTL runs from a configuration, tidy rows, per-task gains and Δm%.

Every comparison polytask reports is built from one *tidy* table with the columns
``setting, task, method, seed, metric, value`` (one row per measurement).  This module
turns such a table into the per-task view (each method's mean ± std and its relative gain
over the single-task baseline) and into Δm% per method, with its spread over seeds.

It also gives access to the experiment runner (loaded on first use):
:func:`load_config` reads a YAML configuration (:class:`ExperimentConfig`),
:func:`run_experiment` trains the single-task baselines and every model on identical
splits and seeds, resumably (:class:`ExperimentResult`), and :func:`run_relatedness`
measures task relatedness, recommends task groups and checks them
(:class:`RelateResult`).  ``polytask bench | relate | report`` call them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from polytask.metrics import delta_m, get_metric

TIDY_COLUMNS = ("setting", "task", "method", "seed", "metric", "value")


def tidy_frame(rows: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """Build and validate a tidy result table.

    Parameters
    ----------
    rows : iterable of mapping
        Each with the keys ``task, method, seed, metric, value`` and optionally
        ``setting`` (defaults to ``"default"``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TIDY_COLUMNS`.

    Raises
    ------
    ValueError
        If a row misses a column or a value is not finite.

    Examples
    --------
    >>> df = tidy_frame([{"task": "a", "method": "STL", "seed": 0, "metric": "mse",
    ...                   "value": 1.0}])
    >>> list(df.columns)
    ['setting', 'task', 'method', 'seed', 'metric', 'value']
    """
    records = []
    for i, row in enumerate(rows):
        rec = {"setting": "default", **dict(row)}
        missing = [c for c in TIDY_COLUMNS if c not in rec]
        if missing:
            raise ValueError(f"Result row {i} lacks column(s) {missing}; got {sorted(rec)}.")
        value = float(rec["value"])  # type: ignore[arg-type]
        if not np.isfinite(value):
            raise ValueError(
                f"Result row {i} (task {rec['task']!r}, method {rec['method']!r}, metric "
                f"{rec['metric']!r}) has a non-finite value {value}."
            )
        rec["value"] = value
        records.append({c: rec[c] for c in TIDY_COLUMNS})
    return pd.DataFrame.from_records(records, columns=list(TIDY_COLUMNS))


@dataclass(frozen=True)
class Comparison:
    """Per-task and summary view of a tidy table against a baseline method.

    Attributes
    ----------
    per_task : pandas.DataFrame
        One row per (setting, task, method): ``mean``, ``std`` over seeds, and
        ``gain_pct``: the relative gain over the baseline in percent (positive = better,
        sign-corrected for lower-is-better metrics).
    delta_m : pandas.DataFrame
        One row per (setting, method): ``delta_m`` (mean over seeds of the per-seed
        Δm%), ``delta_m_std`` and ``n_seeds``.
    """

    per_task: pd.DataFrame
    delta_m: pd.DataFrame


def compare(df: pd.DataFrame, metric: str, baseline: str = "STL") -> Comparison:
    """Compare every method with ``baseline`` on ``metric``, per task and as Δm%.

    Δm% is computed per setting and seed against the baseline of the same seed
    (identical split), then averaged over seeds (Maninis et al., CVPR 2019).  A seed's
    Δm% is over the tasks that both methods scored: a task whose metric is undefined on
    that seed's test labels (it has no row) is left out of that seed only.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy table (see :func:`tidy_frame`).
    metric : str
        Name of a metric in :data:`polytask.metrics.METRICS` present in ``df``.
    baseline : str, default="STL"
        The single-task method to compare with.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        If the metric or the baseline is absent from the table.

    Examples
    --------
    >>> rows = [{"task": t, "method": m, "seed": 0, "metric": "mse", "value": v}
    ...         for t, m, v in [("a", "STL", 2.0), ("a", "MTL", 1.0),
    ...                         ("b", "STL", 1.0), ("b", "MTL", 1.5)]]
    >>> cmp = compare(tidy_frame(rows), "mse")
    >>> float(cmp.delta_m.set_index("method").loc["MTL", "delta_m"])
    0.0
    """
    higher = get_metric(metric).higher_is_better
    sub = df[df["metric"] == metric]
    if sub.empty:
        raise ValueError(f"compare: metric {metric!r} is not in the table; "
                         f"found {sorted(df['metric'].unique())}.")
    if baseline not in set(sub["method"]):
        raise ValueError(f"compare: baseline method {baseline!r} is not in the table; "
                         f"found {sorted(sub['method'].unique())}.")
    stats = (sub.groupby(["setting", "task", "method"], sort=False)["value"]
             .agg(["mean", "std"]).reset_index())
    stats["std"] = stats["std"].fillna(0.0)
    base = stats[stats["method"] == baseline].set_index(["setting", "task"])["mean"]
    ref = base.reindex(pd.MultiIndex.from_frame(stats[["setting", "task"]])).to_numpy()
    sign = 1.0 if higher else -1.0
    # "+ 0.0" turns the baseline's -0.0 into 0.0; a baseline mean of 0 has no relative
    # gain (NaN, never ±inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = sign * 100.0 * (stats["mean"].to_numpy() - ref) / np.abs(ref) + 0.0
    stats["gain_pct"] = np.where(ref == 0, np.nan, gain)
    zero_base: set[tuple[Any, Any]] = set()

    rows = []
    for (setting, method), grp in sub.groupby(["setting", "method"], sort=False):
        per_seed = []
        for seed, g in grp.groupby("seed"):
            b = sub[(sub["setting"] == setting) & (sub["method"] == baseline)
                    & (sub["seed"] == seed)]
            mtl = dict(zip(g["task"], g["value"], strict=True))
            stl = dict(zip(b["task"], b["value"], strict=True))
            # a task scored by one side only (its metric undefined on this seed's test
            # labels for the other) is left out of this seed's Δm, and so is one whose
            # baseline score is exactly 0 (e.g. a ROC-AUC of 0 on a tiny test part: no
            # relative gain), with a warning below
            zero_base.update((t, seed) for t in stl if stl[t] == 0)
            common = [t for t in stl if t in mtl and stl[t] != 0]
            if not common:
                continue
            per_seed.append(delta_m({t: mtl[t] for t in common},
                                    {t: stl[t] for t in common}, higher))
        if not per_seed:
            continue
        rows.append({"setting": setting, "method": method,
                     "delta_m": float(np.mean(per_seed)),
                     "delta_m_std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1
                     else 0.0, "n_seeds": len(per_seed)})
    if zero_base:
        from polytask.metrics import UndefinedMetricWarning

        listed = ", ".join(f"{t!r} (seed {sd})" for t, sd in sorted(zero_base, key=str))
        warnings.warn(f"compare: the baseline {baseline!r} scores {metric} = 0 on {listed}; "
                      "the relative gain is undefined there, so those tasks are left out "
                      "of that seed's Δm", UndefinedMetricWarning, stacklevel=2)
    return Comparison(per_task=stats, delta_m=pd.DataFrame(rows))


if TYPE_CHECKING:
    from polytask._config import ConfigError, ExperimentConfig, load_config
    from polytask._relate_runner import RelateResult, run_relatedness
    from polytask._runner import ExperimentResult, run_experiment

_RUNNER_NAMES = {
    "ConfigError": "polytask._config",
    "ExperimentConfig": "polytask._config",
    "load_config": "polytask._config",
    "ExperimentResult": "polytask._runner",
    "run_experiment": "polytask._runner",
    "RelateResult": "polytask._relate_runner",
    "run_relatedness": "polytask._relate_runner",
}


def __getattr__(name: str) -> Any:
    if name in _RUNNER_NAMES:
        import importlib

        return getattr(importlib.import_module(_RUNNER_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TIDY_COLUMNS",
    "Comparison",
    "ConfigError",
    "ExperimentConfig",
    "ExperimentResult",
    "RelateResult",
    "compare",
    "load_config",
    "run_experiment",
    "run_relatedness",
    "tidy_frame",
]
