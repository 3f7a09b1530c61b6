"""Working-set solver for row-separable penalties: small subproblems, certified on the
full problem, with gap-safe screening."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from sklearn.exceptions import ConvergenceWarning

from polytask.linear._datafits import SquaredLoss
from polytask.linear._objective import SolverResult, check_requirements, warn_not_converged
from polytask.linear._screening import _column_bounds, _fresh, _row_dual, _screen, restrict_design
from polytask.linear._solvers import FISTA, _validate_common

__all__ = ["WorkingSet"]

FArray = NDArray[np.float64]
IArray = NDArray[np.intp]


def _check_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"WorkingSet: {name} must be an integer >= 1; got {value!r}.")


@dataclass
class WorkingSet:
    r"""Working-set solver for row-separable norms, certified on the full problem.

    Minimises ``F(W) + alpha sum_j omega(W_j)`` with ``omega`` the l2 (:class:`L21`), l1
    (:class:`Lasso`) or l_inf (:class:`L1Linf`) norm of row ``j`` (feature ``j``). A
    sparse solution uses few features, so the solver alternates:

    1. **Certificate on the full problem.** One product with the data gives the
       gradient ``G`` of the datafit at ``W``, the relative duality gap of the *full*
       problem (the one :class:`FISTA` stops on) and, for every feature, its KKT score
       ``omega*(G_j)`` (``> alpha`` on a zero row: the feature wants in). The solver
       stops when the gap is below ``tol``.
    2. **Gap-safe screening** (squared loss): features proved to be zero at the optimum
       (:func:`gap_safe_screen`) are removed for good.
    3. **Working set.** The features in use plus those with the largest scores, in all
       ``max(initial_size, 2 * n_used)`` of them (Massias et al. 2018).
    4. **Subproblem.** The same datafit and penalty restricted to the working set
       (:func:`restrict_design`; a Gram matrix of the working set only), solved by the
       ``inner`` solver from the current ``W`` to ``inner_tol_ratio * tol``. Solving
       the small subproblems tightly costs less than one more product with the whole
       design: once the working set holds the support, the next certificate is final.

    The Gram matrix of all features, ``O(n d^2)`` to form, is never needed: on a shared
    design with ``n = d = 5000``, ``T = 100`` and 500 features in use, forming it took
    longer than the whole working-set solve. The answer is the full problem's: features
    outside the working set are zero and satisfy the optimality conditions (that is
    what the full-problem gap certifies).

    Parameters
    ----------
    max_iter : int, default=1000
        Maximum iterations of each subproblem solve.
    tol : float, default=1e-6
        Tolerance on the full problem's relative duality gap (or relative subdifferential
        distance when there is no gap, as for :class:`FISTA`).
    max_outer : int, default=50
        Maximum number of working sets (each costs one product with the whole design).
    initial_size : int, default=100
        Size of the first working set.
    screening : bool, default=True
        Apply the gap-safe rule at every outer iteration (squared loss, ``alpha > 0``).
    inner : solver object or None, default=None
        Solver of the subproblems; None uses :class:`FISTA`. Its ``max_iter`` and
        ``tol`` are set by this solver.
    inner_tol_ratio : float, default=0.3
        Tolerance of the subproblems as a fraction of ``tol``, in ``(0, 1)``.
    verbose : bool, default=False
        Log every outer iteration on the ``polytask.linear`` logger (INFO) and record
        ``SolverResult.history`` (outer iteration, objective, stopping criterion).

    Attributes
    ----------
    required : dict
        Methods the solver needs from each object, checked by :meth:`solve`.

    References
    ----------
    M. Massias, A. Gramfort and J. Salmon. Celer: a fast solver for the Lasso with dual
    extrapolation. ICML 2018.
    E. Ndiaye, O. Fercoq, A. Gramfort and J. Salmon. Gap safe screening rules for
    sparsity enforcing penalties. JMLR 18(128), 2017.
    T. B. Johnson and C. Guestrin. Blitz: a principled meta-algorithm for scaling sparse
    optimization. ICML 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import FISTA, L21, SquaredLoss
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 300))
    >>> Y = X[:, :4] @ rng.normal(size=(4, 3)) + 0.01 * rng.normal(size=(80, 3))
    >>> datafit = SquaredLoss(normalization="mean").initialize(X, Y)
    >>> res = WorkingSet(tol=1e-8).solve(datafit, L21(alpha=0.1))
    >>> plain = FISTA(tol=1e-10, max_iter=10000).solve(datafit, L21(alpha=0.1))
    >>> res.converged, bool(np.allclose(res.W, plain.W, atol=1e-4))
    (True, True)
    """

    max_iter: int = 1000
    tol: float = 1e-6
    max_outer: int = 50
    initial_size: int = 100
    screening: bool = True
    inner: Any = None
    inner_tol_ratio: float = 0.3
    verbose: bool = False

    required: ClassVar[dict[str, tuple[str, ...]]] = {
        "datafit": ("initialize", "state", "value", "gradient"),
        "penalty": ("value", "prox", "subdiff_distance"),
    }

    def _validate(self) -> None:
        _validate_common("WorkingSet", self.max_iter, self.tol)
        _check_int(self.max_outer, "max_outer")
        _check_int(self.initial_size, "initial_size")
        if not isinstance(self.screening, (bool, np.bool_)):
            raise ValueError(f"WorkingSet: screening must be a bool; got {self.screening!r}.")
        r = self.inner_tol_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r < 1:
            raise ValueError(f"WorkingSet: inner_tol_ratio must be in (0, 1); got {r!r}.")
        if self.inner is not None and not hasattr(self.inner, "solve"):
            raise ValueError(
                f"WorkingSet: inner must be a solver with a solve method or None; got "
                f"{self.inner!r}."
            )

    def solve(
        self,
        datafit: Any,
        penalty: Any,
        W0: FArray | None = None,
        smooth: Sequence[Any] = (),
    ) -> SolverResult:
        """Minimise the objective from ``W0`` (zeros by default).

        Parameters
        ----------
        datafit : initialized datafit
            E.g. ``SquaredLoss().initialize(X, Y)``; a Gram-form datafit is fine (its
            Gram matrices are not formed: the solver works with products with ``X``).
        penalty : L21, Lasso or L1Linf
            The row-separable norm.
        W0 : ndarray of shape (n_features, n_tasks), optional
            Warm start.
        smooth : sequence of penalty objects, default=()
            Must be empty (smooth penalties are not supported).

        Returns
        -------
        SolverResult
            ``n_iter`` counts the iterations of all subproblem solves.

        Raises
        ------
        ValueError
            If a parameter is invalid, an object lacks a required method, the penalty is
            not row-separable, a smooth penalty is given, the datafit is not
            initialized, or ``W0`` has the wrong shape.
        """
        self._validate()
        check_requirements(
            "WorkingSet", self.required, {"datafit": [datafit], "penalty": [penalty]}
        )
        if len(smooth) > 0:
            raise ValueError(
                "WorkingSet: smooth penalties are not supported; got "
                f"{[type(p).__name__ for p in smooth]}. Use FISTA."
            )
        row_dual, kappa = _row_dual(penalty, "WorkingSet")
        if not hasattr(datafit, "design_"):
            raise ValueError(
                f"WorkingSet: datafit {type(datafit).__name__} is not initialized; call "
                "datafit.initialize(X, Y) before solve."
            )
        if hasattr(penalty, "validate"):
            penalty.validate()
        shape = (datafit.n_features, datafit.n_tasks)
        W = np.zeros(shape) if W0 is None else np.array(W0, dtype=np.float64)
        if W.shape != shape:
            raise ValueError(f"WorkingSet: W0 must have shape {shape}; got {W.shape}.")
        # Products with X for the full problem: never the full Gram matrices.
        full = datafit
        if getattr(datafit, "gram_", False):
            full = _fresh(datafit, use_gram=False).initialize(datafit.design_)
        return _Run(self, full, datafit, penalty, row_dual, kappa(shape[1])).run(W)


class _Run:
    """One working-set run (keeps the iteration state out of the solver object)."""

    def __init__(
        self,
        solver: WorkingSet,
        full: Any,
        datafit: Any,
        penalty: Any,
        row_dual: Any,
        kappa: float,
    ) -> None:
        self.s, self.full, self.datafit, self.pen = solver, full, datafit, penalty
        self.row_dual = row_dual
        self.alpha = float(penalty.alpha)
        self.has_gap = hasattr(full, "dual_value") and self.alpha > 0
        self.screen = solver.screening and isinstance(datafit, SquaredLoss) and self.has_gap
        self.bounds = kappa * _column_bounds(full) if self.screen else None
        self.c_max = float(np.max(full.weights_))
        self.keep = np.ones(full.n_features, dtype=bool)
        self.grad0_norm: float | None = None
        self.history: list[tuple[int, float, float]] = []
        self.log = logging.getLogger("polytask.linear")

    def _certificate(
        self, W: FArray, S: Any, G: FArray
    ) -> tuple[float, float | None, float, float | None]:
        """``(objective, gap or None, stop_crit, dual scale or None)`` of the full problem.

        The criterion of :class:`FISTA`: the relative duality gap at the residual
        rescaled by ``min(1, alpha / Omega*(-G))``, else the subdifferential distance
        relative to the gradient norm at zero.
        """
        full, pen = self.full, self.pen
        P = float(full.value(W, S)) + float(pen.value(W))
        if self.has_gap:
            dn = float(pen.dual_norm(-G))
            scale = 1.0 if dn <= self.alpha else self.alpha / dn
            gap = P - float(full.dual_value(W, S, scale))
            return P, gap, gap / max(abs(P), np.finfo(float).tiny), scale
        if self.grad0_norm is None:
            zero = np.zeros_like(W)
            self.grad0_norm = float(np.linalg.norm(full.gradient(zero))) or 1.0
        return P, None, float(pen.subdiff_distance(W, G)) / self.grad0_norm, None

    def _working_set(self, W: FArray, scores: FArray) -> IArray:
        """Features in use, then the highest scores: ``max(initial_size, 2 n_used)``."""
        used = np.any(W != 0.0, axis=1) & self.keep
        prio = np.where(used, np.inf, scores)
        prio[~self.keep] = -np.inf
        n_cand = int(self.keep.sum())
        size = min(n_cand, max(self.s.initial_size, 2 * int(used.sum())))
        if size >= n_cand:
            return np.flatnonzero(self.keep)
        return np.sort(np.argpartition(-prio, size - 1)[:size])

    def _inner(self, tol: float) -> Any:
        inner = self.s.inner
        if inner is None:
            return FISTA(max_iter=self.s.max_iter, tol=tol)
        if dataclasses.is_dataclass(inner) and not isinstance(inner, type):
            names = {f.name for f in dataclasses.fields(inner)}
            updates = {"max_iter": self.s.max_iter, "tol": tol}
            return dataclasses.replace(inner, **{k: v for k, v in updates.items() if k in names})
        return inner

    def run(self, W: FArray) -> SolverResult:
        s, full = self.s, self.full
        n_inner, outer = 0, 0
        while True:
            S = full.state(W)
            G = full.gradient(W, S)
            P, gap, crit, scale = self._certificate(W, S, G)
            if s.verbose:
                self.history.append((outer, P, crit))
                self.log.info(
                    "WorkingSet outer %d: objective %.10g, stop_crit %.3e, %d features kept",
                    outer,
                    P,
                    crit,
                    int(self.keep.sum()),
                )
            if crit <= s.tol or outer == s.max_outer:
                break
            outer += 1
            scores = self.row_dual(G)
            if self.screen and gap is not None and scale is not None:
                assert self.bounds is not None
                self.keep &= ~_screen(scores, scale, gap, P, self.bounds, self.c_max, self.alpha)
                W = np.where(self.keep[:, None], W, 0.0)
            ws = self._working_set(W, scores)
            if ws.size == 0:  # every feature screened out: W = 0 is optimal
                W = np.zeros_like(W)
                continue
            sub = _fresh(self.datafit).initialize(restrict_design(full.design_, ws))
            inner = self._inner(s.inner_tol_ratio * s.tol)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                res = inner.solve(sub, self.pen, W0=W[ws])
            n_inner += int(res.n_iter)
            W = np.zeros_like(W)
            W[ws] = res.W
        converged = crit <= s.tol
        if not converged:
            warn_not_converged("WorkingSet", outer, crit, s.tol)
        return SolverResult(
            W=W,
            V=W,
            n_iter=n_inner,
            objective=P,
            dual_gap=gap,
            stop_crit=crit,
            converged=converged,
            history=tuple(self.history) if s.verbose else None,
        )
