"""Task relatedness read from the weights of linear multi-task models.

Every function takes the task weight vectors either as a fitted estimator (anything
with ``coef_`` of shape (n_tasks, n_features)) or as a matrix ``W`` of shape
(n_features, n_tasks), column ``t`` being task ``t``'s weights — polytask's internal
layout. To pass a bare ``coef_`` array, pass ``coef_.T``.

- :func:`weight_cosine`, :func:`weight_distance` — pairwise geometry of the weights;
- :func:`trace_norm_task_covariance` — the task covariance implied by the trace norm;
- :func:`clustered_task_structure` — the relaxed cluster matrix ``M*`` of clustered
  MTL and the task clusters read from it;
- :func:`mean_regularized_distances` — distance of every task to the mean task.

Pure NumPy/SciPy (plus scikit-learn's k-means): no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np

from polytask._typing import FloatArray
from polytask.relate._checks import (
    as_matrix,
    check_finite,
    check_float,
    check_int,
    check_random_state,
    cosine_from_gram,
)

__all__ = [
    "TaskClusters",
    "clustered_task_structure",
    "mean_regularized_distances",
    "task_weights",
    "trace_norm_task_covariance",
    "weight_cosine",
    "weight_distance",
]


def task_weights(weights: Any) -> FloatArray:
    """The (n_features, n_tasks) weight matrix of an estimator or of a ``W``.

    Parameters
    ----------
    weights : estimator with ``coef_``, or array_like of shape (n_features, n_tasks)
        A fitted linear multi-task model (its ``coef_`` is (n_tasks, n_features)), or
        ``W`` itself.

    Returns
    -------
    ndarray of shape (n_features, n_tasks)
        A float64 copy.

    Raises
    ------
    ValueError
        If the weights are not a finite non-empty 2-D array.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> est = SimpleNamespace(coef_=[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])   # 2 tasks
    >>> task_weights(est).shape
    (3, 2)
    """
    if hasattr(weights, "coef_"):
        W = as_matrix(weights.coef_, "coef_").T.copy()
        check_finite(W.T, "coef_")
    else:
        W = as_matrix(weights, "W")
        check_finite(W, "W")
    return W


@overload
def weight_cosine(weights: Any, *, return_mask: Literal[False] = ...) -> FloatArray: ...


@overload
def weight_cosine(
    weights: Any, *, return_mask: Literal[True]
) -> tuple[FloatArray, np.ndarray]: ...


def weight_cosine(
    weights: Any, *, return_mask: bool = False
) -> FloatArray | tuple[FloatArray, np.ndarray]:
    """Cosine similarity of the task weight vectors, ``cos(w_s, w_t)``.

    A task whose weight vector is exactly zero has no direction; its row and column
    are defined as 0 and it is flagged in the mask.

    Parameters
    ----------
    weights : estimator with ``coef_``, or array_like of shape (n_features, n_tasks)
        See :func:`task_weights`.
    return_mask : bool, default=False
        Also return the mask of all-zero tasks.

    Returns
    -------
    cosine : ndarray of shape (n_tasks, n_tasks)
    zero : ndarray of bool, shape (n_tasks,)
        Only when ``return_mask``.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, 2.0, -1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    >>> cos, zero = weight_cosine(W, return_mask=True)
    >>> cos[0].tolist(), zero.tolist()
    ([1.0, 1.0, -1.0, 0.0], [False, False, False, True])
    """
    W = task_weights(weights)
    cos, zero = cosine_from_gram(W.T @ W, 0.0)
    return (cos, zero) if return_mask else cos


def weight_distance(weights: Any) -> FloatArray:
    """Euclidean distance between task weight vectors, ``||w_s − w_t||₂``.

    Parameters
    ----------
    weights : estimator with ``coef_``, or array_like of shape (n_features, n_tasks)
        See :func:`task_weights`.

    Returns
    -------
    ndarray of shape (n_tasks, n_tasks)
        Symmetric, zero diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> weight_distance(np.array([[0.0, 3.0], [0.0, 4.0]])).tolist()
    [[0.0, 5.0], [5.0, 0.0]]
    """
    W = task_weights(weights)
    diff = W[:, :, None] - W[:, None, :]
    return np.sqrt(np.sum(diff**2, axis=0))


def trace_norm_task_covariance(weights: Any, eps: float = 0.0) -> FloatArray:
    """Task covariance implied by the trace norm: ``Ω = (WᵀW + εI)^{1/2} / tr(·)``.

    The trace norm has the variational form
    ``||W||_*² = min {tr(W Ω⁻¹ Wᵀ) : Ω ≻ 0, tr Ω = 1}`` whose minimiser is
    ``Ω = (WᵀW)^{1/2} / ||W||_*`` — the closed form of Argyriou, Evgeniou & Pontil
    (2008) for multi-task feature learning, here over tasks rather than features (as
    in the task-covariance view of Zhang & Yeung, 2010). ``Ω[s, t]`` is large when
    tasks ``s`` and ``t`` share directions. ``eps > 0`` is the same smoothing
    Argyriou et al. use, which keeps ``Ω`` positive definite.

    Parameters
    ----------
    weights : estimator with ``coef_``, or array_like of shape (n_features, n_tasks)
        See :func:`task_weights`.
    eps : float, default=0.0
        Smoothing ``ε >= 0``.

    Returns
    -------
    ndarray of shape (n_tasks, n_tasks)
        Symmetric positive semi-definite with trace 1.

    Raises
    ------
    ValueError
        If ``eps < 0``, or every weight is zero and ``eps == 0`` (no covariance).

    References
    ----------
    A. Argyriou, T. Evgeniou and M. Pontil, "Convex multi-task feature learning",
    Machine Learning 73(3), 2008.
    Y. Zhang and D.-Y. Yeung, "A convex formulation for learning task relationships
    in multi-task learning", UAI 2010.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, 1.0], [0.0, 0.0]])          # two identical tasks
    >>> trace_norm_task_covariance(W).round(3).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    W = task_weights(weights)
    e = check_float(eps, "eps", low=0.0)
    _, s, Vt = np.linalg.svd(W, full_matrices=False)
    V = Vt.T
    root = (V * np.sqrt(s**2 + e)) @ V.T
    if e > 0:
        root += np.sqrt(e) * (np.eye(W.shape[1]) - V @ V.T)
    trace = float(np.trace(root))
    if trace <= 0:
        raise ValueError(
            "weights are all zero: the trace-norm task covariance is undefined; pass eps > 0"
        )
    out: FloatArray = 0.5 * (root + root.T) / trace
    return out


