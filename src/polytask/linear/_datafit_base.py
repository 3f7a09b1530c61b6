"""Datafit plumbing: eigenvalue bounds, data resolution and the base class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike, NDArray

from polytask.linear._design import TaskDesign

__all__ = ["BaseDatafit", "resolve_design", "top_eigenvalues"]

Normalization = Literal["sum", "mean"]
FArray = NDArray[np.float64]

# Exact eigenvalues below this size, Lanczos above.
_EXACT_EIG_MAX_DIM = 128


def top_eigenvalues(H: FArray) -> FArray:
    """Largest eigenvalue of one symmetric PSD matrix (d, d) or of each of (T, d, d).

    Exact (LAPACK) for small ``d``; Lanczos (ARPACK, relative tolerance 1e-6) otherwise,
    inflated by 1e-5 relative so that the result stays an upper bound (the Ritz value
    converges to the top eigenvalue from below, quadratically in the residual).
    """
    stack = H[None] if H.ndim == 2 else H
    d = stack.shape[-1]
    if d <= _EXACT_EIG_MAX_DIM:
        out = np.linalg.eigvalsh(stack)[:, -1]
    else:
        out = np.array([_lanczos_top(h) for h in stack])
    out = np.maximum(out, 0.0)
    return out[0:1] if H.ndim == 2 else out


def _lanczos_top(op: Any, dim: int | None = None) -> float:
    n = op.shape[0] if dim is None else dim
    if n <= 2 * _EXACT_EIG_MAX_DIM:
        dense = np.column_stack([op @ e for e in np.eye(n)]) if n else np.zeros((0, 0))
        top = np.linalg.eigvalsh(0.5 * (dense + dense.T))[-1] if n else 0.0
        return max(float(top), 0.0)
    v0 = np.ones(n) / np.sqrt(n)
    val = spla.eigsh(op, k=1, which="LA", tol=1e-6, v0=v0, return_eigenvectors=False)[0]
    return float(val) * (1.0 + 1e-5)


def _batched_rowvec(V: FArray, M: FArray) -> FArray:
    """``out[:, t] = M_t^T v_t`` for ``V`` (k, T) and ``M`` (T, k, m): result (m, T)."""
    Vt = np.ascontiguousarray(V.T)
    return np.matmul(Vt[:, None, :], M)[:, 0, :].T


def resolve_design(X: ArrayLike | TaskDesign | Sequence[ArrayLike], Y: Any) -> TaskDesign:
    """Turn ``(X, Y)`` into a :class:`TaskDesign` (shared when ``X`` is one array)."""
    if isinstance(X, TaskDesign):
        if Y is not None:
            raise ValueError("Y must be None when X is already a TaskDesign.")
        return X
    if Y is None:
        raise ValueError("Y is required unless X is a TaskDesign.")
    if isinstance(X, (list, tuple)):
        return TaskDesign.per_task(X, Y)
    return TaskDesign.shared(X, Y)  # type: ignore[arg-type]


class BaseDatafit:
    """Bookkeeping shared by the datafits (normalisation, intercepts, checks)."""

    quadratic: ClassVar[bool] = False

    def __init__(self, normalization: Normalization = "sum", fit_intercept: bool = False) -> None:
        self.normalization = normalization
        self.fit_intercept = fit_intercept

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(normalization={self.normalization!r}, "
            f"fit_intercept={self.fit_intercept})"
        )

    def _bind(self, design: TaskDesign) -> None:
        if self.normalization not in ("sum", "mean"):
            raise ValueError(f"normalization must be 'sum' or 'mean'; got {self.normalization!r}.")
        self.design_ = design
        self.n_features = design.n_features
        self.n_tasks = design.n_tasks
        if self.normalization == "sum":
            self.weights_ = np.ones(design.n_tasks)
        else:
            self.weights_ = 1.0 / design.n_samples.astype(np.float64)
        if self.fit_intercept:
            self.x_mean_, self.y_mean_ = design.task_means()
        else:
            self.x_mean_ = np.zeros((design.n_features, design.n_tasks))
            self.y_mean_ = np.zeros(design.n_tasks)

    def _check_ready(self, W: FArray) -> None:
        if not hasattr(self, "design_"):
            raise ValueError(f"{type(self).__name__} is not initialized; call initialize(X, Y).")
        if W.shape != (self.n_features, self.n_tasks):
            raise ValueError(
                f"W must have shape (n_features, n_tasks) = ({self.n_features}, "
                f"{self.n_tasks}); got {W.shape}."
            )

    def _mask(self) -> FArray | None:
        design = self.design_
        return None if design.mask is None else design.mask.astype(np.float64)

    def _sample_weights(self) -> FArray:
        """Weight ``c_t`` of every sample, in the layout of ``TaskDesign.matvec``."""
        design = self.design_
        w = design.per_task_view(self.weights_)
        mask = self._mask()
        return w * mask if mask is not None else np.asarray(w)

    def initialize(
        self, X: ArrayLike | TaskDesign | Sequence[ArrayLike], Y: Any = None
    ) -> BaseDatafit:
        """Bind the data (see the subclasses)."""
        raise NotImplementedError

    def value(self, W: FArray, state: Any = None) -> float:
        """Datafit value ``F(W)``; ``state`` defaults to ``self.state(W)``."""
        raise NotImplementedError

    def gradient(self, W: FArray, state: Any = None) -> FArray:
        """Gradient of ``F`` at ``W``, shape (n_features, n_tasks)."""
        raise NotImplementedError

    def state(self, W: FArray) -> FArray:
        """Quantity linear in ``W`` from which value and gradient are computed."""
        raise NotImplementedError

    def intercept(self, W: FArray, state: Any = None) -> FArray:
        """Optimal unpenalised intercept of every task given ``W``, shape (n_tasks,)."""
        raise NotImplementedError
