"""Time to a relative duality gap on the L2,1 problem of ``shared/benchmarks/linear.md``:
polytask against scikit-learn, celer and skglm.

Protocol (linear.md):

* one gap function, :func:`relative_gap`, judges every solver's returned ``W``
  (primal ``1/(2n) ||Y - XW||_F^2 + lam sum_j ||W_j||``, dual point the residual rescaled
  into the dual ball), so that every library's own ``tol`` is just a knob;
* for each solver the knob is swept in half decades (from ``--start-tol``, looser while
  the target is still reached, tighter until it is) and the loosest setting whose ``W``
  reaches the target gap is timed: median of 3 fresh fits (``--large``: single fits);
  ``fit_intercept=False``; a sweep that stops improving is reported as stalled;
* one-off costs (skglm's numba JIT) are measured on a small problem first and reported
  apart;
* clock: process CPU time (``time.process_time``) with BLAS pinned to one thread by
  threadpoolctl (``--blas-threads``), so that other jobs on a shared machine matter
  less; wall times are printed too.

Cases: the default one (n=2000, d=500, T=50, 50 active rows, noise 0.1,
lam = 0.1 lam_max) and ``--large`` (n=d=5000, T=100, 500 active rows). Peers: scikit-learn
``MultiTaskLasso``; celer through ``celer.homotopy.mtl_path`` (its estimator's ``fit``
fails on scikit-learn >= 1.6); skglm ``MultiTaskLasso``. A missing peer is reported as
such. The benchmark-only peers are the ``bench`` extra: ``pip install -e ".[bench]"``.

The table goes to ``docs/benchmarks.md`` between ``<!-- l21-speed:start -->`` and
``<!-- l21-speed:end -->`` (the default and the large case in sub-blocks of their own,
so that one run does not erase the other); ``--no-write`` only prints.

Run::

    python benchmarks/linear_l21_speed.py            # default case, writes the table
    python benchmarks/linear_l21_speed.py --large    # n = d = 5000, T = 100
    python benchmarks/linear_l21_speed.py --school PATH/school.mat --no-write
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import MultiTaskLasso
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _school_common import Clock, machine_line, write_section

from polytask.linear import (
    FISTA,
    L21Regressor,
    MeanRegularizedRegressor,
    TraceNormRegressor,
)

TARGETS = (1e-4, 1e-6, 1e-8)
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
FArray = np.ndarray
Fit = Callable[[float], FArray]


def make_problem(
    n: int = 2000, d: int = 500, T: int = 50, n_active: int = 50, seed: int = 0
) -> tuple[FArray, FArray, float]:
    """linear.md's L2,1 problem (Gaussian X, noise 0.1) and its lambda = 0.1 lambda_max."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = np.zeros((d, T))
    W[rng.choice(d, n_active, replace=False)] = rng.standard_normal((n_active, T))
    Y = X @ W + 0.1 * rng.standard_normal((n, T))
    lam_max = np.sqrt(((X.T @ Y) ** 2).sum(axis=1)).max() / n
    return X, Y, 0.1 * lam_max


def relative_gap(X: FArray, Y: FArray, lam: float, W: FArray) -> float:
    """linear.md's relative duality gap of W (n_features, n_tasks), independent code."""
    n = X.shape[0]
    R = Y - X @ W
    primal = 0.5 * np.sum(R**2) / n + lam * np.sqrt((W**2).sum(axis=1)).sum()
    scale = min(1.0, n * lam / np.sqrt(((X.T @ R) ** 2).sum(axis=1)).max())
    theta = scale * R
    dual = (np.sum(theta * Y) - 0.5 * np.sum(theta**2)) / n
    return (primal - dual) / primal


# ------------------------------------------------------------------ the solvers
@dataclass
class Solver:
    """One solver: ``make(X, Y, lam)`` returns ``fit(tol) -> W (d, T)``, or a reason."""

    name: str
    make: Callable[[FArray, FArray, float, dict[str, Any]], Fit]
    info: dict[str, Any] = field(default_factory=dict)


def _quiet(fn: Callable[[], FArray]) -> FArray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn()


def _polytask(solver: Any = None) -> Callable[..., Fit]:
    def make(X: FArray, Y: FArray, lam: float, info: dict[str, Any]) -> Fit:
        def fit(tol: float) -> FArray:
            model = L21Regressor(
                alpha=lam, fit_intercept=False, tol=tol, max_iter=100000, solver=solver
            )
            _quiet(lambda: model.fit(X, Y))
            info["detail"] = type(model.solver_).__name__
            return model.coef_.T

        return fit

    return make


