"""The ``polytask demo`` job: STL versus MTL on tasks of known relatedness.

Tasks come from the MMoE-paper generator (:func:`polytask.data.mmoe_synthetic`) at several
task correlations, in two experiments:

- **linear**: six tasks, each with its own small training sample (per-task designs), so
  sharing statistical strength across tasks matters: STL ridge, pooled ridge and
  mean-regularised MTL, hyperparameters chosen by cross-validation on the training part;
- **deep**: the MMoE paper's two-task setting: the same MLP trained per task (STL),
  shared-bottom and MMoE (see :mod:`polytask._demo_deep`).

Every model is really trained and scored per task on a large held-out test sample.  The
demo writes ``results.csv`` (tidy), ``per_task.csv``, ``delta_m.csv`` and
``delta_m.png`` into the run directory, and ends with a relatedness summary
(:mod:`polytask._demo_relate`: measured versus planted task cosines, groups for k=2),
also written to ``relatedness.csv`` and ``relatedness.json``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polytask._demo_deep import DeepSetup, deep_run
from polytask._demo_relate import (
    linear_relatedness,
    relatedness_frame,
    report_relatedness,
    write_relatedness,
)
from polytask.experiment import Comparison, compare, tidy_frame
from polytask.metrics import mse

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DemoSetup:
    """Sizes of the demo problem."""

    n_tasks: int = 6
    n_features: int = 20
    n_train: int = 30
    n_test: int = 400
    correlations: tuple[float, ...] = (0.0, 0.5, 0.8, 0.95)


def _task_blocks(seed: int, rho: float, setup: DemoSetup) -> tuple[list[tuple], list[tuple]]:
    """Per-task (train, test) samples: each task gets its own rows of the generator."""
    train, test, _ = _task_draw(seed, rho, setup)
    return train, test


def _task_draw(seed: int, rho: float, setup: DemoSetup
               ) -> tuple[list[tuple], list[tuple], dict[str, Any]]:
    """:func:`_task_blocks` and the generator's ground truth (``truth`` dict)."""
    from polytask.data import mmoe_synthetic

    T, n_tr, n_te = setup.n_tasks, setup.n_train, setup.n_test
    synth = mmoe_synthetic(n_samples=T * (n_tr + n_te), n_features=setup.n_features,
                           n_tasks=T, correlation=rho, noise=0.1, random_state=seed)
    X, Y = np.asarray(synth.X), np.asarray(synth.Y)
    train, test = [], []
    for t in range(T):
        rows = slice(t * (n_tr + n_te), (t + 1) * (n_tr + n_te))
        Xt, yt = X[rows], Y[rows, t]
        train.append((Xt[:n_tr], yt[:n_tr]))
        test.append((Xt[n_tr:], yt[n_tr:]))
    return train, test, dict(synth.truth)


def _stl_ridge(train: list[tuple]) -> Callable[[int, np.ndarray], np.ndarray]:
    from sklearn.linear_model import RidgeCV

    alphas = np.logspace(-3, 3, 13)
    models = [RidgeCV(alphas=alphas).fit(X, y) for X, y in train]
    return lambda t, X: models[t].predict(X)


def _pooled_ridge(train: list[tuple]) -> Callable[[int, np.ndarray], np.ndarray]:
    from sklearn.linear_model import RidgeCV

    X = np.vstack([x for x, _ in train])
    y = np.concatenate([y for _, y in train])
    model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(X, y)
    return lambda t, Xt: model.predict(Xt)


