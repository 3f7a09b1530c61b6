"""The synthetic regression tasks of the MMoE paper, with a tunable task correlation."""

from __future__ import annotations

from numbers import Real

import numpy as np
from numpy.typing import ArrayLike

from polytask._typing import FloatArray
from polytask.data._synthetic_base import (
    RandomState,
    SyntheticTasks,
    check_float,
    check_int,
    check_random_state,
)

_TOL = 1e-10


def _correlation_matrix(correlation: float | ArrayLike, n_tasks: int | None) -> FloatArray:
    """Validate ``correlation`` (a float for all pairs, or a matrix) as a (T, T) matrix."""
    if isinstance(correlation, Real) and not isinstance(correlation, bool):
        rho = check_float(correlation, "correlation", minimum=-1.0, maximum=1.0)
        T = 2 if n_tasks is None else check_int(n_tasks, "n_tasks")
        if T > 1 and rho < -1.0 / (T - 1) - _TOL:
            raise ValueError(
                f"correlation={rho} is impossible for all pairs of {T} tasks: the matrix "
                f"would not be positive semidefinite; expected >= -1/(n_tasks-1) = "
                f"{-1.0 / (T - 1):.4g}"
            )
        return (1.0 - rho) * np.eye(T) + rho * np.ones((T, T))
    try:
        R = np.asarray(correlation, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"correlation must be a float or a (n_tasks, n_tasks) matrix; got {correlation!r}"
        ) from exc
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.size == 0:
        raise ValueError(
            f"correlation must be a float or a square (n_tasks, n_tasks) matrix; got shape "
            f"{R.shape}"
        )
    if n_tasks is not None and check_int(n_tasks, "n_tasks") != R.shape[0]:
        raise ValueError(
            f"correlation is {R.shape[0]}x{R.shape[0]} but n_tasks={n_tasks}; expected one "
            "row per task"
        )
    if not np.all(np.isfinite(R)):
        raise ValueError("correlation contains NaN or infinite values")
    if not np.allclose(R, R.T, rtol=0.0, atol=_TOL):
        raise ValueError("correlation must be a symmetric matrix")
    if not np.allclose(np.diag(R), 1.0, rtol=0.0, atol=_TOL):
        raise ValueError(f"correlation must have a unit diagonal; got {np.diag(R).tolist()}")
    smallest = float(np.linalg.eigvalsh(R)[0])
    if smallest < -1e-8:
        raise ValueError(
            "correlation must be positive semidefinite (a valid correlation matrix); its "
            f"smallest eigenvalue is {smallest:.4g}"
        )
    R = (R + R.T) / 2.0
    np.fill_diagonal(R, 1.0)
    return R


def _gram_factor(R: FloatArray) -> FloatArray:
    """A (T, T) matrix M with ``Mᵀ M = R``: Cholesky, or eigen for a singular R."""
    try:
        return np.linalg.cholesky(R).T
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(R)
        return np.sqrt(np.clip(values, 0.0, None))[:, None] * vectors.T