def _sklearn(X: FArray, Y: FArray, lam: float, info: dict[str, Any]) -> Fit:
    def fit(tol: float) -> FArray:
        model = MultiTaskLasso(alpha=lam, fit_intercept=False, tol=tol, max_iter=100000)
        return _quiet(lambda: model.fit(X, Y).coef_.T)

    return fit


def _celer(X: FArray, Y: FArray, lam: float, info: dict[str, Any]) -> Fit:
    from celer.homotopy import mtl_path

    def fit(tol: float) -> FArray:
        _, coefs, _ = mtl_path(X, Y, alphas=[lam], tol=tol, max_iter=1000)
        return np.asarray(coefs[:, :, 0]).T  # coefs: (n_tasks, n_features, n_alphas)

    return fit


def _skglm(X: FArray, Y: FArray, lam: float, info: dict[str, Any]) -> Fit:
    from skglm import MultiTaskLasso as SkglmMTL

    def fit(tol: float) -> FArray:
        model = SkglmMTL(alpha=lam, fit_intercept=False, tol=tol, max_iter=1000)
        return _quiet(lambda: model.fit(X, Y).coef_.T)

    return fit


def solvers() -> list[Solver]:
    return [
        Solver("polytask `L21Regressor` (automatic solver)", _polytask()),
        Solver("polytask, plain FISTA on the full Gram (the former default)", _polytask(FISTA())),
        Solver("scikit-learn `MultiTaskLasso`", _sklearn),
        Solver("celer (`celer.homotopy.mtl_path`)", _celer),
        Solver("skglm `MultiTaskLasso`", _skglm),
    ]


# ------------------------------------------------------------------ the sweep
@dataclass
class Reached:
    cpu: float = float("nan")
    wall: float = float("nan")
    tol: float = float("nan")
    gap: float = float("nan")
    note: str = ""


class Sweep:
    """Fits of one solver over tolerances (loose to tight), each tolerance fitted and
    judged once, more timed fits added only for the tolerance that is reported."""

    def __init__(
        self, fit: Fit, gap: Callable[[FArray], float], tols: FArray, start: int, args: Any
    ) -> None:
        self.fit, self.gap, self.tols, self.args = fit, gap, tols, args
        self.seen: dict[float, tuple[float, list[float], list[float]]] = {}
        self.start = start

    def _run(self, tol: float) -> tuple[float, list[float], list[float]]:
        if tol not in self.seen:
            with Clock() as c:
                W = self.fit(tol)
            self.seen[tol] = (self.gap(W), [c.cpu], [c.wall])
        return self.seen[tol]

    def _timed(self, i: int) -> Reached:
        """Median times at ``tols[i]`` (which reaches the target) after enough fits."""
        tol = float(self.tols[i])
        gap, cpus, walls = self._run(tol)
        while len(cpus) < self.args.repeats:
            with Clock() as c:
                self.fit(tol)
            cpus.append(c.cpu)
            walls.append(c.wall)
        self.start = i
        note = "loosest tol tried" if i == 0 else ""
        return Reached(statistics.median(cpus), statistics.median(walls), tol, gap, note)

    def reach(self, target: float) -> Reached:
        """The loosest tolerance reaching ``target``: from the start tolerance, looser
        while the target is still reached, else tighter until it is."""
        i = self.start
        if self._run(float(self.tols[i]))[0] <= target:
            while i > 0 and self._run(float(self.tols[i - 1]))[0] <= target:
                i -= 1
            return self._timed(i)
        best: list[float] = []
        for i in range(self.start, len(self.tols)):
            tol = float(self.tols[i])
            gap, cpus, _ = self._run(tol)
            if gap <= target:
                return self._timed(i)
            best.append(min(gap, best[-1]) if best else gap)
            if len(best) > 4 and best[-1] > 0.5 * best[-5]:
                note = f"gap stays ≥ {best[-1]:.1e} down to tol {tol:.0e}"
                return Reached(gap=best[-1], note=note)
            if cpus[0] > self.args.max_fit_seconds:
                return Reached(gap=best[-1], note=f"a fit took {cpus[0]:.0f} s; sweep stopped")
        return Reached(gap=best[-1] if best else float("nan"), note="not reached")