@dataclass(frozen=True, eq=False)
class TaskClusters:
    """Task clusters recovered from clustered multi-task learning.

    Parameters
    ----------
    cluster_matrix : ndarray of shape (n_tasks, n_tasks)
        The optimal ``M*`` of the convex relaxation (``tr M* = n_clusters``,
        ``0 ⪯ M* ⪯ I``); large ``M*[s, t]`` means same cluster.
    labels : ndarray of int, shape (n_tasks,)
        Cluster of every task, numbered in order of first appearance.
    n_clusters : int
        Number of clusters.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, 1.1, 0.0, 0.1], [0.0, 0.1, 1.0, 0.9]])
    >>> clustered_task_structure(W, n_clusters=2, random_state=0).labels.tolist()
    [0, 0, 1, 1]
    """

    cluster_matrix: FloatArray
    labels: np.ndarray
    n_clusters: int

    @property
    def matrix(self) -> FloatArray:
        """The relatedness matrix of this summary: ``cluster_matrix``."""
        return self.cluster_matrix


def clustered_task_structure(
    weights: Any,
    n_clusters: int,
    alpha: float = 1.0,
    beta: float = 1.0,
    random_state: int | np.random.Generator | None = None,
) -> TaskClusters:
    """The cluster matrix ``M*`` of clustered MTL at ``W``, and the clusters it implies.

    ``M*`` minimises ``tr(W (ηI + M)⁻¹ Wᵀ)`` over ``{M : tr M = k, 0 ⪯ M ⪯ I}``,
    ``η = beta / alpha`` (Zhou, Chen & Ye, 2011), the convex relaxation of ``F Fᵀ`` for
    a normalised k-means assignment matrix ``F``; it is computed by
    :meth:`polytask.linear.Clustered.cluster_matrix`. The labels come from spectral
    clustering of ``M*``: the rows of its ``k`` leading eigenvectors (scaled by the
    square roots of their eigenvalues, then normalised to unit length) are clustered
    by k-means.

    Parameters
    ----------
    weights : estimator with ``coef_``, or array_like of shape (n_features, n_tasks)
        See :func:`task_weights`; typically a model fitted with the ``Clustered``
        penalty using the same ``alpha``, ``beta`` and ``n_clusters``.
    n_clusters : int
        Number of clusters ``k``, in ``[1, n_tasks]``.
    alpha, beta : float, default=1.0
        Hyperparameters of the :class:`~polytask.linear.Clustered` penalty (``> 0``).
    random_state : int, numpy.random.Generator or None
        Seeds the k-means initialisation.

    Returns
    -------
    TaskClusters

    Raises
    ------
    ValueError, TypeError
        If ``n_clusters`` is not an int in ``[1, n_tasks]`` or ``alpha``/``beta`` are
        not positive numbers.

    References
    ----------
    J. Zhou, J. Chen and J. Ye, "Clustered multi-task learning via alternating
    structure optimization", NIPS 2011.
    A. Y. Ng, M. I. Jordan and Y. Weiss, "On spectral clustering: analysis and an
    algorithm", NIPS 2001.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, 0.9, 0.0, 0.1, 1.0], [0.0, 0.1, 1.0, 1.1, 0.1]])
    >>> res = clustered_task_structure(W, n_clusters=2, random_state=0)
    >>> res.labels.tolist(), round(float(np.trace(res.cluster_matrix)), 6)
    ([0, 0, 1, 1, 0], 2.0)
    """
    from sklearn.cluster import KMeans

    from polytask.linear import Clustered

    W = task_weights(weights)
    n_tasks = W.shape[1]
    k = check_int(n_clusters, "n_clusters", minimum=1, maximum=n_tasks)
    penalty = Clustered(alpha=alpha, beta=beta, n_clusters=k)
    penalty.validate()
    M = penalty.cluster_matrix(W)
    M = 0.5 * (M + M.T)
    rng = check_random_state(random_state)
    if k == 1:
        labels = np.zeros(n_tasks, dtype=int)
    else:
        values, vectors = np.linalg.eigh(M)
        embed = vectors[:, -k:] * np.sqrt(np.maximum(values[-k:], 0.0))
        norms = np.linalg.norm(embed, axis=1, keepdims=True)
        embed = embed / np.where(norms > 0, norms, 1.0)
        seed = int(rng.integers(2**31 - 1))
        raw = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(embed)
        labels = _canonical_labels(raw)
    return TaskClusters(cluster_matrix=M, labels=labels, n_clusters=k)


