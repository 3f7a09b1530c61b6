"""School solver speed: polytask vs cvxpy + Clarabel on linear.md's three School objectives.

Full data (139 schools, 15,362 students, 28 uint8 features cast to float, MALSAR's bias
column kept, no intercept), loss ``sum_t 1/2 ||X_t w_t - y_t||^2``:

* L2,1, rho = 10: ``loss + 10 sum_j ||W_j,:||_2``;
* trace norm, rho = 10: ``loss + 10 ||W||_*``;
* mean-regularised, lambda = 1, mu = 0.1: ``loss + sum_t ||w_t - w_bar||^2 + 0.1 ||W||_F^2``.

For polytask the solver tolerance is swept (decades) and the loosest one whose solution is
within 1e-6 (relative) of the certified optimum P* of linear.md is timed: median of 3
fresh fits, wall and process CPU time. The objective is recomputed by this script's own
code from the returned weights. cvxpy (Clarabel) solves the same problems in the same run
(median of 3; one run for the trace-norm SDP, which takes minutes; ``--skip-cvxpy-trace``
skips it).

Run: ``python benchmarks/school_speed.py [--skip-cvxpy-trace] [--school PATH] [--no-write]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _school_common import Clock, machine_line, school_pairs, write_section

from polytask.linear import (
    ADMM,
    L21,
    L21Regressor,
    MeanRegularizedRegressor,
    SquaredLoss,
    TraceNorm,
    TraceNormRegressor,
)

Pairs = list[tuple[np.ndarray, np.ndarray]]

# Certified optima of shared/benchmarks/linear.md (cvxpy + Clarabel).
OPTIMA = {
    "L2,1, rho=10": 674696.2207250588,
    "trace norm, rho=10": 673051.1272110625,
    "mean-reg, lambda=1, mu=0.1": 691226.759017883,
}
GOALS = {"L2,1, rho=10": 0.1, "trace norm, rho=10": 1.0, "mean-reg, lambda=1, mu=0.1": 0.05}
REFERENCE = {  # linear.md: cvxpy time, plain FISTA / L-BFGS time
    "L2,1, rho=10": ("0.36 s", "3.4 s (plain FISTA, 31k iterations)"),
    "trace norm, rho=10": ("322 s (SDP)", "8.0 s (plain FISTA, 29k iterations)"),
    "mean-reg, lambda=1, mu=0.1": ("1.26 s", "2.4 s (L-BFGS)"),
}


def loss(pairs: Pairs, W: np.ndarray) -> float:
    return 0.5 * sum(float(np.sum((X @ W[:, t] - y) ** 2)) for t, (X, y) in enumerate(pairs))


def objective(name: str, pairs: Pairs, W: np.ndarray) -> float:
    """The user's objective at W (n_features, n_tasks), independent of polytask."""
    if name.startswith("L2,1"):
        return loss(pairs, W) + 10.0 * float(np.sqrt((W**2).sum(axis=1)).sum())
    if name.startswith("trace"):
        return loss(pairs, W) + 10.0 * float(np.linalg.svd(W, compute_uv=False).sum())
    centred = W - W.mean(axis=1, keepdims=True)
    return loss(pairs, W) + float(np.sum(centred**2)) + 0.1 * float(np.sum(W**2))


def make(name: str, tol: float) -> Any:
    kw: dict[str, Any] = {
        "normalization": "sum",
        "fit_intercept": False,
        "tol": tol,
        "max_iter": 100000,
    }
    if name.startswith("L2,1"):
        return L21Regressor(10.0, **kw)
    if name.startswith("trace"):
        return TraceNormRegressor(10.0, **kw)
    return MeanRegularizedRegressor(1.0, 0.1, **kw)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(median wall s, median CPU s, last result) of ``repeats`` calls."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        with Clock() as c:
            out = fn()
        walls.append(c.wall)
        cpus.append(c.cpu)
    return statistics.median(walls), statistics.median(cpus), out


def polytask_row(name: str, pairs: Pairs, repeats: int) -> dict[str, Any]:
    optimum = OPTIMA[name]
    chosen = None
    for tol in 10.0 ** -np.arange(1, 13):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = make(name, float(tol)).fit(pairs)
        rel = (objective(name, pairs, model.coef_.T) - optimum) / optimum
        if rel <= 1e-6:
            chosen = float(tol)
            break
    if chosen is None:
        return {"name": name, "wall": float("nan"), "cpu": float("nan"), "tol": None, "rel": rel}

    def fit() -> Any:
        return make(name, chosen).fit(pairs)

    wall, cpu, model = timed(fit, repeats)
    value = objective(name, pairs, model.coef_.T)
    first = first_within(name, pairs, chosen) if isinstance(model.solver_, ADMM) else None
    return {
        "first": first,
        "name": name,
        "wall": wall,
        "cpu": cpu,
        "tol": chosen,
        "objective": value,
        "rel": (value - optimum) / optimum,
        "iters": model.n_iter_,
        "solver": type(model.solver_).__name__,
    }


