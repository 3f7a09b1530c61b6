"""Shared plumbing of the School and linear-solver benchmarks (not part of the package).

* School data: loading, the per-school 75/25 split of ``shared/benchmarks/school.md``,
  the feature coding (raw uint8 values cast to float, or z-scores computed on the
  training students only), and the scores (pooled explained variance, nMSE).
* Cross-validation inside the training students: per-school K-fold (every fold holds
  about 1/K of every school), a grid of hyperparameter points fitted with warm starts,
  selection by the pooled validation squared error.
* ``write_section``: replace one marked section of ``docs/benchmarks.md`` (read, modify,
  write at once, so that the sections other scripts write are left alone).
* ``paired_rows`` and ``repetitions_main``: the table of explained variances paired
  against a base model, and the command line, of the exploratory School scripts.
"""

from __future__ import annotations

import os
import platform
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.exceptions import ConvergenceWarning

from polytask.data import MultiTaskData, load_school
from polytask.metrics import nmse, pooled_explained_variance

FArray = NDArray[np.float64]
IArray = NDArray[np.intp]

DEFAULT_SCHOOL = Path(__file__).resolve().parents[2] / "shared" / "data" / "school" / "school.mat"
BIAS_COLUMN = 27  # MALSAR's School file ends with a constant column of ones


def school_path(path: str | None) -> Path:
    """The School file given on the command line, or the shared copy."""
    candidates = (
        [Path(path)] if path else [DEFAULT_SCHOOL, Path("/work/shared/data/school/school.mat")]
    )
    for p in candidates:
        if p.exists():
            return p
    raise FileNotFoundError(f"school.mat not found (tried {', '.join(map(str, candidates))})")


def load(path: str | None = None) -> MultiTaskData:
    """School as per-task data (139 schools, 28 features cast to float64)."""
    return load_school(school_path(path), download=False)


def school_pairs(path: str | None = None) -> list[tuple[FArray, FArray]]:
    """One ``(X_t, y_t)`` pair per school, all 28 columns, float64."""
    data = load(path)
    return [data.task(name) for name in data.task_names]


@dataclass
class Split:
    """Stacked train and test students of one repetition (task ids index the schools)."""

    X: FArray
    y: FArray
    task: IArray
    X_test: FArray
    y_test: FArray
    task_test: IArray


def split(data: MultiTaskData, rep: int, coding: str = "standardized") -> Split:
    """The 75/25 per-school split of repetition ``rep`` (seed = ``rep``), coded.

    ``coding="raw"`` keeps the 27 uint8 attributes as floats; ``"standardized"`` turns
    each into a z-score with the mean and standard deviation of the *training*
    students. Both drop MALSAR's constant bias column: every model fits a per-school
    intercept instead (``fit_intercept=True``).
    """
    train, test = data.train_test_split(train_size=0.75, random_state=rep)
    X, y, task = train.stacked()
    Xt, yt, tt = test.stacked()
    keep = [j for j in range(X.shape[1]) if j != BIAS_COLUMN]
    X, Xt = X[:, keep], Xt[:, keep]
    if coding == "standardized":
        mean, std = X.mean(axis=0), X.std(axis=0)
        std[std == 0] = 1.0
        X, Xt = (X - mean) / std, (Xt - mean) / std
    elif coding != "raw":
        raise ValueError(f"coding must be 'raw' or 'standardized'; got {coding!r}")
    return Split(X, y, task, Xt, yt, tt)


def per_task(values: FArray, task: IArray) -> list[FArray]:
    """Split a stacked vector into one array per task (task order)."""
    return [values[task == t] for t in np.unique(task)]


def scores(y: FArray, pred: FArray, task: IArray) -> tuple[float, float]:
    """(pooled explained variance, nMSE) of test predictions."""
    truth, guess = per_task(y, task), per_task(pred, task)
    return pooled_explained_variance(truth, guess), nmse(truth, guess)