def _canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber cluster labels in order of first appearance (``[2, 2, 0] -> [0, 0, 1]``)."""
    order: dict[int, int] = {}
    return np.array([order.setdefault(int(v), len(order)) for v in labels], dtype=int)


def mean_regularized_distances(weights: Any) -> FloatArray:
    """Distance of every task's weights to the mean task, ``||w_t − w̄||₂``.

    In mean-regularised MTL (Evgeniou & Pontil, 2004) every ``w_t = w̄ + v_t`` and the
    penalty shrinks the deviations ``v_t``: a task far from ``w̄`` is one the shared
    model serves poorly.

    Parameters
    ----------
    weights : estimator with ``coef_``, or array_like of shape (n_features, n_tasks)
        See :func:`task_weights`.

    Returns
    -------
    ndarray of shape (n_tasks,)

    References
    ----------
    T. Evgeniou and M. Pontil, "Regularized multi-task learning", KDD 2004.

    Examples
    --------
    >>> import numpy as np
    >>> mean_regularized_distances(np.array([[1.0, 3.0, 2.0], [0.0, 0.0, 0.0]])).tolist()
    [1.0, 1.0, 0.0]
    """
    W = task_weights(weights)
    out: FloatArray = np.linalg.norm(W - W.mean(axis=1, keepdims=True), axis=0)
    return out
