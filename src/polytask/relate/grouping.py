"""Which tasks to train together, given a task affinity matrix and a budget of k models.

The input ``A`` is any ``(n_tasks, n_tasks)`` relatedness matrix read as
``A[i, j]`` = *effect of task j on task i* (asymmetric allowed): the mean lookahead
affinity (:class:`~polytask.relate.AffinityTracker`), the mean gradient cosine, the
pairwise transfer matrix, …  The diagonal is ignored. A task ``i`` trained in group
``g`` scores ``score(i, g) = mean_{j ∈ g, j ≠ i} A[i, j]`` (``singleton_score``, 0 by
default, when it is trained alone — single-task learning is the reference point).

- :func:`select_task_groups` — TAG's formulation (Fifty et al., 2021; Standley et al.,
  2020): choose at most ``k`` groups, possibly overlapping, that cover every task, and
  serve each task by the chosen group where it scores best; maximise
  ``Σ_i max_{g ∋ i} score(i, g)``.
- :func:`partition_tasks` — the simpler variant: split the tasks into exactly ``k``
  disjoint groups, maximising ``Σ_i score(i, group(i))``.
- :func:`grouping_score` — the objective of a given grouping.

Search. For up to :data:`AUTO_EXACT_MAX_TASKS` tasks (``method="auto"``) the optimum is
exact: both problems are set partitions of the tasks into served blocks, solved by
dynamic programming over subsets in ``O(3^m k)`` (``method="exact"`` accepts up to 14
tasks). Beyond, a seeded multi-start local search (a k-means start plus random starts;
task moves and swaps, and for overlapping groups add/remove/exchange moves with random
kicks) gives a good answer that is not certified optimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from polytask._typing import FloatArray
from polytask.relate import _group_exact, _group_heuristic
from polytask.relate._checks import (
    as_matrix,
    check_float,
    check_int,
    check_random_state,
    check_task_names,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AUTO_EXACT_MAX_TASKS",
    "TaskGrouping",
    "grouping_score",
    "partition_tasks",
    "select_task_groups",
]

AUTO_EXACT_MAX_TASKS = 10
"""``method="auto"`` searches exactly up to this many tasks, heuristically beyond."""

Method = Literal["auto", "exact", "heuristic"]


@dataclass(frozen=True, eq=False)
class TaskGrouping:
    """Groups of tasks to train together.

    Parameters
    ----------
    task_names : tuple of str
        All tasks, in the order of the affinity matrix.
    groups : tuple of tuple of str
        The groups (one model each), every group's tasks in matrix order.
    served_by : dict of str to int
        For every task, the index in ``groups`` of the group whose model it is
        evaluated from (the group where its score is best).
    task_scores : dict of str to float
        ``score(i, served_by[i])`` of every task.
    group_scores : tuple of tuple of float
        ``score(i, g)`` of every member ``i`` of every group ``g``, aligned with
        ``groups`` (a task's entry in a group that does not serve it is lower or tied).
    score : float
        The objective, the sum of ``task_scores``.
    method : {"exact", "heuristic"}
        How the grouping was found.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[0, 1, -1], [1, 0, -1], [-1, -1, 0]], dtype=float)
    >>> res = partition_tasks(A, 2, task_names=["a", "b", "c"])
    >>> res.groups, res.served_by["c"], res.score
    ((('a', 'b'), ('c',)), 1, 2.0)
    """

    task_names: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    served_by: dict[str, int]
    task_scores: dict[str, float]
    group_scores: tuple[tuple[float, ...], ...]
    score: float
    method: Literal["exact", "heuristic"]

    @property
    def group_indices(self) -> tuple[tuple[int, ...], ...]:
        """The groups as task indices."""
        index = {n: i for i, n in enumerate(self.task_names)}
        return tuple(tuple(index[t] for t in g) for g in self.groups)

    def to_frame(self) -> pd.DataFrame:
        """One row per (group, member): columns ``group``, ``task``, ``serves``, ``score``.

        ``serves`` is True when the group's model is the one the task is served by;
        ``score`` is ``score(task, group)``.
        """
        import pandas as pd

        rows = [
            {"group": g, "task": t, "serves": self.served_by[t] == g, "score": value}
            for g, (members, values) in enumerate(zip(self.groups, self.group_scores, strict=True))
            for t, value in zip(members, values, strict=True)
        ]
        return pd.DataFrame(rows)


def _prepare(
    affinity: Any, task_names: Sequence[str] | None, singleton_score: float
) -> tuple[FloatArray, tuple[str, ...], float]:
    """Zero-diagonal affinity, task names and singleton score, checked."""
    if task_names is None and hasattr(affinity, "task_names") and hasattr(affinity, "matrix"):
        task_names = affinity.task_names
    if hasattr(affinity, "matrix"):
        affinity = affinity.matrix
    A = as_matrix(affinity, "affinity", square=True)
    bad = ~np.isfinite(A) & ~np.eye(A.shape[0], dtype=bool)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(
            f"affinity[{i}, {j}] is {A[i, j]}; every off-diagonal entry must be finite "
            "(fill the pairs that were not measured, e.g. by a pair budget)"
        )
    names = check_task_names(task_names, A.shape[0], "task_names")
    np.fill_diagonal(A, 0.0)
    return A, names, check_float(singleton_score, "singleton_score")


def _resolve_method(method: object, m: int) -> Literal["exact", "heuristic"]:
    if method not in ("auto", "exact", "heuristic"):
        raise ValueError(f"method must be 'auto', 'exact' or 'heuristic', got {method!r}")
    if method == "exact" and m > _group_exact.EXACT_LIMIT:
        raise ValueError(
            f"method='exact' handles at most {_group_exact.EXACT_LIMIT} tasks (the search "
            f"is O(3^m)), got {m}; use method='heuristic'"
        )
    if method == "auto":
        return "exact" if m <= AUTO_EXACT_MAX_TASKS else "heuristic"
    return method  # type: ignore[return-value]


def _task_scores(A0: FloatArray, groups: list[tuple[int, ...]], singleton: float) -> FloatArray:
    """(n_groups, m) ``score(i, g)``, ``-inf`` where ``i ∉ g``."""
    m = A0.shape[0]
    B = np.zeros((len(groups), m), dtype=bool)
    for g, members in enumerate(groups):
        B[g, list(members)] = True
    sizes = B.sum(axis=1)
    sums = B.astype(float) @ A0.T
    scores = np.where(sizes[:, None] == 1, singleton, sums / np.maximum(sizes - 1, 1)[:, None])
    out: FloatArray = np.where(B, scores, -np.inf)
    return out


def _result(
    A0: FloatArray,
    names: tuple[str, ...],
    groups: list[tuple[int, ...]],
    singleton: float,
    method: Literal["exact", "heuristic"],
) -> TaskGrouping:
    groups = sorted(set(groups))
    scores = _task_scores(A0, groups, singleton)
    serving = scores.argmax(axis=0)  # first best group on ties
    used = sorted(set(serving.tolist()))
    renumber = {g: k for k, g in enumerate(used)}
    best = scores.max(axis=0)
    return TaskGrouping(
        task_names=names,
        groups=tuple(tuple(names[i] for i in groups[g]) for g in used),
        served_by={names[i]: renumber[int(g)] for i, g in enumerate(serving)},
        task_scores={names[i]: float(best[i]) for i in range(len(names))},
        group_scores=tuple(tuple(float(scores[g, i]) for i in groups[g]) for g in used),
        score=float(best.sum()),
        method=method,
    )


def select_task_groups(
    affinity: Any,
    k: int,
    *,
    task_names: Sequence[str] | None = None,
    method: Method = "auto",
    singleton_score: float = 0.0,
    n_init: int = 8,
    random_state: int | np.random.Generator | None = None,
) -> TaskGrouping:
    """Choose at most ``k`` (possibly overlapping) groups of tasks, TAG's formulation.

    Maximise ``Σ_i max_{g ∈ S, g ∋ i} score(i, g)`` over sets ``S`` of at most ``k``
    groups covering every task, with ``score(i, g) = mean_{j ∈ g, j ≠ i} A[i, j]``
    (``singleton_score`` for ``g = {i}``). A task may belong to several groups; it is
    *served* by the one where it scores best, and a chosen group serving no task is
    dropped (so fewer than ``k`` groups may come back).

    Parameters
    ----------
    affinity : array_like of shape (n_tasks, n_tasks), or a relatedness summary
        ``A[i, j]``: effect of task ``j`` on task ``i``; the diagonal is ignored. An
        object with ``matrix`` and ``task_names`` attributes (``TaskAffinity``,
        ``GradientSimilarity``, ``TransferMatrix``) is accepted too.
    k : int
        Budget of groups (models), ``1 <= k <= n_tasks``.
    task_names : sequence of str, optional
        Names of the tasks; default those of the summary, or ``task_0, task_1, …``.
    method : {"auto", "exact", "heuristic"}, default="auto"
        ``"exact"`` for at most 14 tasks; ``"auto"`` is exact up to
        :data:`AUTO_EXACT_MAX_TASKS` tasks.
    singleton_score : float, default=0.0
        Score of a task trained alone.
    n_init : int, default=8
        Starts of the heuristic search.
    random_state : int, numpy.random.Generator or None
        Seeds the heuristic search.

    Returns
    -------
    TaskGrouping

    Raises
    ------
    ValueError
        If ``affinity`` is not square or has a non-finite off-diagonal entry, ``k`` is
        not in ``[1, n_tasks]``, or ``method`` is unknown (or exact on too many tasks).
    TypeError
        If an argument has the wrong type.

    References
    ----------
    C. Fifty, E. Amid, Z. Zhao, T. Yu, R. Anil and C. Finn, "Efficiently identifying
    task groupings for multi-task learning", NeurIPS 2021.
    T. Standley, A. Zamir, D. Chen, L. Guibas, J. Malik and S. Savarese, "Which tasks
    should be learned together in multi-task learning?", ICML 2020.

    Examples
    --------
    Task ``b`` helps both ``a`` and ``c``, which hurt each other; with two models ``b``
    joins both:

    >>> import numpy as np
    >>> A = np.array([[0.0, 1.0, -1.0], [0.5, 0.0, 0.5], [-1.0, 1.0, 0.0]])
    >>> res = select_task_groups(A, 2, task_names=["a", "b", "c"])
    >>> res.groups, res.served_by, res.score
    ((('a', 'b'), ('b', 'c')), {'a': 0, 'b': 0, 'c': 1}, 2.5)
    """
    A0, names, singleton = _prepare(affinity, task_names, singleton_score)
    m = len(names)
    k = check_int(k, "k", minimum=1, maximum=m)
    chosen = _resolve_method(method, m)
    if chosen == "exact":
        score = _group_exact.member_scores(A0, singleton)
        values, serving = _group_exact.overlap_block_values(score)
        options = _group_exact.best_partitions(values, m, k)
        _, blocks = max(options, key=lambda opt: opt[0])
        groups = [_group_exact.mask_members(int(serving[b]), m) for b in blocks]
    else:
        n = check_int(n_init, "n_init", minimum=1)
        rng = check_random_state(random_state)
        B = _group_heuristic.heuristic_overlap(A0, k, singleton, n, rng)
        groups = [tuple(np.flatnonzero(row).tolist()) for row in B]
    return _result(A0, names, groups, singleton, chosen)


def partition_tasks(
    affinity: Any,
    k: int,
    *,
    task_names: Sequence[str] | None = None,
    method: Method = "auto",
    singleton_score: float = 0.0,
    n_init: int = 8,
    random_state: int | np.random.Generator | None = None,
) -> TaskGrouping:
    """Split the tasks into exactly ``k`` disjoint groups of high mutual affinity.

    Maximise ``Σ_i score(i, group(i))`` over partitions into ``k`` non-empty groups,
    ``score(i, g) = mean_{j ∈ g, j ≠ i} A[i, j]`` (``singleton_score`` alone).

    Parameters
    ----------
    affinity, task_names, method, singleton_score, n_init, random_state
        As in :func:`select_task_groups`.
    k : int
        Number of groups, ``1 <= k <= n_tasks``.

    Returns
    -------
    TaskGrouping
        Disjoint groups; every task is served by its own group.

    Raises
    ------
    ValueError, TypeError
        As :func:`select_task_groups`.

    References
    ----------
    T. Standley et al., "Which tasks should be learned together in multi-task
    learning?", ICML 2020.
    C. Fifty et al., "Efficiently identifying task groupings for multi-task learning",
    NeurIPS 2021.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[0, 2, 0, 0], [2, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=float)
    >>> partition_tasks(A, 2).group_indices
    ((0, 1), (2, 3))
    """
    A0, names, singleton = _prepare(affinity, task_names, singleton_score)
    m = len(names)
    k = check_int(k, "k", minimum=1, maximum=m)
    chosen = _resolve_method(method, m)
    if chosen == "exact":
        score = _group_exact.member_scores(A0, singleton)
        values = _group_exact.partition_block_values(score)
        _, blocks = _group_exact.best_partitions(values, m, k)[k - 1]
        groups = [_group_exact.mask_members(b, m) for b in blocks]
    else:
        n = check_int(n_init, "n_init", minimum=1)
        rng = check_random_state(random_state)
        labels = _group_heuristic.heuristic_partition(A0, k, singleton, n, rng)
        groups = [tuple(np.flatnonzero(labels == b).tolist()) for b in range(k)]
    return _result(A0, names, groups, singleton, chosen)


def grouping_score(
    affinity: Any,
    groups: Iterable[Iterable[str | int]],
    *,
    task_names: Sequence[str] | None = None,
    singleton_score: float = 0.0,
) -> float:
    """The objective ``Σ_i max_{g ∋ i} score(i, g)`` of a given grouping.

    For disjoint groups this is the partition objective of :func:`partition_tasks`.

    Parameters
    ----------
    affinity, task_names, singleton_score
        As in :func:`select_task_groups`.
    groups : iterable of iterable of str or int
        The groups, by task name or index.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If a group is empty or names an unknown task, or a task is in no group.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[0.0, 1.0, -1.0], [0.5, 0.0, 0.5], [-1.0, 1.0, 0.0]])
    >>> grouping_score(A, [[0, 1], [1, 2]]), grouping_score(A, [[0, 1, 2]])
    (2.5, 0.5)
    """
    A0, names, singleton = _prepare(affinity, task_names, singleton_score)
    index = {n: i for i, n in enumerate(names)}
    parsed: list[tuple[int, ...]] = []
    for g, group in enumerate(groups):
        members: set[int] = set()
        for item in group:
            if isinstance(item, str):
                if item not in index:
                    raise ValueError(f"groups[{g}]: unknown task {item!r}; known: {list(names)}")
                members.add(index[item])
            elif isinstance(item, (int, np.integer)) and 0 <= int(item) < len(names):
                members.add(int(item))
            else:
                raise ValueError(f"groups[{g}]: {item!r} is not a task name or index")
        if not members:
            raise ValueError(f"groups[{g}] is empty")
        parsed.append(tuple(sorted(members)))
    if not parsed:
        raise ValueError("groups must hold at least one group")
    best = _task_scores(A0, parsed, singleton).max(axis=0)
    if not np.isfinite(best).all():
        missing = [names[i] for i in np.flatnonzero(~np.isfinite(best))]
        raise ValueError(f"tasks {missing} are in no group; every task must be covered")
    return float(best.sum())
