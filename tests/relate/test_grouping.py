"""Task grouping: TAG's overlapping groups and disjoint partitions."""

from __future__ import annotations

from itertools import combinations, product

import numpy as np
import pytest

from polytask.relate import (
    TaskAffinity,
    grouping_score,
    partition_tasks,
    select_task_groups,
)


def brute_score(A: np.ndarray, groups: list[tuple[int, ...]], singleton: float = 0.0) -> float:
    """Σ_i max over the groups containing i of mean_{j in g, j != i} A[i, j]; -inf if uncovered."""
    total = 0.0
    for i in range(A.shape[0]):
        options = []
        for g in groups:
            if i in g:
                others = [A[i, j] for j in g if j != i]
                options.append(sum(others) / len(others) if others else singleton)
        if not options:
            return -np.inf
        total += max(options)
    return total


def brute_overlap(A: np.ndarray, k: int, singleton: float = 0.0) -> float:
    """Best objective over every set of at most k distinct non-empty groups."""
    m = A.shape[0]
    candidates = [c for r in range(1, m + 1) for c in combinations(range(m), r)]
    return max(
        brute_score(A, list(chosen), singleton)
        for r in range(1, k + 1)
        for chosen in combinations(candidates, r)
    )


def brute_partition(A: np.ndarray, k: int, singleton: float = 0.0) -> float:
    """Best objective over every assignment of the tasks to exactly k non-empty blocks."""
    m = A.shape[0]
    best = -np.inf
    for labels in product(range(k), repeat=m):
        if len(set(labels)) != k:
            continue
        groups = [tuple(i for i in range(m) if labels[i] == b) for b in range(k)]
        best = max(best, brute_score(A, groups, singleton))
    return best


@pytest.mark.parametrize(("m", "k", "seed"), [(3, 1, 0), (3, 2, 1), (4, 2, 2), (4, 3, 3),
                                              (5, 2, 4), (5, 3, 5), (4, 4, 6)])
def test_exact_overlap_equals_brute_force(m: int, k: int, seed: int) -> None:
    A = np.random.default_rng(seed).normal(size=(m, m))
    res = select_task_groups(A, k)
    assert res.method == "exact"
    assert res.score == pytest.approx(brute_overlap(A, k), abs=1e-12)
    groups = [tuple(g) for g in res.group_indices]
    assert len(groups) <= k
    assert brute_score(A, groups) == pytest.approx(res.score, abs=1e-12)


@pytest.mark.parametrize(("m", "k", "seed"), [(3, 2, 0), (4, 2, 1), (5, 3, 2), (6, 2, 3),
                                              (6, 4, 4), (5, 5, 5), (5, 1, 6)])
def test_exact_partition_equals_brute_force(m: int, k: int, seed: int) -> None:
    A = np.random.default_rng(seed).normal(size=(m, m))
    res = partition_tasks(A, k)
    assert res.score == pytest.approx(brute_partition(A, k), abs=1e-12)
    groups = res.group_indices
    assert len(groups) == k
    assert sorted(i for g in groups for i in g) == list(range(m))  # disjoint cover


@pytest.mark.parametrize("singleton", [-1.0, 0.5])
def test_singleton_score_enters_the_objective(singleton: float) -> None:
    A = np.random.default_rng(7).normal(size=(4, 4))
    res = select_task_groups(A, 3, singleton_score=singleton)
    assert res.score == pytest.approx(brute_overlap(A, 3, singleton), abs=1e-12)
    part = partition_tasks(A, 3, singleton_score=singleton)
    assert part.score == pytest.approx(brute_partition(A, 3, singleton), abs=1e-12)


def planted(sizes: list[int], seed: int, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Block affinity: 1 within a cluster, -0.5 across, plus noise; tasks shuffled."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    A = np.where(labels[:, None] == labels[None, :], 1.0, -0.5)
    return A + noise * rng.normal(size=A.shape), labels


def as_sets(groups: tuple[tuple[int, ...], ...]) -> set[frozenset[int]]:
    return {frozenset(g) for g in groups}


def truth_sets(labels: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)}


@pytest.mark.parametrize(("sizes", "seed"), [([3, 3, 3], 0), ([2, 4, 3], 1), ([5, 4], 2)])
@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_planted_clusters_are_recovered(sizes: list[int], seed: int, method: str) -> None:
    A, labels = planted(sizes, seed)
    k = len(sizes)
    part = partition_tasks(A, k, method=method, random_state=0)  # type: ignore[arg-type]
    tag = select_task_groups(A, k, method=method, random_state=0)  # type: ignore[arg-type]
    assert as_sets(part.group_indices) == truth_sets(labels)
    assert as_sets(tag.group_indices) == truth_sets(labels)


