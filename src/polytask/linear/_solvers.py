"""Accelerated proximal gradient (FISTA) with backtracking, adaptive restart and a
certified stopping rule.

The objective is ``F(W) + sum_k S_k(W) + pen(V)``: a datafit ``F``, smooth penalties
``S_k`` and one proximable penalty ``pen`` whose variable ``V`` is ``W`` itself or, for a
composite penalty (``n_blocks = 2``), a pair of blocks with ``W = V.sum(0)``; the smooth
part then has the same gradient in both blocks and a Lipschitz constant twice as large.

Cost per iteration: one product with the data (``datafit.state``). Solvers never
recompute what is linear in ``W``: the state of the extrapolated point is the same
combination of the last two states, and for a quadratic datafit so is its gradient.

The iteration takes a communicator (:mod:`polytask.linear._comm`): every scalar that
decides a step (the sufficient-decrease test, the restart test) is reduced through it
in one call, and the objective it builds reduces the values and certificates. In one
process the reductions are the identity; :mod:`polytask.linear.distributed` runs the same
iteration in lockstep on task blocks, with ``torch.distributed`` reductions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from polytask.linear._comm import Comm, LocalComm
from polytask.linear._objective import (
    Objective,
    SolverResult,
    blas_threads,
    check_requirements,
    warn_not_converged,
)

__all__ = ["FISTA"]

FArray = NDArray[np.float64]


def _validate_common(name: str, max_iter: object, tol: object) -> None:
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"{name}: max_iter must be an integer >= 1; got {max_iter!r}.")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
        raise ValueError(f"{name}: tol must be a number >= 0; got {tol!r}.")


@dataclass
class FISTA:
    r"""Accelerated proximal gradient with backtracking and adaptive restart.

    Minimises ``F(W) + sum_k S_k(W) + pen(V)`` (see the module docstring).

    * **Step.** Starts from the global Lipschitz bound of the smooth part; with
      ``backtracking=True`` the step is enlarged every few iterations (the Lipschitz
      estimate ``L`` is divided by 2) and the sufficient-decrease test of Beck & Teboulle
      undoes a step that was too long. The momentum follows the variant of Scheinberg,
      Goldfarb & Bai (2014), which stays accelerated when ``L`` goes down as well as up.
      The test uses the datafit's Bregman divergence (``datafit.bregman``), computed
      from the states without cancellation, so it stays reliable next to the optimum
      and costs no extra product with the data.
    * **Restart.** ``"gradient"`` (default) or ``"function"`` adaptive restart of
      O'Donoghue & Candès (2015): the momentum is reset when the step goes against the
      last gradient-mapping direction, or when the objective goes up.
    * **Stopping.** On a certified measure, never on the change of the objective: the
      relative duality gap ``(P - D) / P`` when the penalty is a norm (``is_norm`` with
      ``dual_norm``, or a composite penalty with ``weight_dual_norm``), no smooth penalty
      is present and the datafit has ``dual_value``; the dual point is the datafit's
      natural one rescaled by ``s = min(1, alpha / dual_norm(-grad F))``. Otherwise the
      distance of ``-grad`` to the subdifferential (``subdiff_distance``) relative to
      the gradient norm at ``W = 0``. The certificate is evaluated at every iteration for
      a quadratic datafit (its gradient at the iterate is known for free) and every 5
      iterations otherwise.

    A solver that hits ``max_iter`` issues a :class:`~sklearn.exceptions.ConvergenceWarning`
    stating the criterion reached.

    **Badly conditioned data.** FISTA needs ``O(sqrt(L / mu))`` iterations. A variable
    metric would cure poorly scaled features, but it must keep the prox exact: a
    per-feature scaling shared by all tasks does so for row-separable penalties (lasso,
    L2,1, L1/Linf), nothing but a scalar does for the trace norm, and per-task steps
    break every penalty that couples tasks. Rather than a metric that helps some
    penalties, the curvature is taken in exactly by other solvers: :class:`ADMM` for the
    squared loss (its W-step is one linear system per task; School: ~100 iterations
    where FISTA needs ~30,000) and :class:`ProxNewton` for the logistic loss (a dozen
    Newton steps where FISTA needs thousands). FISTA remains the method for large
    problems, where one product with the data is all one can afford per step.

    Parameters
    ----------
    max_iter : int, default=1000
        Maximum number of iterations.
    tol : float, default=1e-6
        Tolerance on the stopping criterion (see above).
    backtracking : bool, default=True
        Adapt the step size; if False the step is ``1 / L`` with ``L`` the global bound.
    restart : {"gradient", "function"} or None, default="gradient"
        Adaptive restart scheme; None keeps the plain FISTA momentum.
    verbose : bool, default=False
        Log progress on the ``polytask.linear`` logger (INFO) and record
        ``SolverResult.history``.

    Attributes
    ----------
    required : dict
        Methods the solver needs from each object, checked by :meth:`solve`.

    References
    ----------
    A. Beck and M. Teboulle. A fast iterative shrinkage-thresholding algorithm for
    linear inverse problems. SIAM J. Imaging Sciences 2(1), 2009.
    K. Scheinberg, D. Goldfarb and X. Bai. Fast first-order methods for composite convex
    optimization with backtracking. Foundations of Computational Mathematics 14, 2014.
    B. O'Donoghue and E. Candès. Adaptive restart for accelerated gradient schemes.
    Foundations of Computational Mathematics 15, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import FISTA, L21, SquaredLoss
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 8))
    >>> Y = X[:, :2] @ rng.normal(size=(2, 3)) + 0.01 * rng.normal(size=(50, 3))
    >>> datafit = SquaredLoss(normalization="mean").initialize(X, Y)
    >>> res = FISTA(tol=1e-8).solve(datafit, L21(alpha=0.05))
    >>> res.converged, res.W.shape, int(np.count_nonzero(np.abs(res.W).sum(1)))
    (True, (8, 3), 2)
    """

    max_iter: int = 1000
    tol: float = 1e-6
    backtracking: bool = True
    restart: Literal["gradient", "function"] | None = "gradient"
    verbose: bool = False

    required: ClassVar[dict[str, tuple[str, ...]]] = {
        "datafit": ("state", "value", "gradient", "lipschitz", "bregman"),
        "penalty": ("value", "prox", "subdiff_distance"),
        "smooth penalty": ("value", "gradient", "lipschitz"),
    }

    def _validate(self) -> None:
        _validate_common("FISTA", self.max_iter, self.tol)
        if self.restart not in ("gradient", "function", None):
            raise ValueError(
                f"FISTA: restart must be 'gradient', 'function' or None; got {self.restart!r}."
            )

    def solve(
        self,
        datafit: Any,
        penalty: Any,
        W0: FArray | None = None,
        smooth: Sequence[Any] = (),
        comm: Comm | None = None,
    ) -> SolverResult:
        """Minimise the objective from ``W0`` (zeros by default).

        Parameters
        ----------
        datafit : initialized datafit
            E.g. ``SquaredLoss().initialize(X, Y)``.
        penalty : penalty object
            The proximable term (``ZeroPenalty()`` for none).
        W0 : ndarray of shape (n_features, n_tasks) or (n_blocks, n_features, n_tasks), optional
            Warm start.
        smooth : sequence of penalty objects, default=()
            Smooth penalties added to the datafit.
        comm : communicator, optional
            How the tasks are shared between processes (see
            :mod:`polytask.linear._comm`); None: every task is in this process. The
            sharded solver :class:`~polytask.linear.distributed.DistributedFISTA` passes
            its ``torch.distributed`` one.

        Returns
        -------
        SolverResult

        Raises
        ------
        ValueError
            If an object lacks a required method, the datafit is not initialized, or
            ``W0`` has the wrong shape.
        """
        self._validate()
        check_requirements(
            "FISTA",
            self.required,
            {"datafit": [datafit], "penalty": [penalty], "smooth penalty": smooth},
        )
        reduce = LocalComm() if comm is None else comm
        obj = reduce.objective(datafit, penalty, smooth)
        with blas_threads(obj.d):
            return _Run(self, obj, reduce).run(obj.start(W0))


class _Run:
    """One FISTA run (keeps the iteration state out of the solver object).

    ``obj`` is built by ``comm.objective``: its values and certificates are global,
    while states, gradients and ``datafit.bregman`` are this process's part, reduced
    here together with the other per-step scalars. ``name`` is the solver named in
    warnings.
    """

    def __init__(self, solver: FISTA, obj: Objective, comm: Comm, name: str = "FISTA") -> None:
        self.s = solver
        self.obj = obj
        self.comm = comm
        self.name = name
        self.quad = bool(getattr(obj.datafit, "quadratic", False))
        self.check_every = 1 if self.quad else 5
        L = obj.lipschitz()
        self.L_bound = L if L > 0 else 1.0
        self.history: list[tuple[int, float, float]] = []
        self.log = logging.getLogger("polytask.linear")

    def _check(self, k: int, V: FArray, S: Any, gdf: FArray | None) -> tuple[float, Any, float]:
        obj = self.obj
        W = obj.weight(V)
        g = obj.grad(W, S, gdf)
        P, gap, crit = obj.certificate(V, S, g)
        if self.s.verbose:
            self.history.append((k, P, crit))
            self.log.info("%s iter %d: objective %.10g, stop_crit %.3e", self.name, k, P, crit)
        return P, gap, crit

    def _result(self, V: FArray, k: int, P: float, gap: Any, crit: float) -> SolverResult:
        converged = crit <= self.s.tol
        if not converged:
            warn_not_converged(self.name, k, crit, self.s.tol)
        return SolverResult(
            W=self.obj.weight(V).copy(),
            V=V,
            n_iter=k,
            objective=P,
            dual_gap=gap,
            stop_crit=crit,
            converged=converged,
            history=tuple(self.history) if self.s.verbose else None,
        )

    def run(self, x: FArray) -> SolverResult:
        obj, df, pen, s = self.obj, self.obj.datafit, self.obj.penalty, self.s
        quad = self.quad
        Sx = obj.state(x)
        gx = df.gradient(obj.weight(x), Sx) if quad else None
        P, gap, crit = self._check(0, x, Sx, gx)
        if crit <= s.tol:
            return self._result(x, 0, P, gap, crit)
        x_prev, Sx_prev, gx_prev = x, Sx, gx
        t, L = 1.0, self.L_bound
        phi_x = P
        since_change = 0
        k = 0
        for k in range(1, s.max_iter + 1):
            L_try = L
            if s.backtracking and since_change >= 5 and L > 1e-12 * self.L_bound:
                L_try, since_change = 0.5 * L, 0
            while True:
                t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * (L_try / L) * t * t))
                beta = (t - 1.0) / t_next
                if beta > 0:
                    y = x + beta * (x - x_prev)
                    Sy = Sx + beta * (Sx - Sx_prev)
                    if not quad:
                        gy = None
                    elif gx is Sx:  # the state is the gradient (Gram form)
                        gy = Sy
                    else:
                        gy = gx + beta * (gx - gx_prev)  # type: ignore[operator]
                else:
                    y, Sy, gy = x, Sx, gx
                Wy = obj.weight(y)
                gdf_y = gy if quad else df.gradient(Wy, Sy)
                g_y = obj.grad(Wy, Sy, gdf_y)
                z = pen.prox(y - obj.block_grad(g_y) / L_try, 1.0 / L_try)
                Wz = obj.weight(z)
                Sz = obj.state(z)
                gz = df.gradient(Wz, Sz) if quad else None
                test = s.backtracking and L_try < self.L_bound
                lhs, dz2, turn = self._step_scalars(test, x, y, Wy, Sy, z, Wz, Sz)
                if not test or lhs <= 0.5 * L_try * dz2 * (1.0 + 1e-10):
                    break
                L_try = min(2.0 * L_try, self.L_bound)
                since_change = -20  # wait longer before the next enlargement
            since_change += 1
            if s.restart == "gradient":
                restart = turn > 0.0
            elif s.restart == "function":
                phi_z = obj.smooth_value(Wz, Sz) + float(pen.value(z))
                restart, phi_x = phi_z > phi_x, phi_z
            else:
                restart = False
            x_prev, Sx_prev, gx_prev = x, Sx, gx
            x, Sx, gx = z, Sz, gz
            t = 1.0 if restart else t_next
            L = L_try
            if k % self.check_every == 0 or k == s.max_iter:
                P, gap, crit = self._check(k, x, Sx, gx)
                if crit <= s.tol:
                    break
        return self._result(x, k, P, gap, crit)

    def _step_scalars(
        self,
        test: bool,
        x: FArray,
        y: FArray,
        Wy: FArray,
        Sy: Any,
        z: FArray,
        Wz: FArray,
        Sz: Any,
    ) -> tuple[float, float, float]:
        """``(lhs, ||z - y||^2, turn)`` over all tasks, in one reduction.

        With ``test``, the two sides of the Beck-Teboulle test
        ``f(z) <= f(y) + <grad f(y), z - y> + L/2 ||z - y||^2``: ``lhs`` is the datafit's
        Bregman divergence (computed without cancellation) plus the smooth penalties'
        part, bounded by ``<grad S(z) - grad S(y), z - y>``, which is never below their
        Bregman divergence; otherwise both are 0. ``turn = <y - z, z - x>`` is positive
        when the step goes against the last one (gradient restart).
        """
        obj = self.obj
        dz = z - y
        lhs = dz2 = turn = 0.0
        if test:
            dW = obj.weight(dz)
            lhs = float(obj.datafit.bregman(Wy, Sy, Wz, Sz))
            for p in obj.smooth:
                lhs += float(np.vdot(p.gradient(Wz) - p.gradient(Wy), dW))
            dz2 = float(np.vdot(dz, dz))
        if self.s.restart == "gradient":
            turn = float(np.vdot(dz, x - z))
        elif not test:
            return lhs, dz2, turn
        lhs, dz2, turn = self.comm.totals(lhs, dz2, turn)
        return lhs, dz2, turn
