"""Linear multi-task regression problems whose weight matrix W has a known structure.

Every generator draws ``W`` of shape (n_features, n_tasks) with the promised structure,
then the designs and ``y_t = X_t w_t + noise · ε`` with ``ε ~ N(0, I)``. ``n_samples`` is
an int (a shared design ``X`` of shape (n_samples, n_features), unless
``shared_design=False`` asks for one design of that size per task) or a sequence of
per-task sizes (per-task designs: ``X`` and ``Y`` are then lists with one array per
task). Rows of the designs are ``N(0, Σ)`` with ``Σ_ij = feature_correlation^|i-j|``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polytask.data._synthetic_base import (
    RandomState,
    SyntheticTasks,
    check_float,
    check_int,
    check_random_state,
    make_tasks,
    signed_magnitudes,
    task_sizes,
)


def _common_checks(
    n_samples: int | Sequence[int],
    n_features: int,
    n_tasks: int,
    noise: float,
    random_state: RandomState,
    shared_design: bool | None,
    feature_correlation: float,
) -> tuple[np.random.Generator, int, int, list[int], bool, float, float]:
    d = check_int(n_features, "n_features")
    T = check_int(n_tasks, "n_tasks")
    sizes, shared = task_sizes(n_samples, T, shared_design)
    sigma = check_float(noise, "noise")
    rho = check_float(feature_correlation, "feature_correlation", minimum=-1.0, maximum=1.0)
    if abs(rho) == 1.0:
        raise ValueError(
            f"feature_correlation must be in (-1, 1) (open interval); got {feature_correlation}"
        )
    return check_random_state(random_state), d, T, sizes, shared, sigma, rho


def group_sparse(
    n_samples: int | Sequence[int],
    n_features: int = 50,
    n_tasks: int = 5,
    n_active: int = 5,
    noise: float = 0.1,
    random_state: RandomState = None,
    shared_design: bool | None = None,
    feature_correlation: float = 0.0,
) -> SyntheticTasks:
    """Tasks that share one small set of relevant features (row-sparse W).

    ``W`` has ``n_active`` nonzero rows, the same for every task; each nonzero entry is a
    random sign times a magnitude in [0.5, 1.5], so the support is identifiable. This is
    the setting of the L2,1 (group lasso) penalty.

    Parameters
    ----------
    n_samples : int or sequence of int
        Samples per task: an int (shared design by default) or one size per task
        (per-task designs).
    n_features : int, default 50
        Number of features d.
    n_tasks : int, default 5
        Number of tasks T.
    n_active : int, default 5
        Number of nonzero rows, in [0, n_features].
    noise : float, default 0.1
        Standard deviation of the label noise.
    random_state : int, numpy.random.Generator or None
        Seed of every random draw.
    shared_design : bool, optional
        With an int ``n_samples``: False draws one design per task. True with per-task
        sizes is an error. Default: shared iff ``n_samples`` is an int.
    feature_correlation : float, default 0.0
        ρ of the AR(1) feature covariance, in (-1, 1).

    Returns
    -------
    SyntheticTasks
        ``truth``: ``"W"`` (n_features, n_tasks), ``"support"`` (sorted row indices,
        shape (n_active,)) and ``"noise"``.

    Raises
    ------
    ValueError
        If ``n_active > n_features``, per-task sizes disagree with ``n_tasks``, or a
        size or scale is out of range.
    TypeError
        If an argument has the wrong type.

    References
    ----------
    G. Obozinski, B. Taskar and M. I. Jordan, "Joint covariate selection and joint
    subspace selection for multiple classification problems", Statistics and
    Computing 20(2), 2010.

    Examples
    --------
    >>> tasks = group_sparse(40, n_features=10, n_tasks=3, n_active=4, random_state=0)
    >>> W = tasks.truth["W"]
    >>> bool((np.flatnonzero(np.abs(W).sum(axis=1)) == tasks.truth["support"]).all())
    True
    """
    rng, d, T, sizes, shared, sigma, rho = _common_checks(
        n_samples, n_features, n_tasks, noise, random_state, shared_design, feature_correlation
    )
    k = check_int(n_active, "n_active", minimum=0, maximum=d)
    support = np.sort(rng.choice(d, size=k, replace=False))
    W = np.zeros((d, T))
    W[support] = signed_magnitudes(rng, (k, T))
    return make_tasks(rng, W, sizes, shared, sigma, rho, {"support": support})


def low_rank(
    n_samples: int | Sequence[int],
    n_features: int = 50,
    n_tasks: int = 10,
    rank: int = 2,
    noise: float = 0.1,
    random_state: RandomState = None,
    shared_design: bool | None = None,
    feature_correlation: float = 0.0,
) -> SyntheticTasks:
    """Tasks whose weight vectors span a low-dimensional subspace (low-rank W).

    ``W = A Bᵀ`` with ``A`` (n_features, rank) of ``N(0, 1/rank)`` entries and ``B``
    (n_tasks, rank) of ``N(0, 1)`` entries, so W has rank ``rank`` (almost surely) and
    entries of unit variance. This is the setting of the trace-norm penalty.

    Parameters
    ----------
    n_samples : int or sequence of int
        Samples per task: an int (shared design by default) or one size per task
        (per-task designs).
    n_features : int, default 50
        Number of features d.
    n_tasks : int, default 10
        Number of tasks T.
    rank : int, default 2
        Rank r of W, in [1, min(n_features, n_tasks)].
    noise, random_state, shared_design, feature_correlation
        As in :func:`group_sparse`.

    Returns
    -------
    SyntheticTasks
        ``truth``: ``"W"``, ``"rank"``, ``"left_factor"`` A, ``"right_factor"`` B and
        ``"noise"``.

    Raises
    ------
    ValueError
        If ``rank`` is not in [1, min(n_features, n_tasks)], or as :func:`group_sparse`.
    TypeError
        If an argument has the wrong type.

    References
    ----------
    T. K. Pong, P. Tseng, S. Ji and J. Ye, "Trace norm regularization: reformulations,
    algorithms, and multi-task learning", SIAM Journal on Optimization 20(6), 2010.

    Examples
    --------
    >>> tasks = low_rank(30, n_features=12, n_tasks=6, rank=2, random_state=0)
    >>> int(np.linalg.matrix_rank(tasks.truth["W"]))
    2
    """
    rng, d, T, sizes, shared, sigma, rho = _common_checks(
        n_samples, n_features, n_tasks, noise, random_state, shared_design, feature_correlation
    )
    r = check_int(rank, "rank", minimum=1, maximum=min(d, T))
    A = rng.standard_normal((d, r)) / np.sqrt(r)
    B = rng.standard_normal((T, r))
    truth = {"rank": r, "left_factor": A, "right_factor": B}
    return make_tasks(rng, A @ B.T, sizes, shared, sigma, rho, truth)


def clustered(
    n_samples: int | Sequence[int],
    n_features: int = 50,
    n_tasks: int = 10,
    n_clusters: int = 2,
    within_cluster_std: float = 0.1,
    noise: float = 0.1,
    random_state: RandomState = None,
    shared_design: bool | None = None,
    feature_correlation: float = 0.0,
) -> SyntheticTasks:
    """Tasks in groups: each weight vector is its cluster's centre plus a small deviation.

    Centres are ``N(0, I)`` in R^d; tasks are spread over the clusters as evenly as
    possible (every cluster has at least one task) in a random order, and
    ``w_t = centre_{k(t)} + within_cluster_std · N(0, I)``. This is the setting of
    clustered multi-task learning.

    Parameters
    ----------
    n_samples : int or sequence of int
        Samples per task: an int (shared design by default) or one size per task
        (per-task designs).
    n_features : int, default 50
        Number of features d.
    n_tasks : int, default 10
        Number of tasks T.
    n_clusters : int, default 2
        Number of clusters K, in [1, n_tasks].
    within_cluster_std : float, default 0.1
        Standard deviation of a task's deviation from its centre (>= 0).
    noise, random_state, shared_design, feature_correlation
        As in :func:`group_sparse`.

    Returns
    -------
    SyntheticTasks
        ``truth``: ``"W"``, ``"clusters"`` (cluster id of every task, shape (n_tasks,)),
        ``"centers"`` (n_features, n_clusters) and ``"noise"``.

    Raises
    ------
    ValueError
        If ``n_clusters`` is not in [1, n_tasks], ``within_cluster_std < 0``, or as
        :func:`group_sparse`.
    TypeError
        If an argument has the wrong type.

    References
    ----------
    L. Jacob, F. Bach and J.-P. Vert, "Clustered multi-task learning: a convex
    formulation", NeurIPS 2008.

    Examples
    --------
    >>> tasks = clustered(30, n_features=10, n_tasks=6, n_clusters=3, random_state=0)
    >>> np.bincount(tasks.truth["clusters"]).tolist()
    [2, 2, 2]
    """
    rng, d, T, sizes, shared, sigma, rho = _common_checks(
        n_samples, n_features, n_tasks, noise, random_state, shared_design, feature_correlation
    )
    K = check_int(n_clusters, "n_clusters", minimum=1, maximum=T)
    spread = check_float(within_cluster_std, "within_cluster_std")
    centers = rng.standard_normal((d, K))
    clusters = rng.permutation(np.arange(T) % K)
    W = centers[:, clusters] + spread * rng.standard_normal((d, T))
    truth = {"clusters": clusters, "centers": centers}
    return make_tasks(rng, W, sizes, shared, sigma, rho, truth)


def dirty(
    n_samples: int | Sequence[int],
    n_features: int = 50,
    n_tasks: int = 5,
    n_shared_active: int = 5,
    n_task_specific: int = 2,
    noise: float = 0.1,
    random_state: RandomState = None,
    shared_design: bool | None = None,
    feature_correlation: float = 0.0,
) -> SyntheticTasks:
    """Shared relevant features plus a few task-specific ones (W = B + S).

    ``B`` is row-sparse: ``n_shared_active`` rows, nonzero for every task. ``S`` is
    elementwise sparse: each task gets ``n_task_specific`` nonzero entries in rows
    outside B's support, chosen independently per task, so the decomposition is
    unique. Nonzeros are a random sign times a magnitude in [0.5, 1.5]. This is the
    setting of the "dirty" model.

    Parameters
    ----------
    n_samples : int or sequence of int
        Samples per task: an int (shared design by default) or one size per task
        (per-task designs).
    n_features : int, default 50
        Number of features d.
    n_tasks : int, default 5
        Number of tasks T.
    n_shared_active : int, default 5
        Number of nonzero rows of B, in [0, n_features].
    n_task_specific : int, default 2
        Nonzero entries of S per task, in [0, n_features - n_shared_active].
    noise, random_state, shared_design, feature_correlation
        As in :func:`group_sparse`.

    Returns
    -------
    SyntheticTasks
        ``truth``: ``"W"``, ``"B"``, ``"S"`` (each (n_features, n_tasks)),
        ``"shared_support"`` (sorted rows of B) and ``"noise"``.

    Raises
    ------
    ValueError
        If the sparsity levels do not fit in ``n_features``, or as
        :func:`group_sparse`.
    TypeError
        If an argument has the wrong type.

    References
    ----------
    A. Jalali, P. Ravikumar, S. Sanghavi and C. Ruan, "A dirty model for multi-task
    learning", NeurIPS 2010.

    Examples
    --------
    >>> tasks = dirty(30, n_features=12, n_tasks=3, n_shared_active=3, n_task_specific=2,
    ...               random_state=0)
    >>> t = tasks.truth
    >>> bool(np.array_equal(t["B"] + t["S"], t["W"])), (t["S"] != 0).sum(axis=0).tolist()
    (True, [2, 2, 2])
    """
    rng, d, T, sizes, shared, sigma, rho = _common_checks(
        n_samples, n_features, n_tasks, noise, random_state, shared_design, feature_correlation
    )
    k_shared = check_int(n_shared_active, "n_shared_active", minimum=0, maximum=d)
    k_specific = check_int(
        n_task_specific, "n_task_specific (at most n_features - n_shared_active)",
        minimum=0, maximum=d - k_shared,
    )
    support = np.sort(rng.choice(d, size=k_shared, replace=False))
    B = np.zeros((d, T))
    B[support] = signed_magnitudes(rng, (k_shared, T))
    free_rows = np.setdiff1d(np.arange(d), support)
    S = np.zeros((d, T))
    for t in range(T):
        rows = rng.choice(free_rows, size=k_specific, replace=False)
        S[rows, t] = signed_magnitudes(rng, (k_specific,))
    truth = {"B": B, "S": S, "shared_support": support}
    return make_tasks(rng, B + S, sizes, shared, sigma, rho, truth)


__all__ = ["clustered", "dirty", "group_sparse", "low_rank"]
