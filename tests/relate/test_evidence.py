"""Evidence on synthetic data: the measures recover tasks planted in clusters.

``polytask.data.clustered`` draws each task's weights around one of a few cluster
centres. Every measure — weight cosine of per-task fits, clustered-MTL labels, gradient
cosine and lookahead affinity tracked along a short training run of a shared model —
must rank same-cluster pairs above cross-cluster pairs, and grouping with
``k = n_clusters`` must return exactly the planted clusters.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score
from torch import nn

from polytask.data import clustered
from polytask.deep.architectures import SharedBottom
from polytask.deep.weighting import task_gramian
from polytask.relate import (
    AffinityTracker,
    GradientSimilarityTracker,
    clustered_task_structure,
    partition_tasks,
    select_task_groups,
    weight_cosine,
)
from polytask.tasks import TaskSet


def separation(M: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """(smallest same-cluster entry, largest cross-cluster entry), off the diagonal."""
    same = clusters[:, None] == clusters[None, :]
    off = ~np.eye(clusters.size, dtype=bool)
    return float(M[same & off].min()), float(M[~same].max())


def planted_sets(clusters: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(clusters == c).tolist()) for c in np.unique(clusters)}


def found_sets(groups: tuple[tuple[int, ...], ...]) -> set[frozenset[int]]:
    return {frozenset(g) for g in groups}


@pytest.fixture(params=[(2, 0), (3, 1)], ids=["2-clusters", "3-clusters"])
def problem(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    n_clusters, seed = request.param
    data = clustered(200, n_features=30, n_tasks=6, n_clusters=n_clusters,
                     within_cluster_std=0.1, noise=0.1, random_state=seed)
    assert isinstance(data.X, np.ndarray) and isinstance(data.Y, np.ndarray)
    return data.X, data.Y, data.truth["clusters"], n_clusters


def test_linear_fits_recover_the_clusters(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray, int],
) -> None:
    X, Y, clusters, k = problem
    W, *_ = np.linalg.lstsq(X, Y, rcond=None)  # one least-squares fit per task
    cos = weight_cosine(W)
    within, across = separation(cos, clusters)
    assert within > across
    assert found_sets(partition_tasks(cos, k).group_indices) == planted_sets(clusters)
    labels = clustered_task_structure(W, n_clusters=k, random_state=0).labels
    assert adjusted_rand_score(clusters, labels) == 1.0


def test_training_measures_recover_the_clusters(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray, int],
) -> None:
    X, Y, clusters, k = problem
    names = [f"task_{t}" for t in range(Y.shape[1])]
    tasks = TaskSet(names)
    torch.manual_seed(0)
    heads = {t: nn.Linear(1, 1) for t in names}  # per-task scale and offset
    for head in heads.values():
        nn.init.ones_(head.weight)
        nn.init.zeros_(head.bias)
    model = SharedBottom(nn.Linear(X.shape[1], 1, bias=False), heads).double()
    nn.init.zeros_(model.encoder.weight)  # type: ignore[arg-type]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    grads = GradientSimilarityTracker(names)
    affinity = AffinityTracker(names, every=4)
    x_all, y_all = torch.from_numpy(X), torch.from_numpy(Y)
    gen = torch.Generator().manual_seed(0)
    for step in range(24):
        idx = torch.randperm(X.shape[0], generator=gen)[:50]
        x = x_all[idx]
        targets = {t: y_all[idx, [i]] for i, t in enumerate(names)}
        if affinity.is_due(step):
            affinity.observe(model, tasks, x, targets, lr=0.02)
        losses = tasks.losses(model(x), targets)
        assert isinstance(losses, torch.Tensor)
        grads.update(task_gramian(losses, model.shared_parameters()))  # what a trainer has
        optimizer.zero_grad()
        losses.sum().backward()
        optimizer.step()
    cos, aff = grads.summary(), affinity.summary()
    assert aff.n_steps == 6 and cos.n_steps == 24
    for matrix in (cos.matrix, aff.matrix):
        within, across = separation(matrix, clusters)
        assert within > across
    assert cos.conflict_frequency[clusters[:, None] == clusters[None, :]].max() == 0.0
    truth = planted_sets(clusters)
    assert found_sets(select_task_groups(aff, k).group_indices) == truth
    assert found_sets(partition_tasks(aff, k).group_indices) == truth
    assert found_sets(partition_tasks(cos, k).group_indices) == truth
