"""Proximal operators and projections used by the linear multi-task penalties.

Every function is pure: it takes arrays and thresholds and returns a new array. The
weight matrix ``W`` has shape ``(n_features, n_tasks)``: a *row* ``W[j]`` holds feature
``j`` across tasks, a *column* ``W[:, t]`` holds the weight vector of task ``t``.

The proximal operator of a function ``h`` with step ``s`` is

    prox_{s h}(W) = argmin_Z  1/(2 s) ||Z - W||_F^2 + h(Z).

The functions below take the product ``threshold = s * alpha`` directly.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from polytask._typing import FloatArray

__all__ = [
    "cluster_eigenvalues",
    "group_soft_threshold_cols",
    "group_soft_threshold_rows",
    "project_l1_ball",
    "project_simplex",
    "prox_linf_rows",
    "singular_value_threshold",
    "soft_threshold",
]


def _as_float(x: ArrayLike, name: str, func: str, ndim: int | None = None) -> FloatArray:
    """``x`` as a floating-point array (no copy when it already is one)."""
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{func}: {name} must be an array of numbers") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{func}: {name} must be {ndim}-D; got an array of shape {arr.shape}")
    return arr


def _check_threshold(threshold: float, func: str, name: str = "threshold") -> float:
    """Return ``threshold`` as a float after checking it is a finite number >= 0."""
    if isinstance(threshold, bool) or not isinstance(threshold, Real):
        raise TypeError(f"{func}: {name} must be a real number; got {threshold!r}")
    value = float(threshold)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{func}: {name} must be a finite number >= 0; got {threshold!r}")
    return value


def soft_threshold(x: ArrayLike, threshold: float) -> FloatArray:
    """Entry-wise soft thresholding, the prox of ``threshold * ||.||_1``.

    ``S_tau(x) = sign(x) * max(|x| - tau, 0)``, computed as ``x - clip(x, -tau, tau)`` so
    that entries with ``|x| <= tau`` are exactly zero.

    Parameters
    ----------
    x : array_like of any shape
        Input values.
    threshold : float
        ``tau >= 0`` (the step times the penalty level).

    Returns
    -------
    ndarray of the same shape as ``x``

    Raises
    ------
    ValueError
        If ``threshold`` is negative or not finite.

    Examples
    --------
    >>> soft_threshold([-3.0, 0.5, 2.0], 1.0).tolist()
    [-2.0, 0.0, 1.0]
    """
    tau = _check_threshold(threshold, "soft_threshold")
    arr = _as_float(x, "x", "soft_threshold")
    return arr - np.clip(arr, -tau, tau)


def _group_scale(norms: FloatArray, tau: float) -> FloatArray:
    """``max(1 - tau / norm, 0)`` with 0 for zero norms."""
    scale = np.zeros_like(norms)
    keep = norms > tau
    scale[keep] = 1.0 - tau / norms[keep]
    return scale


def group_soft_threshold_rows(W: ArrayLike, threshold: float) -> FloatArray:
    """Row-wise group soft thresholding, the prox of ``tau * sum_j ||W_j,:||_2``.

    ``Z_j = W_j * max(1 - tau / ||W_j||_2, 0)`` for every row ``j``: rows whose
    Euclidean norm is at most ``tau`` become exactly zero.

    Parameters
    ----------
    W : array_like of shape (n_features, n_tasks)
        Input matrix; its rows are the groups.
    threshold : float
        ``tau >= 0``.

    Returns
    -------
    ndarray of shape (n_features, n_tasks)

    Raises
    ------
    ValueError
        If ``W`` is not 2-D or ``threshold`` is negative.

    Examples
    --------
    >>> Z = group_soft_threshold_rows([[3.0, 4.0], [0.3, 0.4]], 1.0)
    >>> Z.round(2).tolist()
    [[2.4, 3.2], [0.0, 0.0]]
    """
    tau = _check_threshold(threshold, "group_soft_threshold_rows")
    arr = _as_float(W, "W", "group_soft_threshold_rows", ndim=2)
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))
    return arr * _group_scale(norms, tau)[:, None]


def group_soft_threshold_cols(W: ArrayLike, threshold: float) -> FloatArray:
    """Column-wise group soft thresholding, the prox of ``tau * sum_t ||W_:,t||_2``.

    ``Z_:,t = W_:,t * max(1 - tau / ||W_:,t||_2, 0)`` for every column (task) ``t``.

    Parameters
    ----------
    W : array_like of shape (n_features, n_tasks)
        Input matrix; its columns are the groups.
    threshold : float
        ``tau >= 0``.

    Returns
    -------
    ndarray of shape (n_features, n_tasks)

    Raises
    ------
    ValueError
        If ``W`` is not 2-D or ``threshold`` is negative.

    Examples
    --------
    >>> Z = group_soft_threshold_cols([[3.0, 0.3], [4.0, 0.4]], 1.0)
    >>> Z.round(2).tolist()
    [[2.4, 0.0], [3.2, 0.0]]
    """
    tau = _check_threshold(threshold, "group_soft_threshold_cols")
    arr = _as_float(W, "W", "group_soft_threshold_cols", ndim=2)
    norms = np.sqrt(np.einsum("ij,ij->j", arr, arr))
    return arr * _group_scale(norms, tau)[None, :]


def _simplex_threshold(A: FloatArray, radius: float, mask: FloatArray | None = None) -> FloatArray:
    """Per-row ``theta`` with ``sum_i max(A_i - theta, 0) = radius`` (``radius > 0``).

    The sort-based rule of Duchi et al. (2008): with ``u`` the row sorted in decreasing
    order, ``rho = max{j : u_j - (sum_{i<=j} u_i - radius) / j > 0}`` and
    ``theta = (sum_{i<=rho} u_i - radius) / rho``. Entries where ``mask`` is False are
    left out of their row.
    """
    n_cols = A.shape[1]
    if mask is None:
        u = -np.sort(-A, axis=1)
        finite_u = u
        valid = np.ones(A.shape, dtype=bool)
    else:
        u = -np.sort(-np.where(mask, A, -np.inf), axis=1)
        finite_u = np.where(np.isfinite(u), u, 0.0)
        valid = np.arange(n_cols)[None, :] < mask.sum(axis=1)[:, None]
    css = np.cumsum(finite_u, axis=1) - radius
    ranks = np.arange(1, n_cols + 1, dtype=A.dtype)
    cond = (u - css / ranks > 0) & valid
    rho = n_cols - np.argmax(cond[:, ::-1], axis=1)
    rows = np.arange(A.shape[0])
    return css[rows, rho - 1] / rho


def project_simplex(v: ArrayLike, radius: float = 1.0) -> FloatArray:
    """Euclidean projection onto the simplex ``{z >= 0, sum(z) = radius}``, row-wise.

    ``z = max(v - theta, 0)`` with the scalar ``theta`` chosen so that ``sum(z) = radius``
    (exact sort-based rule, ``O(n log n)`` per row).

    Parameters
    ----------
    v : array_like of shape (n,) or (n_rows, n)
        Vector, or matrix whose rows are projected independently.
    radius : float, default=1.0
        ``radius > 0``.

    Returns
    -------
    ndarray of the same shape as ``v``

    Raises
    ------
    ValueError
        If ``v`` is not 1-D or 2-D, or ``radius`` is not positive.

    References
    ----------
    J. Duchi, S. Shalev-Shwartz, Y. Singer and T. Chandra. Efficient projections onto
    the l1-ball for learning in high dimensions. ICML 2008.

    Examples
    --------
    >>> project_simplex([0.5, 2.0, -1.0]).tolist()
    [0.0, 1.0, 0.0]
    """
    r = _check_threshold(radius, "project_simplex", "radius")
    if r == 0:
        raise ValueError("project_simplex: radius must be > 0; got 0")
    arr = _as_float(v, "v", "project_simplex")
    if arr.ndim not in (1, 2):
        raise ValueError(f"project_simplex: v must be 1-D or 2-D; got shape {arr.shape}")
    rows = np.atleast_2d(arr)
    out = np.maximum(rows - _simplex_threshold(rows, r)[:, None], 0.0)
    return out.reshape(arr.shape)


def _l1_ball_threshold(A: FloatArray, radius: float) -> FloatArray:
    """Per-row soft threshold of the projection onto the l1 ball (0 inside the ball)."""
    absA = np.abs(A)
    outside = absA.sum(axis=1) > radius
    theta = np.zeros(A.shape[0], dtype=A.dtype)
    if np.any(outside):
        theta[outside] = _simplex_threshold(absA[outside], radius)
    return theta


def project_l1_ball(v: ArrayLike, radius: float = 1.0) -> FloatArray:
    """Euclidean projection onto the l1 ball ``{z : ||z||_1 <= radius}``, row-wise.

    A row already inside the ball is returned unchanged; otherwise
    ``z = sign(v) * max(|v| - theta, 0)`` where ``theta > 0`` solves
    ``sum_i max(|v_i| - theta, 0) = radius`` (Duchi et al., 2008; exact, ``O(n log n)``).

    Parameters
    ----------
    v : array_like of shape (n,) or (n_rows, n)
        Vector, or matrix whose rows are projected independently.
    radius : float, default=1.0
        ``radius >= 0``.

    Returns
    -------
    ndarray of the same shape as ``v``

    Raises
    ------
    ValueError
        If ``v`` is not 1-D or 2-D, or ``radius`` is negative.

    References
    ----------
    J. Duchi, S. Shalev-Shwartz, Y. Singer and T. Chandra. Efficient projections onto
    the l1-ball for learning in high dimensions. ICML 2008.

    Examples
    --------
    >>> project_l1_ball([3.0, -1.0, 0.2], radius=2.0).tolist()
    [2.0, 0.0, 0.0]
    """
    r = _check_threshold(radius, "project_l1_ball", "radius")
    arr = _as_float(v, "v", "project_l1_ball")
    if arr.ndim not in (1, 2):
        raise ValueError(f"project_l1_ball: v must be 1-D or 2-D; got shape {arr.shape}")
    if r == 0:
        return np.zeros_like(arr)
    rows = np.atleast_2d(arr)
    theta = _l1_ball_threshold(rows, r)
    return (rows - np.clip(rows, -theta[:, None], theta[:, None])).reshape(arr.shape)


def prox_linf_rows(W: ArrayLike, threshold: float) -> FloatArray:
    """Prox of ``tau * sum_j ||W_j,:||_inf`` (row-wise l1/l_inf), through Moreau.

    By the Moreau decomposition ``prox_{tau ||.||_inf}(w) = w - Proj_{||.||_1 <= tau}(w)``
    for each row ``w``. With ``theta`` the soft threshold of that l1-ball projection this is
    ``z = sign(w) * min(|w|, theta)``: large entries are clipped to a common magnitude and
    rows with ``||w||_1 <= tau`` become exactly zero.

    Parameters
    ----------
    W : array_like of shape (n_features, n_tasks)
        Input matrix; the norm acts on its rows.
    threshold : float
        ``tau >= 0``.

    Returns
    -------
    ndarray of shape (n_features, n_tasks)

    Raises
    ------
    ValueError
        If ``W`` is not 2-D or ``threshold`` is negative.

    References
    ----------
    J. Duchi, S. Shalev-Shwartz, Y. Singer and T. Chandra. Efficient projections onto
    the l1-ball for learning in high dimensions. ICML 2008.

    Examples
    --------
    >>> prox_linf_rows([[3.0, -1.0, 0.2], [0.5, 0.5, 0.5]], 2.0).tolist()
    [[1.0, -1.0, 0.2], [0.0, 0.0, 0.0]]
    """
    tau = _check_threshold(threshold, "prox_linf_rows")
    arr = _as_float(W, "W", "prox_linf_rows", ndim=2)
    if tau == 0:
        return arr.copy()
    theta = _l1_ball_threshold(arr, tau)[:, None]
    return np.clip(arr, -theta, theta)


def _svd(W: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Thin SVD, falling back to the slower but more robust ``gesvd`` driver."""
    try:
        return np.linalg.svd(W, full_matrices=False)
    except np.linalg.LinAlgError:
        U, s, Vt = scipy.linalg.svd(W, full_matrices=False, lapack_driver="gesvd")
        return U, s, Vt


