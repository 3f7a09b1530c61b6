"""School accuracy: every polytask linear formulation against STL under school.md's protocol.

Protocol (``shared/benchmarks/school.md``, after Argyriou, Evgeniou & Pontil 2008): for
each repetition ``rep`` (seed = ``rep``) every school's students are split 75/25 at
random; each method's hyperparameters are chosen by K-fold cross-validation *inside the
training students* (every fold holds about 1/K of every school; the score is the pooled
validation squared error); the chosen model is refitted on all training students and
scored on the pooled test students: explained variance ``1 - MSE / Var(y)`` and nMSE.

Coding: MALSAR's constant bias column is dropped and every model fits a per-school
intercept (``fit_intercept=True``), which is unpenalised. ``raw`` keeps the 27 uint8
attributes cast to float; ``std`` turns them into z-scores with the training students'
mean and standard deviation. The loss is ``sum_t 1/2 ||y_t - X_t w_t - b_t||^2``
(``normalization="sum"``, every student counts once, as in the pooled score).

Run: ``python benchmarks/school_accuracy.py [--quick] [--reps 10] [--folds 5]
[--methods NAME ...] [--school PATH] [--no-write]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _school_common import (
    Clock,
    Method,
    Split,
    cross_validate,
    fit_quiet,
    load,
    machine_line,
    per_task,
    scores,
    split,
    write_section,
)
from _school_reference import PooledRidge, check_hierarchical, check_pooled_ridge

from polytask.linear import (
    L21,
    ClusteredRegressor,
    Dirty,
    GraphRegularized,
    HierarchicalBayesRegressor,
    L1Linf,
    Lasso,
    MeanRegularized,
    MeanRegularizedRegressor,
    MultiTaskRegressor,
    Ridge,
    Robust,
    SparseLowRank,
    SquaredLoss,
    TaskDesign,
    TraceNorm,
    alpha_max,
)

KW: dict[str, Any] = {"normalization": "sum", "fit_intercept": True}
RIDGE = 20.0  # the ridge term added to the structured norms (0 or this, by CV)
REFERENCE = {
    "STL ridge (raw)": "34.8 ± 1.1",
    "pooled ridge (raw)": "33.9 ± 0.9",
    "mean-regularised (raw)": "37.5 ± 1.0",
}


HIERARCHIES: dict[str, dict[str, Any]] = {
    "all": {},
    "all-full": {"covariance": "full"},
    "VR-year-gender": {"covariance": "full", "random_features": [0, 1, 5, 7, 8]},
}


def knn_task_graph(s: Split, k: int) -> np.ndarray:
    """Symmetric kNN adjacency of the schools by their mean (coded) training features."""
    centres = np.stack([x.mean(axis=0) for x in per_task(s.X, s.task)])
    dist = ((centres[:, None] - centres[None]) ** 2).sum(axis=-1)
    np.fill_diagonal(dist, np.inf)
    adjacency = np.zeros_like(dist)
    rows = np.arange(dist.shape[0])[:, None]
    adjacency[rows, np.argsort(dist, axis=1)[:, :k]] = 1.0
    return np.maximum(adjacency, adjacency.T)


def top_level(s: Split, factory: Callable[[float], Any]) -> float:
    """polytask's closed-form smallest level giving W = 0 on the training students."""
    design = TaskDesign.per_task(per_task(s.X, s.task), per_task(s.y, s.task))
    return alpha_max(SquaredLoss(**KW).initialize(design), factory)


def with_ridge(pen: Any, r: float) -> Any:
    return [pen, Ridge(r)] if r > 0 else pen


