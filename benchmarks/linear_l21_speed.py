"""Time to a relative duality gap: polytask vs scikit-learn on the L2,1 problem of
``shared/benchmarks/linear.md`` (n=2000, d=500, T=50, 50 active rows, noise 0.1,
lambda = 0.1 lambda_max), plus the three School objectives against their goals.

One independent gap function judges every solver's returned W (linear.md's formula).
For each solver the tolerance is swept in half decades and the loosest setting that
reaches the target gap is timed (median of 3 fresh fits, ``fit_intercept=False``).

Run: ``python benchmarks/linear_l21_speed.py [--school PATH/school.mat] [--blas-threads 2]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import MultiTaskLasso
from threadpoolctl import threadpool_limits

from polytask.linear import L21Regressor, MeanRegularizedRegressor, TraceNormRegressor


def make_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """The linear.md L2,1 problem and its lambda = 0.1 lambda_max."""
    rng = np.random.default_rng(seed)
    n, d, T = 2000, 500, 50
    X = rng.standard_normal((n, d))
    W = np.zeros((d, T))
    W[rng.choice(d, 50, replace=False)] = rng.standard_normal((50, T))
    Y = X @ W + 0.1 * rng.standard_normal((n, T))
    lam_max = np.sqrt(((X.T @ Y) ** 2).sum(axis=1)).max() / n
    return X, Y, 0.1 * lam_max


def relative_gap(X: np.ndarray, Y: np.ndarray, lam: float, W: np.ndarray) -> float:
    """linear.md's relative duality gap of W (n_features, n_tasks), independent code."""
    n = X.shape[0]
    R = Y - X @ W
    primal = 0.5 * np.sum(R**2) / n + lam * np.sqrt((W**2).sum(axis=1)).sum()
    scale = min(1.0, n * lam / np.sqrt(((X.T @ R) ** 2).sum(axis=1)).max())
    theta = scale * R
    dual = (np.sum(theta * Y) - 0.5 * np.sum(theta**2)) / n
    return (primal - dual) / primal


def time_to_gap(
    fit: Callable[[float], np.ndarray], gap: Callable[[np.ndarray], float], target: float
) -> tuple[float, float, float]:
    """(median seconds, tol used, gap reached) for the loosest tol reaching ``target``."""
    for tol in 10.0 ** -np.arange(1.0, 12.5, 0.5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            W = fit(tol)
            if gap(W) > target:
                continue
            times = []
            for _ in range(3):
                start = time.perf_counter()
                fit(tol)
                times.append(time.perf_counter() - start)
        return float(np.median(times)), float(tol), gap(W)
    return float("nan"), float("nan"), float("nan")


def l21_benchmark() -> None:
    X, Y, lam = make_problem()

    def gap(W: np.ndarray) -> float:
        return relative_gap(X, Y, lam, W)

    def ours(tol: float) -> np.ndarray:
        model = L21Regressor(alpha=lam, fit_intercept=False, tol=tol, max_iter=100000)
        return model.fit(X, Y).coef_.T

    def sklearn(tol: float) -> np.ndarray:
        model = MultiTaskLasso(alpha=lam, fit_intercept=False, tol=tol, max_iter=100000)
        return model.fit(X, Y).coef_.T

    print("L2,1 shared design n=2000 d=500 T=50, lambda = 0.1 lambda_max")
    print(f"{'target':>6} | {'polytask: time, tol, gap':>30} | {'scikit-learn':>30} | ratio")
    for target in (1e-4, 1e-6, 1e-8):
        t_ours, tol_ours, g_ours = time_to_gap(ours, gap, target)
        t_sk, tol_sk, g_sk = time_to_gap(sklearn, gap, target)
        print(
            f"{target:>6.0e} | {1e3 * t_ours:7.1f} ms, {tol_ours:.0e}, {g_ours:.1e} | "
            f"{1e3 * t_sk:7.1f} ms, {tol_sk:.0e}, {g_sk:.1e} | {t_ours / t_sk:.2f}"
        )


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
            start = time.perf_counter()
            model = make(tol).fit(pairs)
            times.append(time.perf_counter() - start)
        rel = (model.objective_ - optimum) / optimum
        print(
            f"{name:>16}: {np.median(times):.3f} s (goal {goal} s), {model.n_iter_} iterations "
            f"of {type(model.solver_).__name__}, tol {tol:.0e}, rel. objective {rel:.1e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--school", default=None, help="path to school.mat")
    parser.add_argument(
        "--blas-threads", type=int, default=None, help="pin BLAS to this many threads"
    )
    args = parser.parse_args()
    limits = None if args.blas_threads is None else {"blas": args.blas_threads}
    with threadpool_limits(limits=limits):
        l21_benchmark()
        if args.school:
            school_benchmark(args.school)


if __name__ == "__main__":
    main()