def one_off_cost(make: Callable[..., Fit]) -> float:
    """First-call overhead (numba JIT): CPU of a first minus a second small fit."""
    X, Y, lam = make_problem(200, 50, 5, 5, seed=1)
    fit = make(X, Y, lam, {})
    times = []
    for _ in range(2):
        with Clock() as c:
            fit(1e-6)
        times.append(c.cpu)
    return max(times[0] - times[1], 0.0)


def run_case(args: argparse.Namespace) -> dict[str, Any]:
    X, Y, lam = make_problem(5000, 5000, 100, 500) if args.large else make_problem()
    tols = 10.0 ** -np.arange(-4.0, 12.5, 0.5)  # 1e4 ... 1e-12, half decades
    start = int(np.argmin(np.abs(np.log10(tols) - np.log10(args.start_tol))))

    def gap(W: FArray) -> float:
        return relative_gap(X, Y, lam, W)

    rows: list[dict[str, Any]] = []
    for solver in solvers():
        try:
            jit = one_off_cost(solver.make)
            fit = solver.make(X, Y, lam, solver.info)
        except ImportError as exc:
            rows.append({"name": solver.name, "missing": f"not installed ({exc.name})"})
            continue
        sweep = Sweep(fit, gap, tols, start, args)
        results: list[Reached] = []
        for target in TARGETS:
            results.append(sweep.reach(target))
            r = results[-1]
            print(f"{solver.name}: target {target:.0e}: {r}", solver.info, flush=True)
        rows.append({"name": solver.name, "jit": jit, "results": results, **solver.info})
    return {"rows": rows, "shape": (*X.shape, Y.shape[1]), "lam": lam}


# ------------------------------------------------------------------ the table
def _cell(r: Reached, ref: Reached | None) -> str:
    if not np.isfinite(r.cpu):
        return f"— ({r.note})"
    unit = (1e3, "ms") if r.cpu < 1 else (1.0, "s")
    ratio = f" · **{r.cpu / ref.cpu:.2f}×**" if ref is not None and np.isfinite(ref.cpu) else ""
    return f"{unit[0] * r.cpu:.3g} {unit[1]}{ratio}"


