"""Pairwise transfer between tasks, and negative transfer against single-task learning.

- :func:`pairwise_transfer` — the ground truth the cheaper measures approximate: train
  every task alone and every (sampled) pair together, and report the relative gain of
  each task in each pair over its single-task score (Standley et al., 2020).
- :func:`rank_agreement` — Spearman rank correlation between a cheap relatedness
  measure (gradient cosine, lookahead affinity, …) and that transfer matrix.
- :func:`negative_transfer` — per task, is multi-task learning *reliably* worse than
  single-task learning over paired seeds?  (statistics in :mod:`._stats`)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from numbers import Real
from typing import Any, Literal

import numpy as np

from polytask._typing import FloatArray
from polytask.relate._checks import (
    as_matrix,
    check_int,
    check_random_state,
    check_task_names,
)
from polytask.relate._stats import negative_transfer

__all__ = ["TransferMatrix", "negative_transfer", "pairwise_transfer", "rank_agreement"]

FitScore = Callable[[tuple[str, ...], int], Mapping[str, float]]
"""``fit_score(tasks, seed) -> {task: score}``: train on ``tasks`` with ``seed``, score each."""


@dataclass(frozen=True, eq=False)
class TransferMatrix:
    """Relative gain of every task when trained with another one, over training alone.

    Parameters
    ----------
    task_names : tuple of str
        Task order of the matrices.
    gain : ndarray of shape (n_tasks, n_tasks)
        ``gain[i, j]``: relative gain (%) of task ``i`` trained with task ``j`` over
        task ``i`` trained alone, positive when the pair is better. The diagonal is 0
        (training with itself is training alone); pairs that were not trained are NaN.
    evaluated : ndarray of bool, shape (n_tasks, n_tasks)
        True where ``gain`` was measured (symmetric, False on the diagonal).
    stl_scores : dict of str to float
        Single-task score of every task (mean over seeds).
    pair_scores : dict of (str, str) to dict of str to float
        Scores of both tasks of every trained pair (mean over seeds).
    n_runs : int
        Number of calls to ``fit_score``.

    Examples
    --------
    >>> def fit_score(tasks, seed):
    ...     return {t: 1.0 + 0.1 * (len(tasks) - 1) for t in tasks}
    >>> res = pairwise_transfer(fit_score, ["a", "b", "c"], pairs=2, random_state=0)
    >>> int(res.evaluated.sum()), res.n_runs, res.matrix is res.gain
    (4, 5, True)
    """

    task_names: tuple[str, ...]
    gain: FloatArray
    evaluated: np.ndarray
    stl_scores: dict[str, float]
    pair_scores: dict[tuple[str, str], dict[str, float]] = field(repr=False)
    n_runs: int

    @property
    def matrix(self) -> FloatArray:
        """The relatedness matrix of this summary: ``gain`` (NaN where not evaluated)."""
        return self.gain


def _directions(
    higher_is_better: bool | Mapping[str, bool], names: tuple[str, ...]
) -> dict[str, bool]:
    if isinstance(higher_is_better, (bool, np.bool_)):
        return dict.fromkeys(names, bool(higher_is_better))
    if not isinstance(higher_is_better, Mapping):
        raise TypeError(
            "higher_is_better must be a bool or a mapping from task to bool, got "
            f"{type(higher_is_better).__name__}"
        )
    missing = [t for t in names if t not in higher_is_better]
    if missing:
        raise ValueError(f"higher_is_better has no direction for tasks {missing}")
    out = {}
    for t in names:
        value = higher_is_better[t]
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"higher_is_better[{t!r}] must be a bool, got {value!r}")
        out[t] = bool(value)
    return out


def _call(fit_score: FitScore, tasks: tuple[str, ...], seeds: Sequence[int]) -> dict[str, float]:
    """Mean score of every task in ``tasks`` over ``seeds``, with the outputs checked."""
    totals = dict.fromkeys(tasks, 0.0)
    for seed in seeds:
        out = fit_score(tasks, seed)
        if not isinstance(out, Mapping):
            raise TypeError(
                f"fit_score{(tasks, seed)} must return a mapping {{task: score}}, "
                f"got {type(out).__name__}"
            )
        for t in tasks:
            if t not in out:
                raise ValueError(f"fit_score{(tasks, seed)} returned no score for task {t!r}")
            value = out[t]
            if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
                raise ValueError(
                    f"fit_score{(tasks, seed)} returned {value!r} for task {t!r}; "
                    "expected a finite number"
                )
            totals[t] += float(value)
    return {t: v / len(seeds) for t, v in totals.items()}


def pairwise_transfer(
    fit_score: FitScore,
    task_names: Sequence[str],
    pairs: Literal["all"] | int = "all",
    *,
    higher_is_better: bool | Mapping[str, bool] = True,
    seeds: Sequence[int] = (0,),
    random_state: int | np.random.Generator | None = None,
) -> TransferMatrix:
    """Train tasks alone and in pairs; the relative gain of each task from each partner.

    ``fit_score((t,), seed)`` gives the single-task scores and ``fit_score((a, b),
    seed)`` the scores of ``a`` and ``b`` trained together; with ``s_i`` the mean STL
    score and ``s_i^{(j)}`` task ``i``'s mean score when trained with ``j`` (over
    ``seeds``),

        gain[i, j] = 100 · (-1)^{l_i} (s_i^{(j)} − s_i) / |s_i|,

    ``l_i = 1`` when lower is better for task ``i`` (see
    :func:`polytask.metrics.relative_gain`). One pair run gives both ``gain[i, j]`` and
    ``gain[j, i]``. The cost is ``len(seeds) · (n_tasks + n_pairs)`` runs; with an
    integer budget only that many unordered pairs are trained, drawn at random without
    replacement.

    Parameters
    ----------
    fit_score : callable
        ``fit_score(tasks: tuple[str, ...], seed: int) -> {task: score}``; it trains a
        model on ``tasks`` (one task: single-task learning) and returns each task's
        validation score.
    task_names : sequence of str
        The tasks, at least two.
    pairs : "all" or int, default="all"
        Every unordered pair, or the number of pairs to sample (``1 <= pairs <=
        n_tasks (n_tasks − 1) / 2``).
    higher_is_better : bool or mapping of str to bool, default=True
        Direction of the score, for all tasks or per task.
    seeds : sequence of int, default=(0,)
        Seeds of every configuration; scores are averaged over them.
    random_state : int, numpy.random.Generator or None
        Seeds the choice of pairs.

    Returns
    -------
    TransferMatrix

    Raises
    ------
    ValueError
        If fewer than two tasks are given, ``pairs`` or ``seeds`` is malformed,
        ``fit_score`` misses a task or returns a non-finite score (the call is named),
        or an STL score is 0 (relative gain undefined).
    TypeError
        If ``fit_score`` does not return a mapping, or a direction is not a bool.

    References
    ----------
    T. Standley, A. Zamir, D. Chen, L. Guibas, J. Malik and S. Savarese, "Which tasks
    should be learned together in multi-task learning?", ICML 2020.

    Examples
    --------
    Tasks ``a`` and ``b`` help each other; ``c`` is hurt by any partner:

    >>> def fit_score(tasks, seed):
    ...     if len(tasks) == 1:
    ...         return {tasks[0]: 0.8}
    ...     if set(tasks) == {"a", "b"}:
    ...         return {"a": 0.9, "b": 0.9}
    ...     return {t: 0.4 if t == "c" else 0.8 for t in tasks}
    >>> res = pairwise_transfer(fit_score, ["a", "b", "c"])
    >>> np.round(res.gain, 1).tolist()
    [[0.0, 12.5, 0.0], [12.5, 0.0, 0.0], [-50.0, -50.0, 0.0]]
    """
    from polytask.metrics import relative_gain

    if not callable(fit_score):
        raise TypeError(f"fit_score must be callable, got {type(fit_score).__name__}")
    names = check_task_names(task_names, None, "task_names")
    m = len(names)
    if m < 2:
        raise ValueError(f"task_names must hold at least two tasks to form pairs, got {m}")
    directions = _directions(higher_is_better, names)
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError("seeds must be a non-empty sequence of ints")
    seed_list = [check_int(s, "seeds[i]", minimum=0) for s in seeds]
    all_pairs = list(combinations(range(m), 2))
    if isinstance(pairs, str):
        if pairs != "all":
            raise ValueError(f"pairs must be 'all' or an int budget, got {pairs!r}")
        chosen = all_pairs
    else:
        budget = check_int(pairs, "pairs", minimum=1, maximum=len(all_pairs))
        rng = check_random_state(random_state)
        picked = np.sort(rng.choice(len(all_pairs), size=budget, replace=False))
        chosen = [all_pairs[int(p)] for p in picked]

    stl = {t: _call(fit_score, (t,), seed_list)[t] for t in names}
    gain = np.full((m, m), np.nan)
    np.fill_diagonal(gain, 0.0)
    evaluated = np.zeros((m, m), dtype=bool)
    pair_scores: dict[tuple[str, str], dict[str, float]] = {}
    for i, j in chosen:
        a, b = names[i], names[j]
        scores = _call(fit_score, (a, b), seed_list)
        pair_scores[(a, b)] = scores
        gains = relative_gain(scores, {a: stl[a], b: stl[b]}, {a: directions[a], b: directions[b]})
        gain[i, j], gain[j, i] = gains[a], gains[b]
        evaluated[i, j] = evaluated[j, i] = True
    return TransferMatrix(
        task_names=names,
        gain=gain,
        evaluated=evaluated,
        stl_scores=stl,
        pair_scores=pair_scores,
        n_runs=len(seed_list) * (m + len(chosen)),
    )


def rank_agreement(measure: Any, reference: Any) -> float:
    """Spearman rank correlation of two relatedness matrices over their off-diagonal entries.

    Judges a cheap measure (gradient cosine, lookahead affinity) against an expensive
    reference (usually :func:`pairwise_transfer`'s gain): 1 means the same ordering of
    task pairs. Entries that are not finite in either matrix (pairs the reference did
    not train) are left out; ordered pairs ``(i, j)`` and ``(j, i)`` count separately.

    Parameters
    ----------
    measure, reference : array_like of shape (n_tasks, n_tasks), or a summary
        Both in the same task order, ``A[i, j]`` = effect of ``j`` on ``i``. Objects
        with a ``matrix`` attribute (the relatedness summaries) are accepted.

    Returns
    -------
    float
        Spearman's rho in [-1, 1].

    Raises
    ------
    ValueError
        If the shapes differ, fewer than 3 entries are finite in both, or either matrix
        is constant on them (the correlation is undefined).

    References
    ----------
    C. Fifty et al., "Efficiently identifying task groupings for multi-task learning",
    NeurIPS 2021 (affinity versus pairwise transfer).

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([[0.0, 3.0, 1.0], [2.0, 0.0, -1.0], [0.5, 4.0, 0.0]])
    >>> rank_agreement(ref ** 3, ref), rank_agreement(-ref, ref)
    (1.0, -1.0)
    """
    from scipy.stats import spearmanr

    a = as_matrix(getattr(measure, "matrix", measure), "measure", square=True)
    b = as_matrix(getattr(reference, "matrix", reference), "reference", square=True)
    if a.shape != b.shape:
        raise ValueError(f"measure has shape {a.shape} but reference has shape {b.shape}")
    off = ~np.eye(a.shape[0], dtype=bool)
    keep = off & np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        raise ValueError(
            f"only {int(keep.sum())} off-diagonal entries are finite in both matrices; "
            "a rank correlation needs at least 3"
        )
    x, y = a[keep], b[keep]
    for name, v in (("measure", x), ("reference", y)):
        if np.all(v == v[0]):
            raise ValueError(
                f"{name} is constant on the compared entries; rank correlation undefined"
            )
    return float(spearmanr(x, y).statistic)
