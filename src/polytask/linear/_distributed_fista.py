"""The FISTA iteration of :class:`polytask.linear.FISTA`, run in lockstep on task blocks.

Every rank holds the columns ``W[:, tasks of r]`` and a datafit initialised on its own
tasks. The datafit is a sum over tasks, so its state, gradient and Bregman divergence
are local and its value and dual value are sums of one scalar per rank; the penalties
communicate as described in :mod:`polytask.linear._distributed_penalties`. Every
decision (step enlargement, the sufficient-decrease test, restarts, stopping) is taken
from all-reduced numbers, which are identical on every rank, so the ranks stay in
lockstep and produce the iterates of the single-process solver up to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polytask._typing import FloatArray
from polytask.linear._distributed_comm import TaskComm
from polytask.linear._distributed_penalties import ShardedPenalty

__all__ = ["RunOutcome", "ShardedObjective", "run_sharded_fista"]

FArray = FloatArray


class ShardedObjective:
    """``F(W) + sum_k S_k(W) + pen(W)`` with ``W`` split by tasks over the ranks."""

    def __init__(
        self,
        comm: TaskComm,
        datafit: Any,
        penalty: ShardedPenalty,
        smooth: Sequence[ShardedPenalty],
    ) -> None:
        self.comm = comm
        self.datafit = datafit
        self.penalty = penalty
        self.smooth = tuple(smooth)
        self.d, self.T_local = int(datafit.n_features), int(datafit.n_tasks)
        zeros = np.zeros((self.d, self.T_local))
        self.grad0_norm = self.norm(self.grad(zeros, datafit.state(zeros))) or 1.0
        self.has_gap = not self.smooth and hasattr(datafit, "dual_value") and penalty.is_norm

    def norm(self, A: FArray) -> float:
        """Frobenius norm of the whole matrix whose task blocks the ranks hold."""
        return float(np.sqrt(self.comm.total(float(np.vdot(A, A)))))

    def lipschitz(self) -> float:
        """Lipschitz constant of the smooth part's gradient (over all tasks)."""
        L = float(self.comm.max([float(self.datafit.lipschitz())])[0])
        return L + sum(p.lipschitz(self.d, self.comm.n_tasks) for p in self.smooth)

    def grad(self, W: FArray, S: Any, datafit_grad: FArray | None = None) -> FArray:
        """Local block of the smooth part's gradient."""
        g = self.datafit.gradient(W, S) if datafit_grad is None else datafit_grad
        for p in self.smooth:
            g = g + p.gradient(W)
        return g

    def smooth_value(self, W: FArray, S: Any) -> float:
        """``F(W) + sum_k S_k(W)`` over all tasks."""
        value = self.comm.total(float(self.datafit.value(W, S)))
        return value + sum(p.value(W) for p in self.smooth)

    def certificate(self, W: FArray, S: Any, g: FArray) -> tuple[float, float | None, float]:
        """``(objective, duality gap or None, stop_crit)``, as in the single-process solver."""
        alpha = self.penalty.alpha
        if self.has_gap and alpha > 0:
            pen_value, dn = self.penalty.value_and_dual_norm(W, -g)
            scale = 1.0 if dn <= alpha else alpha / dn
            f, dual = self.comm.sum(
                [float(self.datafit.value(W, S)), float(self.datafit.dual_value(W, S, scale))]
            )
            P = float(f) + pen_value
            gap = P - float(dual)
            return P, gap, gap / max(abs(P), np.finfo(float).tiny)
        P = self.smooth_value(W, S) + self.penalty.value(W)
        return P, None, self.penalty.subdiff_distance(W, g) / self.grad0_norm


@dataclass(frozen=True)
class RunOutcome:
    """What one sharded run ends with (``W`` is this rank's block)."""

    W: FArray
    n_iter: int
    objective: float
    dual_gap: float | None
    stop_crit: float


def run_sharded_fista(
    obj: ShardedObjective,
    x: FArray,
    *,
    max_iter: int,
    tol: float,
    backtracking: bool,
    restart: str | None,
) -> RunOutcome:
    """Accelerated proximal gradient from the local block ``x`` (see ``FISTA``)."""
    df, pen, comm = obj.datafit, obj.penalty, obj.comm
    quad = bool(getattr(df, "quadratic", False))
    check_every = 1 if quad else 5
    L_bound = obj.lipschitz()
    L_bound = L_bound if L_bound > 0 else 1.0

    def check(W: FArray, S: Any, gdf: FArray | None) -> tuple[float, float | None, float]:
        return obj.certificate(W, S, obj.grad(W, S, gdf))

    Sx = df.state(x)
    gx = df.gradient(x, Sx) if quad else None
    P, gap, crit = check(x, Sx, gx)
    if crit <= tol:
        return RunOutcome(x, 0, P, gap, crit)
    x_prev, Sx_prev, gx_prev = x, Sx, gx
    t, L = 1.0, L_bound
    phi_x = P
    since_change = 0
    k = 0
    for k in range(1, max_iter + 1):
        L_try = L
        if backtracking and since_change >= 5 and L > 1e-12 * L_bound:
            L_try, since_change = 0.5 * L, 0
        while True:
            t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * (L_try / L) * t * t))
            beta = (t - 1.0) / t_next
            y: FArray
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
            g_y = obj.grad(y, Sy, gy if quad else df.gradient(y, Sy))
            z = pen.prox(y - g_y / L_try, 1.0 / L_try)
            Sz = df.state(z)
            gz = df.gradient(z, Sz) if quad else None
            dz = z - y
            # The Beck-Teboulle test of FISTA (the smooth penalties' part bounded by
            # <grad S(z) - grad S(y), z - y>, here <grad S(z - y), z - y> since the
            # supported ones have linear gradients), ||z - y||^2 and the restart test,
            # all in one sum over the ranks.
            lhs = float(df.bregman(y, Sy, z, Sz))
            for p in obj.smooth:
                lhs += float(np.vdot(p.gradient(dz), dz))
            lhs, dz2, turn = comm.sum([lhs, float(np.vdot(dz, dz)), float(np.vdot(-dz, z - x))])
            if not backtracking or L_try >= L_bound:
                break
            if lhs <= 0.5 * L_try * dz2 * (1.0 + 1e-10):
                break
            L_try = min(2.0 * L_try, L_bound)
            since_change = -20  # wait longer before the next enlargement
        since_change += 1
        if restart == "gradient":
            do_restart = turn > 0.0
        elif restart == "function":
            phi_z = obj.smooth_value(z, Sz) + pen.value(z)
            do_restart, phi_x = phi_z > phi_x, phi_z
        else:
            do_restart = False
        x_prev, Sx_prev, gx_prev = x, Sx, gx
        x, Sx, gx = z, Sz, gz
        t = 1.0 if do_restart else t_next
        L = L_try
        if k % check_every == 0 or k == max_iter:
            P, gap, crit = check(x, Sx, gx)
            if crit <= tol:
                break
    return RunOutcome(x, k, P, gap, crit)
