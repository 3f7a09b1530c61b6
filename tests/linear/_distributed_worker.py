"""Problems and the per-rank worker of ``test_distributed.py``.

The test module spawns :func:`run_spawned` once on two CPU processes (gloo); every rank
solves
every case on its own block of tasks, evaluates the sharded penalties on a fixed
matrix, triggers the input errors, and pickles what it saw to ``rank{r}.pkl``. The
single-process references are computed in the test process from the same builders.
"""

from __future__ import annotations

import datetime
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from polytask.linear import (
    L21,
    Dirty,
    L1Linf,
    Lasso,
    LogisticLoss,
    MeanRegularized,
    Ridge,
    SquaredLoss,
    TraceNorm,
    split_penalties,
)

WORLD = 2
N_TASKS = 5  # uneven: 3 tasks on rank 0, 2 on rank 1
D = 6
TOL = 1e-10
MAX_ITER = 500  # every case converges in < 100 iterations

# Penalty builders from alpha_max of the problem (so that the solutions are neither 0
# nor unpenalised): frac * alpha_max for the norms, fixed levels for the smooth ones.
PENALTIES: dict[str, Callable[[Any], Any]] = {
    "lasso": lambda g0: Lasso(0.3 * Lasso().alpha_max(g0)),
    "l21": lambda g0: L21(0.3 * L21().alpha_max(g0)),
    "l1linf": lambda g0: L1Linf(0.3 * L1Linf().alpha_max(g0)),
    "trace": lambda g0: TraceNorm(0.3 * TraceNorm().alpha_max(g0)),
    "meanreg": lambda g0: MeanRegularized(alpha=5.0, beta=0.5),
    "l21+ridge": lambda g0: [L21(0.2 * L21().alpha_max(g0)), Ridge(2.0)],
    "l1linf+meanreg": lambda g0: [L1Linf(0.2 * L1Linf().alpha_max(g0)), MeanRegularized(3.0)],
    "trace+ridge": lambda g0: [TraceNorm(0.2 * TraceNorm().alpha_max(g0)), Ridge(2.0)],
    "ridge+meanreg": lambda g0: [Ridge(1.0), MeanRegularized(3.0)],
}

# Every penalty on both designs; the combinations (whose communication does not depend
# on the design) on the shared one only, to keep the run short.
SINGLE = ("lasso", "l21", "l1linf", "trace", "meanreg")
CASES = [
    *(f"{design}/{name}" for design in ("shared", "per_task") for name in SINGLE),
    *(f"shared/{name}" for name in PENALTIES if name not in SINGLE),
    "shared/logistic-l21",
    "missing-mean-intercept/l1linf",
]


def _problem_data(design: str, seed: int = 0) -> tuple[Any, Any]:
    """Full data of all tasks: (X, Y) shared, or (Xs, ys) per task."""
    rng = np.random.default_rng(seed)
    W_true = rng.normal(size=(D, N_TASKS))
    W_true[4:] = 0.0
    W_true += 0.5 * rng.normal(size=(D, 1))  # related tasks
    if design == "per_task":
        Xs = [rng.normal(size=(n, D)) for n in (22, 30, 25, 27, 24)]
        ys = [x @ W_true[:, t] + 0.3 * rng.normal(size=len(x)) for t, x in enumerate(Xs)]
        return Xs, ys
    X = rng.normal(size=(40, D))
    Y = X @ W_true + 0.3 * rng.normal(size=(40, N_TASKS))
    if design == "logistic":
        return X, (Y > 0).astype(float)
    if design == "missing":
        Y[rng.random(Y.shape) < 0.2] = np.nan
    return X, Y


def build(case: str) -> tuple[Any, Any, Any, Any]:
    """``(X, Y, datafit factory, penalty)`` of a case, on all tasks."""
    design, name = case.split("/")
    if name == "logistic-l21":
        X, Y = _problem_data("logistic")
        make: Callable[[], Any] = LogisticLoss
        name = "l21"
    elif design == "missing-mean-intercept":
        X, Y = _problem_data("missing")

        def make() -> Any:
            return SquaredLoss(normalization="mean", fit_intercept=True)

    else:
        X, Y = _problem_data(design)
        make = SquaredLoss
    grad0 = make().initialize(X, Y).gradient(np.zeros((D, N_TASKS)))
    return X, Y, make, PENALTIES[name](grad0)


def local_part(X: Any, Y: Any, tasks: slice) -> tuple[Any, Any]:
    """This rank's data: its columns of a shared Y, or its tasks' (X_t, y_t)."""
    if isinstance(X, list):
        return X[tasks], Y[tasks]
    return X, Y[:, tasks]