@pytest.mark.parametrize("seed", [3, 4])
def test_heuristic_recovers_planted_clusters_beyond_the_exact_limit(seed: int) -> None:
    A, labels = planted([5, 6, 5], seed, noise=0.2)
    part = partition_tasks(A, 3, random_state=seed)
    tag = select_task_groups(A, 3, random_state=seed)
    assert part.method == tag.method == "heuristic"
    assert as_sets(part.group_indices) == truth_sets(labels)
    assert as_sets(tag.group_indices) == truth_sets(labels)


@pytest.mark.parametrize("seed", range(6))
def test_exact_is_at_least_the_heuristic(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    m = int(rng.integers(5, 9))
    k = int(rng.integers(2, 4))
    A = rng.normal(size=(m, m))
    exact, heur = (select_task_groups(A, k, method=x, random_state=seed)  # type: ignore[arg-type]
                   for x in ("exact", "heuristic"))
    assert exact.score >= heur.score - 1e-12
    assert heur.score == pytest.approx(grouping_score(A, heur.group_indices))
    p_exact, p_heur = (partition_tasks(A, k, method=x, random_state=seed)  # type: ignore[arg-type]
                       for x in ("exact", "heuristic"))
    assert p_exact.score >= p_heur.score - 1e-12
    assert exact.score >= p_exact.score - 1e-12  # disjoint groups are one option of TAG's


def test_heuristic_is_reproducible() -> None:
    A = np.random.default_rng(9).normal(size=(12, 12))
    a = select_task_groups(A, 3, random_state=5)
    b = select_task_groups(A, 3, random_state=5)
    assert a.groups == b.groups and a.score == b.score


def test_asymmetric_helper_task_joins_two_groups() -> None:
    A = np.array([[0.0, 1.0, -1.0], [0.5, 0.0, 0.5], [-1.0, 1.0, 0.0]])
    res = select_task_groups(A, 2, task_names=["a", "b", "c"])
    assert set(res.groups) == {("a", "b"), ("b", "c")}
    assert res.score == pytest.approx(2.5)
    assert res.task_scores == {"a": 1.0, "b": 0.5, "c": 1.0}
    assert res.groups[res.served_by["c"]] == ("b", "c")
    frame = res.to_frame().set_index(["group", "task"])
    g_ab, g_bc = res.groups.index(("a", "b")), res.groups.index(("b", "c"))
    assert frame.loc[(g_bc, "b"), "score"] == 0.5 and frame.loc[(g_ab, "a"), "score"] == 1.0
    assert frame["serves"].sum() == 3


def test_nan_diagonal_is_ignored_and_summary_objects_are_accepted() -> None:
    A = np.array([[np.nan, 2.0, 0.0], [2.0, np.nan, 0.0], [0.0, 0.0, np.nan]])
    summary = TaskAffinity(("x", "y", "z"), A, np.ones((3, 3), dtype=int), 1)
    res = partition_tasks(summary, 2)
    assert res.groups == (("x", "y"), ("z",))
    frame = res.to_frame()
    assert frame["serves"].all() and len(frame) == 3
    assert frame["score"].tolist() == [2.0, 2.0, 0.0]


def test_groups_serving_no_task_are_dropped() -> None:
    A = np.array([[0.0, 1.0], [1.0, 0.0]])
    res = select_task_groups(A, 2)
    assert res.groups == (("task_0", "task_1"),)


@pytest.mark.parametrize(
    ("A", "k", "match"),
    [
        (np.zeros((3, 2)), 1, "square"),
        (np.array([[0.0, np.nan], [1.0, 0.0]]), 1, r"affinity\[0, 1\]"),
        (np.zeros((3, 3)), 0, "k must be >= 1"),
        (np.zeros((3, 3)), 4, "<= 3"),
    ],
)
@pytest.mark.parametrize("fn", [select_task_groups, partition_tasks])
def test_errors(fn: object, A: np.ndarray, k: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fn(A, k)  # type: ignore[operator]


def test_more_errors() -> None:
    with pytest.raises(ValueError, match="method"):
        select_task_groups(np.zeros((2, 2)), 1, method="greedy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at most 14"):
        partition_tasks(np.zeros((15, 15)), 2, method="exact")
    with pytest.raises(ValueError, match="2 names"):
        partition_tasks(np.zeros((3, 3)), 2, task_names=["a", "b"])
    with pytest.raises(TypeError, match="k must be an int"):
        partition_tasks(np.zeros((3, 3)), 2.0)  # type: ignore[arg-type]
    A = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"\['task_2'\] are in no group"):
        grouping_score(A, [[0, 1]])
    with pytest.raises(ValueError, match="unknown task 'q'"):
        grouping_score(A, [["q"]])
    with pytest.raises(ValueError, match=r"groups\[1\] is empty"):
        grouping_score(A, [[0, 1, 2], []])