def _stack(train: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.vstack([x for x, _ in train])
    y = np.concatenate([y for _, y in train])
    ids = np.concatenate([np.full(len(y_t), t) for t, (_, y_t) in enumerate(train)])
    return X, y, ids


def _mean_regularized(train: list[tuple], seed: int) -> Callable[[int, np.ndarray], np.ndarray]:
    """Evgeniou & Pontil (2004) mean-regularised MTL, (alpha, beta) by 3-fold CV."""
    model = _fit_mean_regularized(train, seed)
    return lambda t, X: model.predict(X, task=np.full(len(X), t))


def _fit_mean_regularized(train: list[tuple], seed: int) -> Any:
    """The fitted :class:`~polytask.linear.MeanRegularizedRegressor` of the demo."""
    from polytask.linear import MeanRegularizedRegressor

    grid = [(a, b) for a in np.logspace(-1, 3, 9) for b in (1e-2, 1.0)]
    rng = np.random.default_rng(seed)
    folds = [rng.permutation(len(y)) % 3 for _, y in train]
    best, best_err = grid[0], np.inf
    for a, b in grid:
        err = 0.0
        for k in range(3):
            fit_part = [(X[f != k], y[f != k]) for (X, y), f in zip(train, folds, strict=True)]
            model = MeanRegularizedRegressor(alpha=a, beta=b).fit(*_stack(fit_part))
            for t, ((X, y), f) in enumerate(zip(train, folds, strict=True)):
                pred = model.predict(X[f == k], task=np.full(int((f == k).sum()), t))
                err += float(((pred - y[f == k]) ** 2).sum())
        if err < best_err:
            best, best_err = (a, b), err
    return MeanRegularizedRegressor(alpha=best[0], beta=best[1]).fit(*_stack(train))


MODELS: dict[str, Callable[..., Callable[[int, np.ndarray], np.ndarray]]] = {
    "STL ridge": lambda train, seed: _stl_ridge(train),
    "pooled ridge": lambda train, seed: _pooled_ridge(train),
    "mean-regularised MTL": _mean_regularized,
}
"""Demo models: name -> (train, seed) -> predict(task_index, X)."""


GRADIENT_BATCHES = 4
"""Training batches over which the deep relatedness summary averages gradient cosines."""


def _runs(setup: DemoSetup, seeds: range) -> Iterator[tuple[str, int, float]]:
    for seed in seeds:
        for rho in setup.correlations:
            yield "linear", seed, rho
            yield "deep", seed, rho


def _linear_rows(seed: int, rho: float, setup: DemoSetup) -> list[dict[str, Any]]:
    train, test = _task_blocks(seed, rho, setup)
    rows = []
    for method, build in MODELS.items():
        predict = build(train, seed)
        for t, (X, y) in enumerate(test):
            rows.append({"setting": f"linear, rho={rho:g}", "task": f"task_{t}",
                         "method": method, "seed": seed, "metric": "mse",
                         "value": mse(y, predict(t, X))})
    return rows


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads (tiny models are fastest on one), then restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_demo(
    run_dir: Path | None = None,
    n_seeds: int = 3,
    quick: bool = False,
    progress: bool = True,
    echo: Echo | None = None,
) -> pd.DataFrame:
    """Train STL and MTL models on synthetic tasks and report the comparison.

    Parameters
    ----------
    run_dir : Path, optional
        Output folder (created); default ``runs/demo-<timestamp>``.
    n_seeds : int, default=3
        Number of seeds (data draws and CV folds).
    quick : bool, default=False
        Two correlations and one seed only.
    progress : bool, default=True
        Show a progress bar on stderr.
    echo : callable, optional
        Where the printed report goes (e.g. ``print``); silent when None.

    Returns
    -------
    pandas.DataFrame
        The tidy result table (setting, task, method, seed, metric, value).
    """
    from tqdm.auto import tqdm

    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise ValueError(f"n_seeds must be a positive integer, got {n_seeds!r}.")
    setup = DemoSetup(correlations=(0.0, 0.95)) if quick else DemoSetup()
    deep = DeepSetup(max_epochs=10) if quick else DeepSetup()
    seeds = range(1 if quick else n_seeds)
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / time.strftime(
        "demo-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    jobs = list(_runs(setup, seeds))
    extremes = (min(setup.correlations), max(setup.correlations))
    grad_cos: dict[float, float] = {}
    with _torch_threads(1):
        for part, seed, rho in tqdm(jobs, desc="demo", disable=not progress, unit="run"):
            if part == "linear":
                rows += _linear_rows(seed, rho, setup)
                continue
            tracked = seed == seeds[0] and rho in extremes
            deep_part, cosine = deep_run(seed, rho, deep,
                                         gradient_batches=GRADIENT_BATCHES if tracked else 0)
            rows += deep_part
            if cosine is not None:
                grad_cos[rho] = cosine
    linear_rel = []
    for rho in extremes:
        train, _, truth = _task_draw(seeds[0], rho, setup)
        linear_rel.append(linear_relatedness(f"linear, rho={rho:g}", train, truth,
                                             _fit_mean_regularized(train, seeds[0])))
    relatedness = relatedness_frame(linear_rel, dict(sorted(grad_cos.items())))
    write_relatedness(relatedness, linear_rel, run_dir)
    table = tidy_frame(rows)
    cmp = _compare_parts(table)
    table.to_csv(run_dir / "results.csv", index=False)
    cmp.per_task.to_csv(run_dir / "per_task.csv", index=False)
    cmp.delta_m.to_csv(run_dir / "delta_m.csv", index=False)
    _plot(cmp.delta_m, run_dir / "delta_m.png")
    if echo is not None:
        _report(cmp, setup, len(seeds), run_dir, echo)
        report_relatedness(relatedness, seeds[0], echo)
        echo(f"Wrote relatedness.csv and relatedness.json to {run_dir}")
    return table


_BASELINES = {"linear": "STL ridge", "deep": "STL MLP"}


def _compare_parts(table: pd.DataFrame) -> Comparison:
    """Compare each experiment (linear, deep) with its own single-task baseline."""
    parts = [compare(table[table["setting"].str.startswith(part)], "mse", baseline=base)
             for part, base in _BASELINES.items()]
    return Comparison(per_task=pd.concat([p.per_task for p in parts], ignore_index=True),
                      delta_m=pd.concat([p.delta_m for p in parts], ignore_index=True))


def _report(cmp: Comparison, setup: DemoSetup, n_seeds: int, run_dir: Path,
            echo: Echo) -> None:
    per = cmp.per_task.copy()
    per["cell"] = [f"{m:.3f} ({g:+.1f}%)" for m, g in zip(per["mean"], per["gain_pct"],
                                                             strict=True)]
    dm = cmp.delta_m.copy()
    dm["Δm%"] = [f"{m:+.1f} ± {s:.1f}" for m, s in zip(dm["delta_m"], dm["delta_m_std"],
                                                      strict=True)]
    intro = {
        "linear": f"{setup.n_tasks} tasks, {setup.n_train} training samples each, "
                  f"{setup.n_features} features",
        "deep": "2 tasks sharing their inputs (the MMoE paper's setting)",
    }
    for part, base in _BASELINES.items():
        mine = per["setting"].str.startswith(part)
        wide = per[mine].pivot_table(index=["setting", "task"], columns="method",
                                     values="cell", aggfunc="first", sort=False)
        echo(f"[{part}] Test MSE per task, {intro[part]} (mean over {n_seeds} seed(s); "
             f"in brackets: gain over {base}, positive = better).")
        echo(wide.to_string())
        echo(f"\n[{part}] Δm% against {base} (mean ± std over seeds):")
        echo(dm[dm["setting"].str.startswith(part)].pivot_table(
            index="setting", columns="method", values="Δm%", aggfunc="first",
            sort=False).to_string())
        echo("")
    echo(f"Wrote results.csv, per_task.csv, delta_m.csv and delta_m.png to {run_dir}")


def _plot(delta: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for ax, (part, base) in zip(axes, _BASELINES.items(), strict=True):
        mine = delta[delta["setting"].str.startswith(part)]
        for method, grp in mine.groupby("method", sort=False):
            x = [float(s.split("=")[1]) for s in grp["setting"]]
            ax.errorbar(x, grp["delta_m"], yerr=grp["delta_m_std"], marker="o",
                        capsize=3, label=str(method))
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("task correlation ρ")
        ax.set_ylabel(f"Δm% vs {base} (higher = better)")
        ax.set_title(f"{part}: multi-task gain over STL")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