def singular_value_threshold(W: ArrayLike, threshold: float) -> FloatArray:
    """Singular value thresholding, the prox of ``tau * ||W||_*`` (trace norm).

    With ``W = U diag(s) V^T``: ``Z = U diag(max(s - tau, 0)) V^T``.

    Parameters
    ----------
    W : array_like of shape (n_features, n_tasks)
        Input matrix.
    threshold : float
        ``tau >= 0``.

    Returns
    -------
    ndarray of shape (n_features, n_tasks)

    Raises
    ------
    ValueError
        If ``W`` is not 2-D or ``threshold`` is negative.

    References
    ----------
    J.-F. Cai, E. J. Candès and Z. Shen. A singular value thresholding algorithm for
    matrix completion. SIAM J. Optim. 20(4), 2010.

    Examples
    --------
    >>> Z = singular_value_threshold([[3.0, 0.0], [0.0, 1.0]], 2.0)
    >>> Z.round(6).tolist()
    [[1.0, 0.0], [0.0, 0.0]]
    """
    tau = _check_threshold(threshold, "singular_value_threshold")
    arr = _as_float(W, "W", "singular_value_threshold", ndim=2)
    if arr.size == 0:
        return arr.copy()
    U, s, Vt = _svd(arr)
    shrunk = s - tau
    rank = int(np.count_nonzero(shrunk > 0))
    return (U[:, :rank] * shrunk[:rank]) @ Vt[:rank]