def mmoe_synthetic(
    n_samples: int,
    n_features: int = 100,
    n_tasks: int | None = None,
    correlation: float | ArrayLike = 0.5,
    c: float = 1.0,
    n_sin: int = 10,
    noise: float = 0.01,
    random_state: RandomState = None,
    alpha_std: float = 1.0,
) -> SyntheticTasks:
    """Regression tasks whose weight vectors have a prescribed cosine similarity.

    The generator of Ma et al. (2018, section 4.1), extended to T tasks. Draw ``U``
    with T orthonormal columns (uniformly at random) and a factor ``M`` with
    ``Mᵀ M = R``; set ``W = c · U M``, so that ``cos(w_s, w_t) = R[s, t]`` exactly.
    With ``x ~ N(0, I)``, each task is

    ``y_t = w_tᵀx + Σ_{i=1}^{m} sin(α_i w_tᵀx + β_i) + ε_t``,  ``ε_t ~ N(0, noise²)``,

    with ``α_i ~ N(0, alpha_std²)`` and ``β_i ~ N(0, 1)`` drawn once and shared by all
    tasks. For two tasks and ``R = [[1, ρ], [ρ, 1]]`` this is the paper's
    ``w1 = c·u1``, ``w2 = c(ρ u1 + sqrt(1 - ρ²) u2)``. As the paper notes, the Pearson
    correlation of the labels is not exactly ρ because of the sine terms, but it grows
    with ρ, and it approaches ``ρ c² / (c² + noise²)`` when ``m = 0`` or ``α → 0``.

    Parameters
    ----------
    n_samples : int
        Number of samples, shared by all tasks.
    n_features : int, default 100
        Input dimension d; at least ``n_tasks``.
    n_tasks : int, optional
        Number of tasks T; by default 2, or the size of a ``correlation`` matrix.
    correlation : float or array-like of shape (n_tasks, n_tasks), default 0.5
        ρ for every pair of tasks, or a correlation matrix R (symmetric, unit diagonal,
        positive semidefinite).
    c : float, default 1.0
        Norm of every weight vector (> 0).
    n_sin : int, default 10
        Number m of sine terms (0 gives linear tasks).
    noise : float, default 0.01
        Standard deviation of the label noise.
    random_state : int, numpy.random.Generator or None
        Seed of every random draw.
    alpha_std : float, default 1.0
        Standard deviation of the frequencies α_i (0 removes the non-linearity).

    Returns
    -------
    SyntheticTasks
        ``X`` (n_samples, n_features), ``Y`` (n_samples, n_tasks). ``truth`` holds
        ``"W"`` (n_features, n_tasks), ``"correlation"`` (the requested R),
        ``"weight_cosine"`` (measured on W), ``"alpha"``, ``"beta"`` (n_sin,) and
        ``"noise"``.

    Raises
    ------
    ValueError
        If ``correlation`` is out of [-1, 1], not symmetric, without a unit diagonal or
        not positive semidefinite, disagrees with ``n_tasks``, if
        ``n_features < n_tasks``, or a size or scale is out of range.
    TypeError
        If an argument has the wrong type.

    References
    ----------
    J. Ma, Z. Zhao, X. Yi, J. Chen, L. Hong and E. H. Chi, "Modeling task relationships
    in multi-task learning with multi-gate mixture-of-experts", KDD 2018.

    Examples
    --------
    >>> tasks = mmoe_synthetic(200, n_features=16, correlation=0.8, random_state=0)
    >>> tasks.X.shape, tasks.Y.shape
    ((200, 16), (200, 2))
    >>> round(float(tasks.truth["weight_cosine"][0, 1]), 6)
    0.8
    """
    rng = check_random_state(random_state)
    n = check_int(n_samples, "n_samples")
    d = check_int(n_features, "n_features")
    R = _correlation_matrix(correlation, n_tasks)
    T = R.shape[0]
    if d < T:
        raise ValueError(
            f"n_features={d} is smaller than n_tasks={T}; the construction needs "
            "n_features >= n_tasks orthogonal directions"
        )
    scale = check_float(c, "c", strict=True)
    m = check_int(n_sin, "n_sin", minimum=0)
    sigma = check_float(noise, "noise")
    a_std = check_float(alpha_std, "alpha_std")

    Q, upper = np.linalg.qr(rng.standard_normal((d, T)))
    U = Q * np.where(np.diag(upper) < 0.0, -1.0, 1.0)  # uniform on the Stiefel manifold
    W = scale * U @ _gram_factor(R)
    alpha = a_std * rng.standard_normal(m)
    beta = rng.standard_normal(m)

    X = rng.standard_normal((n, d))
    Z = X @ W
    Y = Z + np.sin(Z[:, :, None] * alpha + beta).sum(axis=2)
    Y += sigma * rng.standard_normal((n, T))

    norms = np.linalg.norm(W, axis=0)
    truth = {
        "W": W,
        "correlation": R,
        "weight_cosine": (W.T @ W) / np.outer(norms, norms),
        "alpha": alpha,
        "beta": beta,
        "noise": sigma,
    }
    names = tuple(f"task_{t}" for t in range(T))
    return SyntheticTasks(X=X, Y=Y, task_names=names, truth=truth)


__all__ = ["mmoe_synthetic"]