def task_folds(task: IArray, n_folds: int, seed: int) -> IArray:
    """Fold index of every sample: each task's samples dealt at random into the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(task.size, dtype=np.intp)
    for t in np.unique(task):
        idx = np.flatnonzero(task == t)
        fold[idx] = rng.permutation(idx.size) % n_folds
    return fold


@dataclass
class Method:
    """A model and its hyperparameter grid.

    ``make(point)`` returns an unfitted estimator for one grid point. Points are tried in
    the given order and consecutive points of the same ``chain`` key warm-start from
    one another (order them from the most to the least regularised).
    """

    name: str
    make: Callable[[dict[str, Any]], Any]
    grid: Sequence[dict[str, Any]]
    note: str = ""
    chain: Callable[[dict[str, Any]], Any] | None = None


def _warm(est: Any, prev: Any) -> Any:
    """Start ``est`` from ``prev``'s solution (same data shape) when it is a polytask model."""
    if prev is None or not hasattr(est, "warm_start") or not hasattr(prev, "coef_"):
        return est
    est.set_params(warm_start=True)
    est.coef_ = prev.coef_
    if hasattr(prev, "coef_blocks_"):
        est.coef_blocks_ = prev.coef_blocks_
    return est


def fit_quiet(est: Any, X: FArray, y: FArray, task: IArray) -> Any:
    """Fit with per-task designs, silencing convergence warnings (counted by the caller)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, task=task)


def cross_validate(
    method: Method, X: FArray, y: FArray, task: IArray, n_folds: int, seed: int
) -> tuple[dict[str, Any], FArray]:
    """Best grid point by pooled validation squared error, and the error of every point."""
    if len(method.grid) == 1:
        return dict(method.grid[0]), np.full(1, np.nan)
    fold = task_folds(task, n_folds, seed)
    errors = np.zeros(len(method.grid))
    for f in range(n_folds):
        tr, va = fold != f, fold == f
        prev, prev_key = None, object()
        for i, point in enumerate(method.grid):
            key = method.chain(point) if method.chain else None
            est = method.make(point)
            if key == prev_key:
                est = _warm(est, prev)
            fit_quiet(est, X[tr], y[tr], task[tr])
            pred = est.predict(X[va], task=task[va])
            errors[i] += float(np.sum((y[va] - pred) ** 2))
            prev, prev_key = est, key
    best = int(np.argmin(errors))
    return dict(method.grid[best]), errors / task.size


def machine_line() -> str:
    """Machine, thread and load facts for a results table."""
    load1, load5, _ = os.getloadavg()
    return (
        f"{platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
        f"numpy {np.__version__}; load average at start {load1:.1f} (1 min), {load5:.1f} (5 min)"
    )


class Clock:
    """Wall and process CPU time of a block: ``with Clock() as c: ...; c.wall, c.cpu``."""

    def __enter__(self) -> Clock:
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._w
        self.cpu = time.process_time() - self._c


def write_section(name: str, body: str, path: Path = Path("docs/benchmarks.md")) -> None:
    """Put ``body`` between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``.

    The file is read and rewritten in one go; other sections are kept verbatim. A
    missing file is created with a title; a missing section is appended.
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def paired_rows(reps: Sequence[dict[str, float]], base: str) -> tuple[list[str], dict[str, Any]]:
    """Table rows ``| model | mean ± std | paired Δ vs base |`` (points of explained
    variance) over repetitions, and the per-model arrays of percentages."""
    ev = {name: 100 * np.array([r[name] for r in reps]) for name in reps[0]}
    rows = []
    for name, values in ev.items():
        d = values - ev[base]
        mean = f"{values.mean():.2f} ± {values.std():.2f}"
        rows.append(f"| {name} | {mean} | {d.mean():+.2f} ± {d.std():.2f} |")
    return rows, ev


def repetitions_main(
    doc: str | None,
    per_rep: Callable[[int], dict[str, float]],
    render: Callable[[list[dict[str, float]], str, float], str],
    section: str,
) -> None:
    """``--reps N`` (10) repetitions of ``per_rep``, rendered, printed and written to
    ``docs/benchmarks.md`` (unless ``--no-write``)."""
    import argparse

    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    machine = machine_line()
    with Clock() as clock:
        rows = [per_rep(rep) for rep in range(args.reps)]
    text = render(rows, machine, clock.wall)
    print(text)
    if not args.no_write:
        write_section(section, text)