def methods(s: Split, n_grid: int, tol: float, quick: bool) -> list[Method]:
    """Every method with its grid for one (coded) split (ordered for warm starts)."""
    kw = {**KW, "tol": tol, "max_iter": 5000}
    ridges = [0.0] if quick else [0.0, RIDGE]
    levels = np.logspace(0, -3, n_grid)  # times the closed-form top level

    def norm_method(name: str, factory: Callable[[float], Any], note: str) -> Method:
        top = top_level(s, factory)
        return Method(
            name,
            lambda p: MultiTaskRegressor(with_ridge(factory(p["lam"]), p["r"]), **kw),
            [{"r": r, "lam": top * f} for r in ridges for f in levels],
            note,
            chain=lambda p: p["r"],
        )

    out = [
        Method(
            "STL ridge",
            lambda p: MeanRegularizedRegressor(0.0, p["b"], **kw),
            [{"b": b} for b in np.logspace(-2, 4, n_grid)[::-1]],
            "one ridge per school: `MeanRegularizedRegressor(alpha=0, beta)` (exact solve)",
        ),
        Method(
            "pooled ridge",
            lambda p: PooledRidge(p["a"]),
            [{"a": a} for a in np.logspace(-1, 5, n_grid)[::-1]],
            "one ridge for all students, one intercept (scikit-learn's Ridge objective)",
        ),
        Method(
            "mean-regularised",
            lambda p: MeanRegularizedRegressor(p["a"], p["b"], **kw),
            [{"a": a, "b": b} for b in (1e-3, 1.0) for a in np.logspace(-1, 5, n_grid)[::-1]],
            "`MeanRegularizedRegressor(alpha, beta)`: alpha Σ_t‖w_t − w̄‖² + beta‖W‖², "
            "exact solve (Evgeniou & Pontil 2004)",
        ),
        norm_method("L2,1", L21, "`L21(lam)` (+ `Ridge`): joint feature selection"),
        norm_method("trace norm", TraceNorm, "`TraceNorm(lam)` (+ `Ridge`): low rank"),
        norm_method("L1/Linf", L1Linf, "`L1Linf(lam)` (+ `Ridge`)"),
        norm_method("lasso", Lasso, "`Lasso(lam)` (+ `Ridge`): independent sparse tasks"),
        norm_method(
            "dirty", lambda a: Dirty(a, 0.5 * a), "`Dirty(lam, lam/2)` (+ `Ridge`): L2,1 + l1 parts"
        ),
        norm_method(
            "sparse + low rank",
            lambda a: SparseLowRank(0.2 * a, a),
            "`SparseLowRank(lam/5, lam)` (+ `Ridge`): l1 + trace-norm parts",
        ),
        norm_method(
            "robust", lambda a: Robust(a, a), "`Robust(lam, lam)` (+ `Ridge`): row + column groups"
        ),
    ]
    out.append(
        Method(
            "hierarchical Bayes",
            lambda p: HierarchicalBayesRegressor(**HIERARCHIES[p["h"]]),
            [{"h": h} for h in HIERARCHIES],
            "`HierarchicalBayesRegressor`: random school effects around a common mean, "
            "variances by EM (empirical Bayes, no penalty level to tune); CV picks the "
            "structure: `all` (every attribute, diagonal covariance), `all-full` (full "
            "covariance), `VR-year-gender` (full covariance over the intercept, two VR "
            "band, two year and one gender column; the others shared)",
        )
    )
    graph = knn_task_graph(s, 10)
    out.append(
        Method(
            "graph (10-NN schools)",
            lambda p: MultiTaskRegressor(GraphRegularized(p["g"], graph), **kw),
            [{"g": g} for g in np.logspace(-1, 3, n_grid)[::-1]],
            "`GraphRegularized(g, A)`, A = symmetrised 10-nearest-neighbour graph of the "
            "schools' mean coded features (a fully connected graph with weights 1/T is "
            "mean-regularisation); the pooled mean direction is unpenalised",
        )
    )
    clusters = [2, 3] if quick else [2, 3, 4]
    strengths = [1e4, 1e2] if quick else [1e4, 1e3, 1e2]
    out.append(
        Method(
            "clustered",
            lambda p: ClusteredRegressor(p["a"], 10.0, p["k"], **kw),
            [{"k": k, "a": a} for k in clusters for a in strengths],
            "`ClusteredRegressor(alpha, beta=10, k)` (Zhou et al. 2011): alpha in 1e2..1e4 "
            "and k = 2..4 by CV (beta = 10 was best on a scan of 1, 10, 30)",
            chain=lambda p: p["k"],
        )
    )

    # Combinations: the mean pull (the best single prior here) plus a structured norm.
    def with_mean(factory: Callable[[float], Any]) -> Callable[[dict[str, Any]], Any]:
        def make(p: dict[str, Any]) -> Any:
            return MultiTaskRegressor([factory(p["lam"]), MeanRegularized(p["a"], 1e-3)], **kw)

        return make

    for name, factory in (("trace norm + mean-reg", TraceNorm), ("L2,1 + mean-reg", L21)):
        top = top_level(s, factory)
        out.append(
            Method(
                name,
                with_mean(factory),
                [{"a": a, "lam": top * f} for a in (30.0, 100.0, 300.0) for f in levels[2::2]],
                f"`[{factory.__name__}(lam), MeanRegularized(alpha, 1e-3)]`",
                chain=lambda p: p["a"],
            )
        )
    return out