def first_within(name: str, pairs: Pairs, tol: float) -> int | None:
    """First certificate check (every 5 ADMM iterations) whose objective is within 1e-6.

    Tells how conservative the certified stopping rule is: the solver returns at
    ``n_iter_``, once its relative duality gap is below ``tol``.
    """
    datafit = SquaredLoss(normalization="sum", fit_intercept=False).initialize(
        [X for X, _ in pairs], [y for _, y in pairs]
    )
    pen = L21(10.0) if name.startswith("L2,1") else TraceNorm(10.0)
    res = ADMM(tol=tol, max_iter=100000, verbose=True).solve(datafit, pen)
    optimum = OPTIMA[name]
    for k, value, _ in res.history or ():
        if (value - optimum) / optimum <= 1e-6:
            return int(k)
    return None


def cvxpy_row(name: str, pairs: Pairs, repeats: int) -> dict[str, Any]:
    import cvxpy as cp

    d, T = pairs[0][0].shape[1], len(pairs)

    def solve() -> tuple[np.ndarray, float]:
        W = cp.Variable((d, T))
        fit = 0.5 * sum(cp.sum_squares(X @ W[:, t] - y) for t, (X, y) in enumerate(pairs))
        if name.startswith("L2,1"):
            pen = 10.0 * cp.sum(cp.norm(W, 2, axis=1))
        elif name.startswith("trace"):
            pen = 10.0 * cp.normNuc(W)
        else:
            mean = cp.sum(W, axis=1, keepdims=True) / T
            pen = cp.sum_squares(W - mean @ np.ones((1, T))) + 0.1 * cp.sum_squares(W)
        prob = cp.Problem(cp.Minimize(fit + pen))
        prob.solve(solver=cp.CLARABEL)
        return np.asarray(W.value), float(prob.solver_stats.solve_time or float("nan"))

    wall, cpu, (W, solver_time) = timed(solve, repeats)
    value = objective(name, pairs, W)
    return {
        "wall": wall,
        "cpu": cpu,
        "solver_time": solver_time,
        "objective": value,
        "rel": (value - OPTIMA[name]) / OPTIMA[name],
    }


def render(rows: list[dict[str, Any]], machine: str) -> str:
    cmd = " ".join(["python", "benchmarks/school_speed.py", *sys.argv[1:]])
    lines = [
        "## School solver speed: polytask vs cvxpy + Clarabel",
        "",
        "linear.md's School objectives: full data (139 schools, 15,362 students, 28 uint8 "
        "features cast to float incl. MALSAR's bias column), loss Σ_t ½‖X_t w_t − y_t‖², no "
        "intercept. *polytask*: the loosest solver tolerance (decades) whose solution is within "
        "1e-6 of P* (relative), median of 3 fresh fits; the objective is recomputed from the "
        "returned weights by the benchmark's own code. *cvxpy*: Clarabel, default settings, "
        "time of `Problem.solve` (compilation included; Clarabel's own solve time in "
        "brackets), median of 3 (1 run for the trace-norm SDP). P* and the reference times "
        "from `shared/benchmarks/linear.md`.",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {machine}. Times are wall / process CPU.",
        "",
        "*Iterations*: those run by the solver (it stops on its certified relative duality "
        "gap ≤ tol), and in brackets the first certificate check (every 5 iterations) at "
        "which the objective was already within 1e-6 of P*: the gap certificate is "
        "conservative on School's raw features.",
        "",
        "| objective | P* (linear.md) | polytask time (wall / CPU) | solver, iterations "
        "[within 1e-6 at], tol "
        "| polytask (P − P*)/P* | goal | cvxpy time (wall / CPU) [Clarabel] "
        "| cvxpy (P − P*)/P* | linear.md: cvxpy, plain first-order |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cv = r.get("cvxpy")
        cv_time = (
            f"{cv['wall']:.2f} s / {cv['cpu']:.2f} s [{cv['solver_time']:.2f} s]"
            if cv
            else "skipped"
        )
        cv_rel = f"{cv['rel']:.1e}" if cv else "—"
        ref = REFERENCE[r["name"]]
        lines.append(
            f"| {r['name']} | {OPTIMA[r['name']]:.10g} | {1e3 * r['wall']:.1f} ms / "
            f"{1e3 * r['cpu']:.1f} ms | {r.get('solver', '—')}, {r.get('iters', '—')}"
            f"{f' [{first}]' if (first := r.get('first')) else ''}, "
            f"{r['tol']:.0e} | {r['rel']:.1e} | ≤ {GOALS[r['name']]} s | {cv_time} | {cv_rel} "
            f"| {ref[0]}; {ref[1]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--school", default=None, help="path to school.mat")
    parser.add_argument("--skip-cvxpy-trace", action="store_true", help="skip the SDP")
    parser.add_argument("--skip-cvxpy", action="store_true", help="skip cvxpy entirely")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    machine = machine_line()
    print(machine, flush=True)
    pairs = school_pairs(args.school)
    rows = []
    for name in OPTIMA:
        row = polytask_row(name, pairs, repeats=3)
        print(f"polytask {name}: {row}", flush=True)
        skip = args.skip_cvxpy or (args.skip_cvxpy_trace and name.startswith("trace"))
        if not skip:
            row["cvxpy"] = cvxpy_row(name, pairs, repeats=1 if name.startswith("trace") else 3)
            print(f"cvxpy {name}: {row['cvxpy']}", flush=True)
        rows.append(row)
    text = render(rows, machine)
    print(text)
    if not args.no_write:
        write_section("school_speed", text)


if __name__ == "__main__":
    main()
