"""Train and score one linear unit of an experiment: a linear model on one split.

Three ways to fit a registered estimator (``models[i].fit``): ``joint`` (one multi-task
model), ``per_task`` (single-task learning: one model per main task) and ``pooled`` (all
tasks' samples as one task).  Parameters listed in ``cv`` are chosen on the training
part by :class:`~polytask.linear.MultiTaskCV` (folds within every task); a grid over
several parameters searches the first one with warm-started paths and loops over the
product of the others, with the same folds.  Convergence warnings of the grid points
are silenced (a poor level simply scores badly); the final fit still warns.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np

from polytask._config_models import LinearModelConfig
from polytask._experiment_data import SplitData
from polytask.tasks import Task

Row = dict[str, Any]


def _fit(est: Any, X: Any, y: Any, task: Any) -> Any:
    return est.fit(X, y, task=task) if task is not None else est.fit(X, y)


def tuned_estimator(spec: LinearModelConfig, kind: Any, X: Any, y: Any, task: Any,
                    seed: int) -> Any:
    """The estimator of ``spec`` fitted on ``(X, y[, task])``, its ``cv`` grids searched.

    Parameters
    ----------
    spec : LinearModelConfig
    kind : {"regression", "binary"}
        Kind of the tasks.
    X, y, task
        As for the estimator's ``fit`` (``task`` None for a shared design).
    seed : int
        Seeds the folds.

    Returns
    -------
    estimator
        Fitted with the best parameters; ``cv_params_`` holds them.
    """
    from sklearn.exceptions import ConvergenceWarning

    from polytask.linear import MultiTaskCV

    params = dict(spec.params)
    best: dict[str, Any] = {}
    if spec.cv:
        keys = list(spec.cv)
        first = next((k for k in keys if not all(float(v).is_integer() for v in spec.cv[k])),
                     keys[0])
        rest = [k for k in keys if k != first]
        best_score = -np.inf
        for combo in itertools.product(*(spec.cv[k] for k in rest)):
            fixed = {k: (int(v) if float(v).is_integer() and k != first else v)
                     for k, v in zip(rest, combo, strict=True)}
            search = MultiTaskCV(spec.estimator(kind, {**params, **fixed}), param=first,
                                 alphas=list(spec.cv[first]), cv=spec.cv_folds,
                                 random_state=seed, refit=False)
            with warnings.catch_warnings():
                # unconverged fits at some grid points are expected; the refit warns
                warnings.simplefilter("ignore", ConvergenceWarning)
                _fit(search, X, y, task)
            score = float(np.max(search.scores_.mean(axis=1)))
            if score > best_score:
                best_score, best = score, {**fixed, first: float(search.alpha_)}
    est = _fit(spec.estimator(kind, {**params, **best}), X, y, task)
    est.cv_params_ = best
    return est


def _scores(est: Any, X: Any, task: Any = None) -> np.ndarray:
    fn = est.decision_function if hasattr(est, "decision_function") else est.predict
    out = fn(X, task=task) if task is not None else fn(X)
    return np.asarray(out, dtype=float)


def _rows(task: Task, y_true: Any, scores: Any) -> list[Row]:
    return [{"task": task.name, "metric": k, "value": v}
            for k, v in task.evaluate(y_true, scores, undefined="skip").items()]


def _one_kind(tasks: list[Task], spec: LinearModelConfig) -> Any:
    kinds = sorted({t.kind for t in tasks})
    if len(kinds) > 1:
        raise ValueError(f"model {spec.name!r}: a {spec.fit} linear model needs tasks of one "
                         f"kind, got {kinds}; use fit: per_task")
    return kinds[0]


def fit_linear_unit(spec: LinearModelConfig, split: SplitData, seed: int
                    ) -> tuple[list[Row], dict[str, Any]]:
    """Fit ``spec`` on ``split.fit`` and score it on ``split.test``.

    Parameters
    ----------
    spec : LinearModelConfig
    split : SplitData
    seed : int
        Seeds the cross-validation folds.

    Returns
    -------
    rows : list of dict
        ``{task, metric, value}`` on the test part.
    info : dict
        The chosen parameters (``cv_params``).

    Raises
    ------
    ValueError
        If a task kind is not supported by the estimator, or tasks of several kinds are
        fitted jointly.
    """
    tasks = list(split.tasks)
    fit, test = split.fit, split.test
    rows: list[Row] = []
    chosen: dict[str, Any] = {}
    if spec.fit == "per_task":
        for task in tasks:
            if not task.is_main:
                continue
            X, y = fit.task(task.name)
            est = tuned_estimator(spec, task.kind, X, y, None, seed)
            chosen[task.name] = est.cv_params_
            Xt, yt = test.task(task.name)
            rows += _rows(task, yt, _scores(est, Xt))
        return rows, {"cv_params": chosen}
    kind = _one_kind(tasks, spec)
    if spec.fit == "pooled":
        parts = [fit.task(t.name) for t in tasks]
        est = tuned_estimator(spec, kind, np.vstack([x for x, _ in parts]),
                              np.concatenate([y for _, y in parts]), None, seed)
        for task in tasks:
            Xt, yt = test.task(task.name)
            rows += _rows(task, yt, _scores(est, Xt))
        return rows, {"cv_params": est.cv_params_}
    if fit.form == "shared":
        est = tuned_estimator(spec, kind, fit.feature_matrix(), fit.label_matrix(), None, seed)
        S = _scores(est, test.feature_matrix()).reshape(test.n_samples, -1)
        Y = test.label_matrix()
        for t, task in enumerate(tasks):
            rows += _rows(task, Y[:, t], S[:, t])
    else:
        X, y, ids = fit.stacked()
        est = tuned_estimator(spec, kind, X, y, ids, seed)
        for t, task in enumerate(tasks):
            Xt, yt = test.task(task.name)
            rows += _rows(task, yt, _scores(est, Xt, np.full(len(yt), t)))
    return rows, {"cv_params": est.cv_params_}


__all__ = ["fit_linear_unit", "tuned_estimator"]