NOTES = """\
Notes on the table (how the 38.5 % goal was pursued):

- *Reference figures reproduced*: STL ridge and pooled ridge on the raw coding match
  school.md within 0.15 point. Mean-regularisation on the raw coding lands 0.4 below the
  reference: its CV curve is bimodal there (alpha ≈ 30, or alpha ≥ 1e4, i.e. common slopes
  with free school intercepts, because school-level columns such as %FSM are on a 0-100
  scale and so are barely pulled), and which mode CV picks moves the score; keeping the
  bias column as a penalised weight instead of a free intercept gave 37.26 ± 1.06 in a
  separate check. z-scoring the attributes (training statistics) makes the pull act on
  every attribute alike and gives 37.6; it hurts STL ridge (rare ethnic-group dummies
  get inflated), so both codings are reported.
- *Ceiling of this model class*: the Gaussian hierarchical model fitted by EM (row
  "hierarchical Bayes", nothing but its structure chosen by CV) is what
  mean-regularisation approximates with hand-tuned variances. Separate
  exploratory runs (same splits, NumPy, not part of this script) found no linear
  per-school formulation above ~37.8 %: mean-regularisation with the best *test*-chosen
  alpha 37.73; a full (instead of diagonal) random-effect covariance 37.61;
  per-school noise variances 37.74; per-group (year / school-level / student-level)
  pull strengths: no gain; cross-level interactions (student attributes × %FSM, %VR1)
  36.2; clustered MTL with beta in {1, 10, 30} and k = 2..4 below mean-regularisation.
- So the 38.5 % goal is **not met** by any linear formulation tried; the combinations
  (trace norm or L2,1 on top of the mean pull, a kNN school graph) tie with plain
  mean-regularisation within 0.1 point.
- *Beyond linear*: `benchmarks/school_probes.py` (next section) adds pooled non-linear
  parts in front of mean-regularisation; with optimistic fixed settings they gain +0.1
  (VR band × splines of %FSM/%VR1) and +0.2 point (gradient boosting first), not the
  ~0.9 point the goal needs.
- *Why the goal looks out of reach*: `benchmarks/school_ceiling.py` (section after the
  probes) measures the noise floor (the Bayes-optimal predictor explains about 41.5 %),
  the explained variance of model classes with their parameters known (school
  intercepts + pooled attributes: 38.1 %) and what estimating them costs (EM
  hierarchical models with random intercepts, VR band, year and gender effects, and one
  noise variance per VR band, stop at 37.9 %).
"""
RAW_METHODS = ("STL ridge", "pooled ridge", "mean-regularised")
NOT_POLYTASK = ("pooled ridge",)


