"""Negative transfer: is multi-task learning reliably worse than single-task learning?"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from polytask._typing import FloatArray

if TYPE_CHECKING:
    import pandas as pd

WILCOXON_MIN_SEEDS = 6
"""With ``test="auto"``, the Wilcoxon signed-rank test is used from this many seeds on."""


def _paired(task: str, mtl: Any, stl: Any) -> tuple[FloatArray, FloatArray]:
    """The two score vectors of ``task``, paired by seed; raise naming the task."""
    if isinstance(mtl, Mapping) != isinstance(stl, Mapping):
        raise TypeError(
            f"task {task!r}: mtl and stl scores must both be sequences over seeds or both "
            "mappings {seed: score}"
        )
    if isinstance(mtl, Mapping):
        if set(mtl) != set(stl):
            only_mtl = sorted(map(repr, set(mtl) - set(stl)))
            only_stl = sorted(map(repr, set(stl) - set(mtl)))
            raise ValueError(
                f"task {task!r}: the seeds differ; only in mtl: [{', '.join(only_mtl)}], "
                f"only in stl: [{', '.join(only_stl)}]; scores must be paired by seed"
            )
        keys = list(mtl)
        mtl, stl = [mtl[s] for s in keys], [stl[s] for s in keys]
    arrays = []
    for name, values in (("mtl", mtl), ("stl", stl)):
        try:
            arr = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"task {task!r}: {name} scores must be numbers") from None
        if arr.ndim != 1:
            raise ValueError(
                f"task {task!r}: {name} scores must be 1-D (one per seed), got shape {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"task {task!r}: {name} scores must be finite")
        arrays.append(arr)
    if arrays[0].size != arrays[1].size:
        raise ValueError(
            f"task {task!r}: {arrays[0].size} mtl scores but {arrays[1].size} stl scores; "
            "they must be paired by seed"
        )
    if arrays[0].size < 2:
        raise ValueError(
            f"task {task!r}: {arrays[0].size} paired seed(s); at least 2 are needed to "
            "estimate the spread of the MTL - STL difference"
        )
    return arrays[0], arrays[1]


def _one_sided_p(d: FloatArray, test: str) -> float:
    """P-value of 'MTL is worse' (improvements ``d`` shifted below 0)."""
    from scipy import stats

    if np.all(d == d[0]):  # no spread: the sign alone decides
        return 0.0 if d[0] < 0 else 1.0
    if test == "wilcoxon":
        return float(stats.wilcoxon(d, alternative="less").pvalue)
    return float(stats.ttest_rel(d, np.zeros_like(d), alternative="less").pvalue)


def negative_transfer(
    mtl_scores: Mapping[str, ArrayLike | Mapping[Any, float]],
    stl_scores: Mapping[str, ArrayLike | Mapping[Any, float]],
    higher_is_better: bool | Mapping[str, bool],
    alpha: float = 0.05,
    test: Literal["auto", "t", "wilcoxon"] = "auto",
) -> pd.DataFrame:
    """Per-task test of negative transfer: is MTL reliably worse than STL across seeds?

    For every task the paired improvements ``d_s = ±(mtl_s − stl_s)`` over seeds ``s``
    (sign flipped when lower is better, so ``d > 0`` always means MTL did better) give

    - ``improvement``: the mean ``d̄``; ``difference`` the raw mean ``mtl − stl``;
    - ``ci_low``, ``ci_high``: the two-sided ``1 − alpha`` t interval
      ``d̄ ± t_{1−alpha/2, n−1} · s_d / √n`` of the improvement;
    - ``effect_size``: Cohen's ``d_z = d̄ / s_d`` for paired data (``±inf`` when the
      improvements have no spread, 0 when they are all 0);
    - ``p_value``: one-sided test of "MTL is worse" — the paired t-test
      (``scipy.stats.ttest_rel``) or, from :data:`WILCOXON_MIN_SEEDS` seeds on with
      ``test="auto"``, the Wilcoxon signed-rank test, which does not assume normal
      differences and from 6 seeds on can reach p < 0.05 (its smallest one-sided p is
      ``2^{-n}``). With no spread, ``p`` is 0 if every seed is worse by the same
      amount and 1 otherwise;
    - ``negative``: reliably worse, i.e. ``p_value < alpha`` **and** ``ci_high < 0``.
      With the t-test the interval condition is the stricter one (it is the two-sided
      test at ``alpha``), so the flag is conservative.

    Parameters
    ----------
    mtl_scores, stl_scores : mapping of str to array_like or to mapping
        ``{task: scores}``, the scores one per seed: sequences in the same seed order,
        or mappings ``{seed: score}`` (then matched by seed). Same tasks in both.
    higher_is_better : bool or mapping of str to bool
        Direction of the score, for all tasks or per task.
    alpha : float, default=0.05
        Level of the test and of the interval, in (0, 1).
    test : {"auto", "t", "wilcoxon"}, default="auto"
        The paired test; ``"auto"`` picks Wilcoxon from 6 seeds on, the t-test below.

    Returns
    -------
    pandas.DataFrame
        One row per task, in the order of ``stl_scores``; columns ``task``, ``n_seeds``,
        ``test``, ``mtl_mean``, ``stl_mean``, ``difference``, ``improvement``,
        ``ci_low``, ``ci_high``, ``effect_size``, ``p_value``, ``negative``.

    Raises
    ------
    ValueError
        If the tasks differ, a task's seeds or lengths differ, a task has fewer than 2
        paired seeds, a score is not finite, ``alpha`` is not in (0, 1) or ``test`` is
        unknown; the message names the task.
    TypeError
        If a direction is not a bool or scores are not numbers.

    References
    ----------
    D. Lakens, "Calculating and reporting effect sizes to facilitate cumulative science:
    a practical primer for t-tests and ANOVAs", Frontiers in Psychology 4, 2013 (d_z).
    F. Wilcoxon, "Individual comparisons by ranking methods", Biometrics Bulletin 1(6),
    1945.

    Examples
    --------
    >>> mtl = {"a": [0.70, 0.71, 0.69, 0.70], "b": [0.90, 0.91, 0.92, 0.90]}
    >>> stl = {"a": [0.80, 0.80, 0.81, 0.79], "b": [0.89, 0.90, 0.90, 0.91]}
    >>> df = negative_transfer(mtl, stl, higher_is_better=True)
    >>> df[["task", "test", "negative"]].values.tolist()
    [['a', 't', True], ['b', 't', False]]
    >>> bool((df["ci_high"] < 0).iloc[0]), round(float(df["improvement"].iloc[0]), 3)
    (True, -0.1)
    """
    import pandas as pd
    from scipy import stats

    if not isinstance(mtl_scores, Mapping) or not isinstance(stl_scores, Mapping):
        raise TypeError("mtl_scores and stl_scores must be mappings {task: scores}")
    missing = [t for t in stl_scores if t not in mtl_scores]
    extra = [t for t in mtl_scores if t not in stl_scores]
    if missing or extra:
        raise ValueError(
            f"mtl_scores and stl_scores must have the same tasks; missing from mtl_scores: "
            f"{missing}; extra in mtl_scores: {extra}"
        )
    if not stl_scores:
        raise ValueError("stl_scores is empty; expected at least one task")
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    if test not in ("auto", "t", "wilcoxon"):
        raise ValueError(f"test must be 'auto', 't' or 'wilcoxon', got {test!r}")
    rows = []
    for task in stl_scores:
        if isinstance(higher_is_better, Mapping):
            if task not in higher_is_better:
                raise ValueError(f"higher_is_better has no direction for task {task!r}")
            direction = higher_is_better[task]
        else:
            direction = higher_is_better
        if not isinstance(direction, (bool, np.bool_)):
            raise TypeError(f"higher_is_better for task {task!r} must be a bool, got {direction!r}")
        mtl, stl = _paired(task, mtl_scores[task], stl_scores[task])
        n = mtl.size
        d = (mtl - stl) if direction else (stl - mtl)
        mean, sd = float(d.mean()), float(d.std(ddof=1))
        half = float(stats.t.ppf(1 - float(alpha) / 2, n - 1)) * sd / math.sqrt(n)
        if sd > 0:
            effect = mean / sd
        else:
            effect = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        used = test if test != "auto" else ("wilcoxon" if n >= WILCOXON_MIN_SEEDS else "t")
        p = _one_sided_p(d, used)
        rows.append(
            {
                "task": task,
                "n_seeds": n,
                "test": used,
                "mtl_mean": float(mtl.mean()),
                "stl_mean": float(stl.mean()),
                "difference": float((mtl - stl).mean()),
                "improvement": mean,
                "ci_low": mean - half,
                "ci_high": mean + half,
                "effect_size": effect,
                "p_value": p,
                "negative": bool(p < float(alpha) and mean + half < 0),
            }
        )
    return pd.DataFrame(rows)
