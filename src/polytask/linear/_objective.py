"""Pieces shared by the solvers: results, requirements, the composite objective."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

__all__ = ["SolverResult", "ZeroPenalty", "split_penalties"]

FArray = NDArray[np.float64]

# Below this many features the products are too small for threaded BLAS to pay off.
_SINGLE_THREAD_MAX_FEATURES = 64


def blas_threads(n_features: int) -> AbstractContextManager[Any]:
    """One BLAS thread for the duration of a solve on small blocks, else no change.

    Products with (n_features, n_features) blocks this small finish before threads
    synchronise; on a busy machine threaded BLAS made School solves 20x slower.
    """
    if n_features <= _SINGLE_THREAD_MAX_FEATURES:
        return threadpool_limits(limits=1, user_api="blas")
    return nullcontext()


@dataclass(frozen=True)
class SolverResult:
    """What a solver returns.

    Attributes
    ----------
    W : ndarray of shape (n_features, n_tasks)
        Model weights (the sum of the blocks for a composite penalty).
    V : ndarray of shape (n_features, n_tasks) or (n_blocks, n_features, n_tasks)
        The variable as optimised (``W`` itself unless the penalty is composite).
    n_iter : int
        Iterations run (0 when the starting point already met the tolerance).
    objective : float
        Objective value at ``V``, on the user's problem.
    dual_gap : float or None
        Duality gap ``P - D`` at ``V`` when the penalty admits one, else None.
    stop_crit : float
        The certified measure compared with ``tol``: ``dual_gap / objective`` when a gap
        exists, else ``subdiff_distance / ||gradient at 0||_F``.
    converged : bool
        Whether ``stop_crit <= tol``.
    history : tuple of (iteration, objective, stop_crit), optional
        Recorded at every check when the solver runs with ``verbose=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import FISTA, L21, SquaredLoss
    >>> X, Y = np.eye(3), np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 0.0]])
    >>> res = FISTA().solve(SquaredLoss().initialize(X, Y), L21(alpha=2.0))
    >>> res.W.round(3).tolist(), res.converged
    ([[1.8, 2.4], [0.0, 0.0], [0.0, 0.0]], True)
    """

    W: FArray
    V: FArray
    n_iter: int
    objective: float
    dual_gap: float | None
    stop_crit: float
    converged: bool
    history: tuple[tuple[int, float, float], ...] | None = None


class ZeroPenalty:
    """The zero function: stands in for the proximable term when there is none.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import ZeroPenalty
    >>> ZeroPenalty().prox(np.ones((2, 2)), 0.5).tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """

    n_blocks: ClassVar[int] = 1
    smooth: ClassVar[bool] = False
    is_norm: ClassVar[bool] = False

    def validate(self) -> None:
        """Nothing to check."""

    def value(self, W: FArray) -> float:
        """Zero."""
        return 0.0

    def prox(self, W: FArray, step: float) -> FArray:
        """The identity."""
        return np.asarray(W, dtype=np.float64)

    def subdiff_distance(self, W: FArray, grad: FArray) -> float:
        """``||grad||_F``."""
        return float(np.linalg.norm(grad))

    def __repr__(self) -> str:
        return "ZeroPenalty()"


def split_penalties(penalties: Any) -> tuple[Any, tuple[Any, ...]]:
    """Split one penalty or a sequence of penalties into (proximable, smooth ones).

    The proximable term is the non-smooth penalty (at most one is allowed); without one,
    a single smooth penalty that has a ``prox`` becomes the proximable term, and
    otherwise :class:`ZeroPenalty` stands in.

    Parameters
    ----------
    penalties : penalty object, sequence of penalty objects, or None

    Returns
    -------
    proximable : penalty object
    smooth : tuple of penalty objects

    Raises
    ------
    ValueError
        If more than one penalty is non-smooth.

    Examples
    --------
    >>> from polytask.linear import L21, Ridge, split_penalties
    >>> split_penalties([Ridge(0.1), L21(0.5)])
    (L21(alpha=0.5), (Ridge(alpha=0.1),))
    """
    if penalties is None:
        items: list[Any] = []
    elif isinstance(penalties, (list, tuple)):
        items = list(penalties)
    else:
        items = [penalties]
    nonsmooth = [p for p in items if not getattr(p, "smooth", False)]
    if len(nonsmooth) > 1:
        names = ", ".join(type(p).__name__ for p in nonsmooth)
        raise ValueError(f"penalty: at most one non-smooth penalty can be combined; got {names}.")
    if nonsmooth:
        return nonsmooth[0], tuple(p for p in items if p is not nonsmooth[0])
    if len(items) == 1 and hasattr(items[0], "prox"):
        return items[0], ()
    return ZeroPenalty(), tuple(items)


def check_requirements(
    solver: str, required: dict[str, tuple[str, ...]], objects: dict[str, Iterable[Any]]
) -> None:
    """Raise a ``ValueError`` naming the first required method an object lacks."""
    for role, names in required.items():
        for obj in objects.get(role, ()):
            for name in names:
                if not hasattr(obj, name):
                    raise ValueError(
                        f"{solver} needs {role}.{name}, which {type(obj).__name__} does "
                        f"not have; use a solver that does not need it or another {role}."
                    )


class Objective:
    """``F(W) + sum_k S_k(W) + pen(V)`` with ``W = V`` or ``W = V.sum(0)``."""

    def __init__(self, datafit: Any, penalty: Any, smooth: Sequence[Any]) -> None:
        if not hasattr(datafit, "design_"):
            raise ValueError(
                f"datafit {type(datafit).__name__} is not initialized; call "
                "datafit.initialize(X, Y) before solve."
            )
        for p in (penalty, *smooth):
            if hasattr(p, "validate"):
                p.validate()
        self.datafit = datafit
        self.penalty = penalty
        self.smooth = tuple(smooth)
        self.n_blocks = int(getattr(penalty, "n_blocks", 1))
        self.d, self.T = datafit.n_features, datafit.n_tasks
        self.shape: tuple[int, ...] = (
            (self.d, self.T) if self.n_blocks == 1 else (self.n_blocks, self.d, self.T)
        )
        grad0 = self.grad(np.zeros((self.d, self.T)), datafit.state(np.zeros((self.d, self.T))))
        self.grad0_norm = float(np.linalg.norm(grad0)) or 1.0
        self.has_gap = (
            not self.smooth
            and hasattr(datafit, "dual_value")
            and (
                (self.n_blocks == 1 and getattr(penalty, "is_norm", False))
                or hasattr(penalty, "weight_dual_norm")
            )
        )

    def start(self, W0: FArray | None) -> FArray:
        """The starting variable (zeros, or a copy of ``W0``)."""
        if W0 is None:
            return np.zeros(self.shape)
        V = np.asarray(W0, dtype=np.float64)
        if V.shape == self.shape:
            return V.copy()
        if self.n_blocks > 1 and V.shape == (self.d, self.T):
            out = np.zeros(self.shape)
            out[0] = V
            return out
        raise ValueError(f"W0 must have shape {self.shape}; got {V.shape}.")

    def weight(self, V: FArray) -> FArray:
        """Model weights ``W`` of a variable ``V``."""
        return V if self.n_blocks == 1 else V.sum(axis=0)

    def state(self, V: FArray) -> Any:
        """Datafit state at ``W(V)``."""
        return self.datafit.state(self.weight(V))

    def smooth_value(self, W: FArray, S: Any) -> float:
        """``F(W) + sum_k S_k(W)``."""
        return float(self.datafit.value(W, S) + sum(p.value(W) for p in self.smooth))

    def grad(self, W: FArray, S: Any, datafit_grad: FArray | None = None) -> FArray:
        """Gradient of the smooth part with respect to ``W``, (n_features, n_tasks)."""
        g = self.datafit.gradient(W, S) if datafit_grad is None else datafit_grad
        for p in self.smooth:
            g = g + p.gradient(W)
        return g

    def block_grad(self, g: FArray) -> FArray:
        """Gradient with respect to ``V`` (every block sees the gradient in ``W``)."""
        return g if self.n_blocks == 1 else np.broadcast_to(g, self.shape)

    def lipschitz(self) -> float:
        """Lipschitz constant of the gradient with respect to ``V``."""
        L = float(self.datafit.lipschitz())
        L += sum(float(p.lipschitz(self.d, self.T)) for p in self.smooth)
        return self.n_blocks * L

    def gap_scale(self, g: FArray) -> float | None:
        """Scaling that makes ``-g`` dual feasible, or None without a usable gap."""
        pen = self.penalty
        if self.n_blocks == 1:
            alpha = float(pen.alpha)
            if alpha <= 0:
                return None
            dn = float(pen.dual_norm(-g))
            return 1.0 if dn <= alpha else alpha / dn
        ratio = float(pen.weight_dual_norm(-g))
        if not np.isfinite(ratio):
            return None
        return 1.0 if ratio <= 1.0 else 1.0 / ratio

    def certificate(self, V: FArray, S: Any, g: FArray) -> tuple[float, float | None, float]:
        """``(objective, duality gap or None, stop_crit)`` at ``V``; ``g`` its W-gradient."""
        W = self.weight(V)
        P = self.smooth_value(W, S) + float(self.penalty.value(V))
        if self.has_gap:
            scale = self.gap_scale(g)
            if scale is not None:
                gap = P - float(self.datafit.dual_value(W, S, scale))
                return P, gap, gap / max(abs(P), np.finfo(float).tiny)
        dist = float(self.penalty.subdiff_distance(V, self.block_grad(g)))
        return P, None, dist / self.grad0_norm


def warn_not_converged(solver: str, n_iter: int, stop_crit: float, tol: float) -> None:
    """Issue the ``ConvergenceWarning`` of a solver that hit ``max_iter``."""
    warnings.warn(
        f"{solver} did not converge in {n_iter} iterations: the stopping criterion "
        f"reached {stop_crit:.3e} > tol={tol:.1e}. Increase max_iter, loosen tol, or "
        "increase the regularisation.",
        ConvergenceWarning,
        stacklevel=3,
    )