def render(case: dict[str, Any], args: argparse.Namespace, machine: str) -> str:
    n, d, T = case["shape"]
    rows = case["rows"]
    ref = next(r for r in rows if r["name"].startswith("scikit-learn"))
    how = "single fits" if args.repeats == 1 else f"median of {args.repeats} fresh fits"
    lines = [
        f"### n = {n}, d = {d}, T = {T}, {args.active} active rows, λ = 0.1 λ_max ({how})",
        "",
        f"Command: `{' '.join(['python', 'benchmarks/linear_l21_speed.py', *sys.argv[1:]])}`  ",
        f"Machine: {machine}; BLAS threads: {args.blas_threads}; clock: process CPU time.",
        "",
        "| solver | to gap 1e-4 | 1e-6 | 1e-8 | tol used (gap reached) | one-off cost |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "missing" in row:
            lines.append(f"| {row['name']} | — | — | — | {row['missing']} | |")
            continue
        res = row["results"]
        cells = [_cell(r, None if row is ref else ref["results"][i]) for i, r in enumerate(res)]
        used = ", ".join(f"{r.tol:.0e} ({r.gap:.0e})" if np.isfinite(r.tol) else "—" for r in res)
        name = row["name"] + (f" [{row['detail']}]" if "detail" in row else "")
        jit = f"{row['jit']:.1f} s" if row["jit"] >= 0.1 else "—"
        lines.append(f"| {name} | {' | '.join(cells)} | {used} | {jit} |")
    walls = [
        f"{row['name'].split(' (')[0]}: "
        + " / ".join(f"{r.wall:.3g}" if np.isfinite(r.wall) else "—" for r in row["results"])
        for row in rows
        if "results" in row
    ]
    lines += ["", "Wall seconds, same fits (1e-4 / 1e-6 / 1e-8): " + "; ".join(walls) + "."]
    return "\n".join(lines)


INTRO = """\
## L2,1 solver speed: polytask vs scikit-learn, celer and skglm

Protocol of `shared/benchmarks/linear.md`: one gap function (`relative_gap`, linear.md's
formula) judges every solver's returned W; each solver's own `tol` is swept in half
decades (from 1e-2, large case 1e-4: looser while the target is still reached, tighter
until it is; a sweep whose gap stops improving is stopped) and the loosest setting
reaching the target relative duality gap is timed; `fit_intercept=False`; one-off
costs (skglm's numba JIT, measured on a small problem) are reported apart. Clock:
**process CPU time** with BLAS pinned to one thread (threadpoolctl; skglm's numba code
is single-threaded too), because the machine is shared with other jobs. Bold: time
relative to scikit-learn at the same target. Peers are the `bench` extra
(`pip install -e ".[bench]"`).

polytask's automatic solver for these problems is `WorkingSet`
(`polytask/linear/_working_set.py`): it computes the gradient of the *full* problem
through X (one product, no d × d Gram matrix), stops on the full problem's certified
relative duality gap, removes features proved inactive by the gap-safe rule (Ndiaye et
al. 2017), and solves subproblems restricted to a working set of features (those in
use plus the highest KKT violations, doubling from 100; Massias et al. 2018) with FISTA
on the working set's own Gram matrix, to 0.3 × the final tolerance. From W = 0 the
certificate needs two products with X when the first working set holds the support
(the default case), one more per doubling otherwise (the large case: 100 → 800).
"""


def write_doc(key: str, body: str, path: Path = DOC) -> None:
    """Replace the ``key`` sub-block of the l21-speed section, keeping the other one."""
    text = path.read_text() if path.exists() else ""
    blocks = {}
    for k in ("default", "large"):
        m = re.search(
            rf"<!-- l21-speed:{k}:start -->\n(.*?)\n<!-- l21-speed:{k}:end -->", text, re.DOTALL
        )
        blocks[k] = m.group(1) if m else "_Not run yet._"
    blocks[key] = body
    parts = [INTRO]
    for k in ("default", "large"):
        parts.append(f"<!-- l21-speed:{k}:start -->\n{blocks[k]}\n<!-- l21-speed:{k}:end -->\n")
    write_section("l21-speed", "\n".join(parts), path)


# ------------------------------------------------------------------ School (prints only)
def school_benchmark(path: str) -> None:
    from scipy.io import loadmat

    raw = loadmat(path)
    pairs = [
        (np.asarray(x, float), np.asarray(y, float).ravel())
        for x, y in zip(raw["X"][0], raw["Y"][0], strict=True)
    ]

    def l21(tol: float) -> Any:
        return L21Regressor(10.0, normalization="sum", fit_intercept=False, tol=tol)

    def trace(tol: float) -> Any:
        return TraceNormRegressor(10.0, normalization="sum", fit_intercept=False, tol=tol)

    def mean_reg(tol: float) -> Any:
        return MeanRegularizedRegressor(1.0, 0.1, normalization="sum", fit_intercept=False, tol=tol)

    cases = [
        ("L2,1 rho=10", l21, 674696.2207250588, 0.1),
        ("trace rho=10", trace, 673051.1272110625, 1.0),
        ("mean-reg 1, 0.1", mean_reg, 691226.759017883, 0.05),
    ]
    print("\nSchool (139 tasks, per-task designs, sum loss): time to 1e-6 relative objective")
    for name, make, optimum, goal in cases:
        for tol in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8):
            if (make(tol).fit(pairs).objective_ - optimum) / optimum <= 1e-6:
                break
        times = []
        for _ in range(3):
            start = time.process_time()
            model = make(tol).fit(pairs)
            times.append(time.process_time() - start)
        rel = (model.objective_ - optimum) / optimum
        print(
            f"{name:>16}: {np.median(times):.3f} s CPU (goal {goal} s), {model.n_iter_} "
            f"iterations of {type(model.solver_).__name__}, tol {tol:.0e}, rel. objective {rel:.1e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="n = d = 5000, T = 100, 500 rows")
    parser.add_argument("--repeats", type=int, default=None, help="fits per median (3; 1 large)")
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads (0: default)")
    parser.add_argument(
        "--max-fit-seconds", type=float, default=300.0, help="stop a sweep after a fit this long"
    )
    parser.add_argument(
        "--start-tol", type=float, default=None, help="first tol of every sweep (1e-2; 1e-4 large)"
    )
    parser.add_argument("--school", default=None, help="also time School (path to school.mat)")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    args.repeats = args.repeats or (1 if args.large else 3)
    args.start_tol = args.start_tol or (1e-4 if args.large else 1e-2)
    args.active = 500 if args.large else 50
    machine = machine_line()
    print(machine, flush=True)
    limits = None if args.blas_threads == 0 else {"blas": args.blas_threads}
    with threadpool_limits(limits=limits):
        case = run_case(args)
        if args.school:
            school_benchmark(args.school)
    text = render(case, args, machine)
    print(text)
    if not args.no_write:
        write_doc("large" if args.large else "default", text)


if __name__ == "__main__":
    main()
