"""Exact task grouping by dynamic programming over subsets of tasks.

Tasks are bits of an integer mask. Both grouping problems reduce to choosing a set
partition of the tasks into *served blocks* with a value per block:

- overlapping (TAG) groups: block ``P`` is served by the best group containing it,
  ``V(P) = max_{g ⊇ P} Σ_{i ∈ P} score(i, g)``; two blocks served by the same group
  merge into one block of equal value, so "at most k blocks" is exactly "at most k
  groups";
- disjoint partitions: ``V(P) = Σ_{i ∈ P} score(i, P)``.

The best partition into ``r`` blocks is found layer by layer over all pairs
``(P, R)`` of disjoint masks where ``P`` holds the lowest task of ``P | R``
(about ``3^m / 2`` pairs), so the cost is ``O(3^m · k)`` time and ``O(3^m)`` memory.
"""

from __future__ import annotations

import numpy as np

from polytask._typing import FloatArray

EXACT_LIMIT = 14
"""Largest number of tasks the exact search accepts (3^14 ≈ 4.8 million pairs)."""


def _subset_bits(q: int) -> np.ndarray:
    """Boolean (2^q, q) table: row r holds the bits of r."""
    rows = np.arange(2**q)[:, None]
    return ((rows >> np.arange(q)[None, :]) & 1).astype(bool)


def member_scores(A0: FloatArray, singleton_score: float) -> FloatArray:
    """``score[g, i]`` for every mask ``g`` (rows) and task ``i``; ``-inf`` if ``i ∉ g``.

    ``A0`` is the affinity with a zero diagonal; ``score(i, g)`` is the mean of
    ``A0[i, j]`` over the other members ``j`` of ``g``, or ``singleton_score`` when
    ``g = {i}``.
    """
    m = A0.shape[0]
    B = _subset_bits(m)
    sizes = B.sum(axis=1)
    sums = B.astype(float) @ A0.T
    mean = sums / np.maximum(sizes - 1, 1)[:, None]
    score = np.where(sizes[:, None] == 1, singleton_score, mean)
    out: FloatArray = np.where(B, score, -np.inf)
    return out


def overlap_block_values(score: FloatArray) -> tuple[FloatArray, np.ndarray]:
    """``V(P)`` and the serving group of every mask ``P`` for the overlapping problem."""
    n_masks, m = score.shape
    values = np.full(n_masks, -np.inf)
    values[0] = 0.0
    best_group = np.zeros(n_masks, dtype=np.int64)
    tables = [_subset_bits(q) for q in range(m + 1)]
    for g in range(1, n_masks):
        bits = np.flatnonzero((g >> np.arange(m)) & 1)
        table = tables[bits.size]
        sums = table.astype(float) @ score[g, bits]
        masks = table.astype(np.int64) @ (np.int64(1) << bits.astype(np.int64))
        better = sums > values[masks]
        values[masks[better]] = sums[better]
        best_group[masks[better]] = g
    return values, best_group


def partition_block_values(score: FloatArray) -> FloatArray:
    """``V(P) = Σ_{i ∈ P} score(i, P)`` for every mask ``P`` (the disjoint problem)."""
    finite = np.where(np.isfinite(score), score, 0.0)
    return finite.sum(axis=1)


def _pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``(P, R)``: ``P`` non-empty, ``R`` disjoint with every bit above ``P``'s lowest."""
    full = (1 << m) - 1
    tables = [_subset_bits(q) for q in range(m + 1)]
    Ps: list[np.ndarray] = []
    Rs: list[np.ndarray] = []
    for P in range(1, full + 1):
        low = P & -P
        free = full & ~P & ~((low << 1) - 1)
        bits = np.flatnonzero((free >> np.arange(m)) & 1)
        table = tables[bits.size]
        R = table.astype(np.int64) @ (np.int64(1) << bits.astype(np.int64))
        Rs.append(R)
        Ps.append(np.full(R.size, P, dtype=np.int64))
    return np.concatenate(Ps), np.concatenate(Rs)


def best_partitions(values: FloatArray, m: int, k: int) -> list[tuple[float, list[int]]]:
    """For ``r = 1..k``, the best value of a partition into exactly ``r`` blocks and its blocks.

    Entries are ``(-inf, [])`` when no partition into ``r`` blocks exists.
    """
    P, R = _pairs(m)
    union = P | R
    full = (1 << m) - 1
    layers = [np.full(1 << m, -np.inf)]
    layers[0][0] = 0.0
    for _ in range(k):
        cand = values[P] + layers[-1][R]
        layer = np.full(1 << m, -np.inf)
        np.maximum.at(layer, union, cand)
        layers.append(layer)
    out: list[tuple[float, list[int]]] = []
    for r in range(1, k + 1):
        best = float(layers[r][full])
        if not np.isfinite(best):
            out.append((-np.inf, []))
            continue
        blocks: list[int] = []
        mask, left = full, r
        while mask:
            reach = values[P] + layers[left - 1][R] == layers[left][mask]
            hit = np.flatnonzero((union == mask) & reach)
            choice = int(hit[0])
            blocks.append(int(P[choice]))
            mask, left = int(R[choice]), left - 1
        out.append((best, blocks))
    return out


def mask_members(mask: int, m: int) -> tuple[int, ...]:
    """The task indices in ``mask``, ascending."""
    return tuple(i for i in range(m) if (mask >> i) & 1)
