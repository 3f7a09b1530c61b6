"""Comparison tables of a run: per task, Δm% and negative transfer, per baseline.

Every method is compared with its own baseline (``models[i].baseline``; by default the
first single-task model of the same type), on the main tasks and the comparison metric,
over the (setting, seed) pairs where the baseline finished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from polytask._config import ExperimentConfig
from polytask.experiment import compare

PER_TASK_COLUMNS = ("setting", "task", "method", "mean", "std", "gain_pct", "baseline")
DELTA_COLUMNS = ("setting", "method", "delta_m", "delta_m_std", "n_seeds", "baseline",
                 "metric")
NEGATIVE_COLUMNS = ("setting", "method", "baseline", "task", "n_seeds", "test", "mtl_mean",
                    "stl_mean", "difference", "improvement", "ci_low", "ci_high",
                    "effect_size", "p_value", "negative")


def main_metric(cfg: ExperimentConfig, records: Sequence[Mapping[str, Any]]) -> str:
    """The comparison metric: ``cfg.metric``, else the first main task's primary metric."""
    if cfg.metric is not None:
        return cfg.metric
    for r in records:
        main = r.get("main") or list(r.get("primary", {}))
        if main and main[0] in r.get("primary", {}):
            return str(r["primary"][main[0]])
    return "unknown"


def _paired_scores(part: pd.DataFrame, method: str) -> dict[str, dict[int, float]]:
    rows = part[part["method"] == method]
    return {str(t): dict(zip(g["seed"].astype(int), g["value"].astype(float), strict=True))
            for t, g in rows.groupby("task", sort=False)}


def negative_rows(part: pd.DataFrame, base: str, higher: bool, alpha: float
                  ) -> list[dict[str, Any]]:
    """Negative-transfer tests of every method of ``part`` against ``base``, per setting."""
    from polytask.relate import negative_transfer

    out: list[dict[str, Any]] = []
    for setting, sp in part.groupby("setting", sort=False):
        stl = _paired_scores(sp, base)
        for method in sp["method"].unique():
            if method == base:
                continue
            mtl = _paired_scores(sp, str(method))
            tasks = [t for t in stl if t in mtl]
            common = {t: sorted(set(stl[t]) & set(mtl[t])) for t in tasks}
            if not tasks or min(len(s) for s in common.values()) < 2:
                continue
            df = negative_transfer({t: {s: mtl[t][s] for s in common[t]} for t in tasks},
                                   {t: {s: stl[t][s] for s in common[t]} for t in tasks},
                                   higher_is_better=higher, alpha=alpha)
            for rec in df.to_dict("records"):
                out.append({"setting": setting, "method": method, "baseline": base,
                            **{str(k): v for k, v in rec.items()}})
    return out


def comparisons(table: pd.DataFrame, baselines: Mapping[str, str], metric: str,
                main_tasks: Sequence[str], alpha: float = 0.05
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per-task gains, Δm% and negative-transfer tests of every method against its baseline.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy results.
    baselines : mapping of str to str
        ``{method: its baseline method}``.
    metric : str
        The comparison metric.
    main_tasks : sequence of str
        Tasks entering the comparison (auxiliary ones are left out).
    alpha : float, default=0.05
        Level of the negative-transfer test.

    Returns
    -------
    per_task, delta_m, negative_transfer : pandas.DataFrame
        With a ``baseline`` column; empty (with their columns) when nothing compares.

    Examples
    --------
    >>> from polytask.experiment import tidy_frame
    >>> rows = [{"task": t, "method": m, "seed": s, "metric": "mse", "value": v}
    ...         for s in (0, 1) for t, m, v in [("a", "STL", 2.0), ("a", "MTL", 1.0 + s)]]
    >>> per, dm, neg = comparisons(tidy_frame(rows), {"STL": "STL", "MTL": "STL"}, "mse",
    ...                            ["a"])
    >>> float(dm.set_index("method").loc["MTL", "delta_m"]), bool(neg["negative"].any())
    (25.0, False)
    """
    from polytask.metrics import get_metric

    empty = (pd.DataFrame(columns=list(PER_TASK_COLUMNS)),
             pd.DataFrame(columns=list(DELTA_COLUMNS)),
             pd.DataFrame(columns=list(NEGATIVE_COLUMNS)))
    if table.empty or metric == "unknown":
        return empty
    sub = table[(table["metric"] == metric) & table["task"].isin(list(main_tasks))]
    higher = get_metric(metric).higher_is_better
    groups: dict[str, list[str]] = {}
    for method, base in baselines.items():
        groups.setdefault(base, [])
        if method != base:
            groups[base].append(method)
    per_parts, dm_parts, neg_rows = [], [], []
    for base, members in groups.items():
        part = sub[sub["method"].isin([base, *members])]
        have = part.loc[part["method"] == base, ["setting", "seed"]].drop_duplicates()
        part = part.merge(have, on=["setting", "seed"])
        if part.empty:
            continue
        cmp = compare(part, metric, baseline=base)
        per_parts.append(cmp.per_task.assign(baseline=base))
        dm_parts.append(cmp.delta_m.assign(baseline=base, metric=metric))
        neg_rows += negative_rows(part, base, higher, alpha)
    if not dm_parts:
        return empty
    per = pd.concat(per_parts, ignore_index=True)
    dm = pd.concat(dm_parts, ignore_index=True)
    # a baseline that has a baseline of its own is reported against that one only
    per = per[[baselines.get(m) == b for m, b in zip(per["method"], per["baseline"],
                                                      strict=True)]]
    dm = dm[[baselines.get(m) == b for m, b in zip(dm["method"], dm["baseline"], strict=True)]]
    neg = pd.DataFrame(neg_rows, columns=list(NEGATIVE_COLUMNS))
    return per[list(PER_TASK_COLUMNS)], dm[list(DELTA_COLUMNS)], neg


__all__ = ["comparisons", "main_metric", "negative_rows"]