def _short(value: Any) -> Any:
    """A grid value as the table shows it: numbers to 3 significant digits."""
    return float(f"{value:.3g}") if isinstance(value, int | float) else value


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def run_rep(rep: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every method on repetition ``rep``: one record per (method, coding)."""
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        data = load(args.school)
        codings = {"std": split(data, rep, "standardized"), "raw": split(data, rep, "raw")}
        check_pooled_ridge(codings["raw"])
        if rep == 0:
            check_hierarchical(codings["std"])
        records = []
        for coding, s in codings.items():
            for m in methods(s, args.n_grid, args.tol, args.quick):
                if args.methods and m.name not in args.methods:
                    continue
                if coding == "raw" and m.name not in RAW_METHODS:
                    continue
                with Clock() as clock:
                    best, _ = cross_validate(m, s.X, s.y, s.task, args.folds, seed=rep)
                    est = fit_quiet(m.make(best), s.X, s.y, s.task)
                ev, nm = scores(s.y_test, est.predict(s.X_test, task=s.task_test), s.task_test)
                rec: dict[str, Any] = {
                    "method": m.name,
                    "coding": coding,
                    "note": m.note,
                    "ev": ev,
                    "nmse": nm,
                    "cpu": clock.cpu,
                    "wall": clock.wall,
                    "best": tuple(sorted((k, _short(v)) for k, v in best.items())),
                }
                records.append(rec)
                print(
                    f"rep {rep} {m.name:>30} [{coding}] EV {100 * ev:6.2f}  nMSE {nm:.4f}  "
                    f"best {dict(rec['best'])}  cpu {clock.cpu:6.1f} s  wall {clock.wall:6.1f} s",
                    flush=True,
                )
    return records


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], float]:
    start = time.perf_counter()
    reps = range(args.reps)
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            per_rep = list(pool.map(run_rep, reps, [args] * args.reps))
    else:
        per_rep = [run_rep(rep, args) for rep in reps]
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for records in per_rep:
        for rec in records:
            grouped.setdefault((rec["method"], rec["coding"]), []).append(rec)
    rows = []
    for (name, coding), recs in grouped.items():
        evs = [r["ev"] for r in recs]
        nms = [r["nmse"] for r in recs]
        mode, count = Counter(r["best"] for r in recs).most_common(1)[0]
        rows.append(
            {
                "method": f"{name} ({coding})",
                "ev": (100 * np.mean(evs), 100 * np.std(evs)),
                "nmse": (np.mean(nms), np.std(nms)),
                "cpu": float(np.mean([r["cpu"] for r in recs])),
                "wall": float(np.mean([r["wall"] for r in recs])),
                "best": f"{', '.join(f'{k}={_shown(v)}' for k, v in mode)} ({count}/{len(recs)})",
                "note": recs[0]["note"],
            }
        )
    return rows, time.perf_counter() - start


def render(rows: list[dict[str, Any]], args: argparse.Namespace, machine: str, total: float) -> str:
    stl = next((r["ev"][0] for r in rows if r["method"] == "STL ridge (raw)"), float("nan"))
    ours = [r for r in rows if not r["method"].startswith(NOT_POLYTASK)]
    best = max(ours or rows, key=lambda r: r["ev"][0])
    cmd = " ".join(["python", "benchmarks/school_accuracy.py", *sys.argv[1:]])
    lines = [
        "## School: explained variance of every linear formulation",
        "",
        "Protocol of `shared/benchmarks/school.md`: "
        f"{args.reps} repetitions (seed = repetition), 75/25 split of every school's "
        f"students, hyperparameters by {args.folds}-fold cross-validation inside the training "
        "students of every school (pooled validation squared error), refit on all training "
        "students; explained variance = 1 − MSE/Var(y) and nMSE (MALSAR's: per-school "
        "MSE/Var(y_t), weighted by school size) over the pooled test students, mean ± std "
        "over repetitions. Every model has an unpenalised per-school intercept; the loss is "
        "the sum of squared errors over students. `raw`: the 27 uint8 attributes cast to "
        "float (MALSAR's constant bias column dropped); `std`: z-scored with the training "
        f"students' statistics. Norm penalties: {args.n_grid} levels from the closed-form "
        "top level (`alpha_max`) down to 1e-3 of it, with and without a `Ridge(20)` term "
        f"(20 = twice the STL ridge optimum); solver tolerance {args.tol:g} on polytask's "
        "certified criterion; BLAS pinned to "
        f"{args.blas_threads} thread(s) (27 × 27 blocks), {args.jobs} repetitions in "
        "parallel. *Chosen most often*: the grid point CV picked in most repetitions. "
        "Times: CV + refit of one repetition, process CPU.",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {machine}; whole run {total / 60:.1f} min wall, "
        f"{sum(r['cpu'] for r in rows) * args.reps / 60:.1f} min CPU.",
        "",
        "| method | explained variance (%) | nMSE | Δ vs STL ridge (raw) | chosen most often "
        "| CPU s / rep | formulation |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -r["ev"][0]):
        ref = REFERENCE.get(r["method"])
        ref_txt = f" (reference {ref})" if ref else ""
        lines.append(
            f"| {r['method']} | {r['ev'][0]:.2f} ± {r['ev'][1]:.2f}{ref_txt} | "
            f"{r['nmse'][0]:.4f} ± {r['nmse'][1]:.4f} | {r['ev'][0] - stl:+.2f} | {r['best']} | "
            f"{r['cpu']:.1f} | {r['note']} |"
        )
    lines += [
        "",
        f"Best polytask formulation: **{best['method']}, {best['ev'][0]:.2f} ± "
        f"{best['ev'][1]:.2f} %** (goal of school.md: ≥ 38.5 %: "
        f"{'met' if best['ev'][0] >= 38.5 else 'not met'}). "
        "Reference figures: `shared/benchmarks/school.md` "
        "(scikit-learn/NumPy, same protocol, CV over 13 λ)."
        + (" *Smoke run (--quick): not the benchmark's figures.*" if args.quick else ""),
    ]
    if not args.quick and args.reps == 10 and not args.methods:
        lines += ["", NOTES]  # written for the full run's figures
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repetitions, coarse grids")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 10)")
    parser.add_argument("--folds", type=int, default=5, help="CV folds inside training")
    parser.add_argument("--tol", type=float, default=1e-4, help="solver tolerance")
    parser.add_argument("--methods", nargs="*", default=None, help="only these methods")
    parser.add_argument("--school", default=None, help="path to school.mat")
    parser.add_argument(
        "--blas-threads", type=int, default=1, help="BLAS threads (the blocks are 27 x 27)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="repetitions run in parallel")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    if args.reps is None:
        args.reps = 2 if args.quick else 10
    args.n_grid = 7 if args.quick else 13
    machine = machine_line()
    print(machine, flush=True)
    rows, total = run(args)
    text = render(rows, args, machine, total)
    print(text)
    if not args.no_write:
        write_section("school_accuracy", text)


if __name__ == "__main__":
    main()