def ops_matrices() -> tuple[np.ndarray, np.ndarray]:
    """A (7, N_TASKS) W with ties across ranks, a zero row and small rows, and a G."""
    rng = np.random.default_rng(3)
    W = rng.normal(size=(7, N_TASKS))
    W[0] = [2.0, -2.0, 1.0, 2.0, 0.5]  # active set {0, 1, 3} spans both ranks
    W[1] = 0.0
    W[2] = [0.05, -0.02, 0.01, 0.03, -0.04]  # inside every l1 ball used below
    W[3] = [1.0, 1.0, 1.0, 1.0, 1.0]
    G = rng.normal(size=(7, N_TASKS))
    return W, G


def _error(exc: BaseException) -> dict[str, str]:
    return {"error": type(exc).__name__, "message": str(exc)}


def _solve_cases(rank: int, mine: slice) -> dict[str, Any]:
    from polytask.linear.distributed import DistributedFISTA, fit_distributed

    out: dict[str, Any] = {}
    for case in CASES:
        X, Y, make, penalty = build(case)
        Xl, Yl = local_part(X, Y, mine)
        solver = DistributedFISTA(tol=TOL, max_iter=MAX_ITER)
        res = fit_distributed(Xl, Yl, penalty, datafit=make(), solver=solver)
        out[case] = res
    # The solver object on an initialised datafit, with the penalty split by hand.
    X, Y, make, penalty = build("shared/l21+ridge")
    prox, smooth = split_penalties(penalty)
    Xl, Yl = local_part(X, Y, mine)
    res = DistributedFISTA(tol=TOL, max_iter=MAX_ITER).solve(
        make().initialize(Xl, Yl), prox, smooth=smooth
    )
    out["solve/shared/l21+ridge"] = res
    return out


def _ops(rank: int, mine: slice) -> dict[str, Any]:
    from polytask.linear._comm import ball_threshold, simplex_threshold
    from polytask.linear._distributed_comm import TaskComm
    from polytask.linear._distributed_penalties import shard_penalty
    from polytask.linear.distributed import gather_tasks

    W, G = ops_matrices()
    comm = TaskComm(None, "test")
    comm.setup(mine.stop - mine.start, W.shape[0], 0.0)
    Wl, Gl = W[:, mine], G[:, mine]
    pens = {
        "lasso": Lasso(0.7),
        "l21": L21(1.5),
        "l1linf": L1Linf(1.5),
        "trace": TraceNorm(1.5),
        "ridge": Ridge(0.8),
        "meanreg": MeanRegularized(1.2, 0.3),
    }
    out: dict[str, Any] = {"gather": gather_tasks(Wl)}
    for name, pen in pens.items():
        part = shard_penalty(pen, comm, "test")
        rec: dict[str, Any] = {
            "value": part.value(Wl),
            "prox": part.prox(Wl, 0.9),
            "subdiff": part.subdiff_distance(Wl, Gl),
            "subdiff_zero": part.subdiff_distance(np.zeros_like(Wl), Gl),
        }
        if part.is_norm:
            rec["dual_norm"] = part.dual_norm(Gl)
        if part.smooth:
            rec["gradient"] = part.gradient(Wl)
        out[name] = rec
    mask = np.abs(G) > 0.4
    out["simplex"] = simplex_threshold(G[:, mine], 0.8, comm, mask=mask[:, mine])
    out["ball"] = ball_threshold(W[:, mine], 1.5, comm)
    return out


def _errors(rank: int, mine: slice) -> dict[str, Any]:
    from polytask.linear.distributed import fit_distributed

    X, Y, _, penalty = build("shared/l21")
    Xl, Yl = local_part(X, Y, mine)
    out: dict[str, Any] = {}
    bad_inputs: dict[str, tuple[Any, Any, Any]] = {
        "zero_tasks": (X, Y[:, :0] if rank == 1 else Y, penalty),
        "invalid_data": (Xl, np.where(rank == 1, np.inf, Yl), penalty),
        "settings": (Xl, Yl, L21(1.0 + rank)),
        "features": (Xl[:, : D - rank], Yl, penalty),
        "unsupported": (Xl, Yl, Dirty(1.0, 1.0)),
    }
    for name, (Xb, Yb, pen) in bad_inputs.items():
        try:
            fit_distributed(Xb, Yb, pen)
            out[name] = {"error": None, "message": ""}
        except (ValueError, TypeError) as exc:
            out[name] = _error(exc)
    return out


def run_spawned(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """Entry point of a spawned process: :func:`run` on one thread."""
    import torch

    torch.set_num_threads(1)
    run(rank, world_size, port, out_dir)


def run(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """Everything one rank does; results pickled to ``out_dir/rank{rank}.pkl``."""
    import torch.distributed as dist

    from polytask.linear.distributed import shard_tasks

    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        mine = shard_tasks(N_TASKS, world_size, rank)
        results = {
            "solves": _solve_cases(rank, mine),
            "ops": _ops(rank, mine),
            "errors": _errors(rank, mine),
        }
    finally:
        dist.destroy_process_group()
    with (Path(out_dir) / f"rank{rank}.pkl").open("wb") as fh:
        pickle.dump(results, fh)
