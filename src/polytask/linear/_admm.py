"""ADMM for a datafit with an exact proximal step (the squared loss)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from polytask.linear._objective import (
    Objective,
    SolverResult,
    blas_threads,
    check_requirements,
    warn_not_converged,
)
from polytask.linear._solvers import _validate_common

__all__ = ["ADMM"]

# The certificate costs about one iteration (an SVD for the trace norm): check every 5.
_CHECK_EVERY = 5


def _rho_factor(V: FArray, Z: FArray, Z_old: FArray, U: FArray, rho: float) -> float:
    """Residual balancing with relative residuals (Boyd et al. 2011; Wohlberg 2017)."""
    tiny = np.finfo(float).tiny
    r = float(np.linalg.norm(V - Z)) / max(float(np.linalg.norm(V)), float(np.linalg.norm(Z)), tiny)
    s = float(np.linalg.norm(Z - Z_old)) / max(float(np.linalg.norm(U)), tiny)
    if r <= 0 and s <= 0:
        return 1.0
    if s <= 0:  # the iterate Z no longer moves while V and Z disagree: raise rho
        return 100.0
    ratio = r / s
    if 0.1 <= ratio <= 10.0:
        return 1.0
    return float(np.clip(np.sqrt(ratio), 0.01, 100.0))


FArray = NDArray[np.float64]


@dataclass
class ADMM:
    r"""Alternating direction method of multipliers with an exact datafit step.

    Splits ``min_V F(W(V)) + pen(V)`` as ``F(W(V)) + pen(Z)`` subject to ``V = Z`` and
    iterates (scaled form, Boyd et al. 2011, §3.1)

    .. math::

        V &\leftarrow \arg\min_V F(W(V)) + \tfrac{\rho}{2} \|V - Z + U\|_F^2
           \quad(\text{``datafit.prox_solve``: one linear system per task}),\\
        Z &\leftarrow \operatorname{prox}_{\mathrm{pen}/\rho}(V + U), \qquad
        U \leftarrow U + V - Z.

    The datafit step is solved exactly, so the conditioning of the features does not
    slow the method down the way it slows gradient methods: on School (raw features,
    condition number ~1e5 after removing the null space) ADMM needs 100-300 iterations
    where FISTA needs ~30,000. Every 10 iterations ``rho`` is rescaled by the square root
    of the ratio of the relative primal and dual residuals when they differ by more than
    a factor 10 (residual balancing, Boyd et al. 2011, §3.4.1, in the relative form of
    Wohlberg 2017). The certificate is evaluated every 5 iterations. For a composite penalty
    (``n_blocks = 2``) the V-step reduces to one datafit step on the sum of the blocks.

    The iterate returned is ``Z`` (it has the structure the penalty imposes: zero rows,
    low rank...), and the stopping rule is the certified one of :class:`FISTA`
    (relative duality gap, or relative subdifferential distance), evaluated at ``Z``
    at every iteration.

    Parameters
    ----------
    max_iter : int, default=1000
        Maximum number of iterations.
    tol : float, default=1e-6
        Tolerance on the stopping criterion.
    rho : float or None, default=None
        Initial penalty parameter; None uses the median positive diagonal entry of the
        datafit's Hessian blocks (``hessian_diagonal``) divided by 10.
    verbose : bool, default=False
        Log progress on the ``polytask.linear`` logger (INFO) and record the history.

    Attributes
    ----------
    required : dict
        Methods the solver needs from each object, checked by :meth:`solve`.

    References
    ----------
    S. Boyd, N. Parikh, E. Chu, B. Peleato and J. Eckstein. Distributed optimization and
    statistical learning via the alternating direction method of multipliers.
    Foundations and Trends in Machine Learning 3(1), 2011.
    B. Wohlberg. ADMM penalty parameter selection by residual balancing.
    arXiv:1704.06209, 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import ADMM, SquaredLoss, TraceNorm
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 6))
    >>> Y = X @ np.outer(rng.normal(size=6), rng.normal(size=4))
    >>> datafit = SquaredLoss().initialize(X, Y)
    >>> res = ADMM(tol=1e-8).solve(datafit, TraceNorm(alpha=1.0))
    >>> res.converged, int(np.linalg.matrix_rank(res.W, tol=1e-6))
    (True, 1)
    """

    max_iter: int = 1000
    tol: float = 1e-6
    rho: float | None = None
    verbose: bool = False

    required: ClassVar[dict[str, tuple[str, ...]]] = {
        "datafit": ("prox_solve", "state", "value", "gradient"),
        "penalty": ("value", "prox", "subdiff_distance"),
    }

    def solve(
        self,
        datafit: Any,
        penalty: Any,
        W0: FArray | None = None,
        smooth: Sequence[Any] = (),
    ) -> SolverResult:
        """Minimise ``F + pen`` from ``W0`` (zeros by default).

        Parameters
        ----------
        datafit : initialized datafit with ``prox_solve``
            E.g. ``SquaredLoss().initialize(X, Y)``.
        penalty : penalty object
            The proximable term.
        W0 : ndarray of shape (n_features, n_tasks) or (n_blocks, n_features, n_tasks), optional
            Warm start.
        smooth : sequence, default=()
            Must be empty: ADMM takes no smooth penalty (use FISTA).

        Returns
        -------
        SolverResult

        Raises
        ------
        ValueError
            If an object lacks a required method, smooth penalties are given, or the
            parameters are invalid.
        """
        _validate_common("ADMM", self.max_iter, self.tol)
        if self.rho is not None and not (
            isinstance(self.rho, (int, float)) and np.isfinite(self.rho) and self.rho > 0
        ):
            raise ValueError(f"ADMM: rho must be a finite number > 0 or None; got {self.rho!r}.")
        if len(smooth) > 0:
            names = ", ".join(type(p).__name__ for p in smooth)
            raise ValueError(f"ADMM takes no smooth penalty (got {names}); use FISTA.")
        check_requirements("ADMM", self.required, {"datafit": [datafit], "penalty": [penalty]})
        obj = Objective(datafit, penalty, ())
        with blas_threads(obj.d):
            return self._run(obj, obj.start(W0))

    def _initial_rho(self, datafit: Any) -> float:
        if self.rho is not None:
            return float(self.rho)
        if hasattr(datafit, "hessian_diagonal"):
            # Features constant within a task give zero diagonal entries (half of them on
            # School's training splits): take the median of the informative ones.
            diag = np.asarray(datafit.hessian_diagonal(), dtype=float)
            positive = diag[diag > 0]
            scale = float(np.median(positive)) if positive.size else 0.0
        else:
            scale = float(datafit.lipschitz())
        return max(scale, 1e-12) / 10.0

    def _run(self, obj: Objective, Z: FArray) -> SolverResult:
        df, pen, nb = obj.datafit, obj.penalty, obj.n_blocks
        log = logging.getLogger("polytask.linear")
        history: list[tuple[int, float, float]] = []

        def certify(k: int, Zk: FArray) -> tuple[float, Any, float]:
            W = obj.weight(Zk)
            S = df.state(W)
            P, gap, crit = obj.certificate(Zk, S, obj.grad(W, S))
            if self.verbose:
                history.append((k, P, crit))
                log.info("ADMM iter %d: objective %.10g, stop_crit %.3e", k, P, crit)
            return P, gap, crit

        P, gap, crit = certify(0, Z)
        k = 0
        if crit > self.tol:
            rho = self._initial_rho(df)
            U = np.zeros_like(Z)
            for k in range(1, self.max_iter + 1):
                A = Z - U
                if nb == 1:
                    V = df.prox_solve(A, rho)
                else:
                    total = A.sum(axis=0)
                    S = df.prox_solve(total, rho / nb)
                    V = A + (S - total) / nb
                Z_old = Z
                Z = pen.prox(V + U, 1.0 / rho)
                U = U + V - Z
                if k % _CHECK_EVERY == 0 or k == self.max_iter:
                    P, gap, crit = certify(k, Z)
                    if crit <= self.tol:
                        break
                if k % 10 == 0:
                    factor = _rho_factor(V, Z, Z_old, U, rho)
                    rho, U = rho * factor, U / factor
        converged = crit <= self.tol
        if not converged:
            warn_not_converged("ADMM", k, crit, self.tol)
        return SolverResult(
            W=obj.weight(Z).copy(),
            V=Z,
            n_iter=k,
            objective=P,
            dual_gap=gap,
            stop_crit=crit,
            converged=converged,
            history=tuple(history) if self.verbose else None,
        )