def cluster_eigenvalues(sigma: ArrayLike, eta: float, n_clusters: float) -> FloatArray:
    """Eigenvalues of the optimal ``M`` in the convex clustered-MTL relaxation.

    Solves, exactly, the water-filling problem

        min_m  sum_i sigma_i / (eta + m_i)   s.t.  sum_i m_i = k,  0 <= m_i <= 1,

    which is ``min_M tr((eta I + M)^{-1} W^T W)`` over ``{tr(M) = k, 0 <= M <= I}``
    written in the eigenbasis of ``W^T W = U diag(sigma) U^T`` (the optimal ``M`` is
    ``U diag(m) U^T``; Zhou, Chen & Ye, 2011). Stationarity gives
    ``m_i = clip(sqrt(sigma_i) * s - eta, 0, 1)`` for a scalar ``s = 1/sqrt(lambda)`` (the
    Lagrange multiplier of the trace constraint). The map
    ``h(s) = sum_i clip(sqrt(sigma_i) s - eta, 0, 1)`` is non-decreasing and piecewise
    linear with breakpoints ``eta / sqrt(sigma_i)`` and ``(1 + eta) / sqrt(sigma_i)``, so
    ``h(s) = k`` is solved exactly by locating the bracketing breakpoints and
    interpolating. When fewer than ``k`` eigenvalues are positive, the positive ones get
    ``m_i = 1`` and the remaining trace is spread evenly over the zero ones (any split
    is optimal there).

    Parameters
    ----------
    sigma : array_like of shape (n_tasks,)
        Eigenvalues of ``W^T W`` (all ``>= 0``).
    eta : float
        ``eta > 0`` (``beta / alpha`` in :class:`Clustered`).
    n_clusters : float
        ``k``, with ``0 < k <= n_tasks``.

    Returns
    -------
    m : ndarray of shape (n_tasks,)
        Eigenvalues of the optimal ``M`` in ``[0, 1]``, summing to ``k``, in the order of
        ``sigma``.

    Raises
    ------
    ValueError
        If ``sigma`` is not 1-D or has negative entries, ``eta <= 0`` or ``k`` is out of
        range.

    References
    ----------
    J. Zhou, J. Chen and J. Ye. Clustered multi-task learning via alternating structure
    optimization. NIPS 2011.

    Examples
    --------
    >>> cluster_eigenvalues([9.0, 4.0, 0.0], eta=1.0, n_clusters=1).round(3).tolist()
    [0.8, 0.2, 0.0]
    """
    func = "cluster_eigenvalues"
    sig = _as_float(sigma, "sigma", func, ndim=1)
    n_tasks = sig.size
    if n_tasks == 0:
        raise ValueError(f"{func}: sigma is empty; expected one eigenvalue per task")
    if not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise ValueError(f"{func}: sigma must hold finite eigenvalues >= 0")
    eta_f = _check_threshold(eta, func, "eta")
    if eta_f == 0:
        raise ValueError(f"{func}: eta must be > 0; got {eta!r}")
    k = _check_threshold(n_clusters, func, "n_clusters")
    if not 0 < k <= n_tasks:
        raise ValueError(
            f"{func}: n_clusters must be in (0, n_tasks] = (0, {n_tasks}]; got {n_clusters!r}"
        )
    m = np.zeros(n_tasks)
    positive = sig > 0
    n_pos = int(np.count_nonzero(positive))
    if n_pos <= k:
        m[positive] = 1.0
        if n_pos < n_tasks:
            m[~positive] = (k - n_pos) / (n_tasks - n_pos)
        return m
    root = np.sqrt(sig[positive])
    breaks = np.unique(np.concatenate([eta_f / root, (1.0 + eta_f) / root]))
    h = np.clip(np.outer(breaks, root) - eta_f, 0.0, 1.0).sum(axis=1)
    # h(breaks[0]) = 0 < k < n_pos = h(breaks[-1]): j lies in [1, len(breaks) - 1].
    j = int(np.searchsorted(h, k, side="left"))
    j = min(max(j, 1), breaks.size - 1)
    s = breaks[j - 1] + (k - h[j - 1]) * (breaks[j] - breaks[j - 1]) / (h[j] - h[j - 1])
    m[positive] = np.clip(root * s - eta_f, 0.0, 1.0)
    return m
