"""Regularisation paths with warm starts, and cross-validation of the regularisation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from polytask.linear._datafit_base import BaseDatafit, resolve_design
from polytask.linear._datafits import SquaredLoss
from polytask.linear._design import TaskDesign
from polytask.linear._objective import split_penalties
from polytask.linear._penalties import L21
from polytask.linear._solver_choice import choose_solver

__all__ = ["MultiTaskCV", "RegularizationPath", "alpha_max", "regularization_path"]

FArray = NDArray[np.float64]


@dataclass(frozen=True)
class RegularizationPath:
    """Solutions along a decreasing grid of regularisation levels.

    Attributes
    ----------
    alphas : ndarray of shape (n_alphas,)
        Decreasing regularisation levels.
    coefs : ndarray of shape (n_alphas, n_tasks, n_features)
        ``coef_`` at every level.
    intercepts : ndarray of shape (n_alphas, n_tasks)
        Intercepts at every level (zeros without intercept).
    n_iters : ndarray of shape (n_alphas,)
        Solver iterations at every level.
    stop_crits : ndarray of shape (n_alphas,)
        Certified stopping criterion reached at every level.
    dual_gaps : ndarray of shape (n_alphas,)
        Duality gaps (``NaN`` where the penalty has none).

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import TraceNorm, regularization_path
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(40, 5)), rng.normal(size=(40, 3))
    >>> path = regularization_path(X, Y, TraceNorm, n_alphas=3)
    >>> path.alphas.shape, path.coefs.shape, bool(np.all(path.coefs[0] == 0))
    ((3,), (3, 3, 5), True)
    """

    alphas: FArray
    coefs: FArray
    intercepts: FArray
    n_iters: NDArray[np.int64]
    stop_crits: FArray
    dual_gaps: FArray


def alpha_max(datafit: BaseDatafit, penalty_factory: Callable[[float], Any]) -> float:
    """Smallest level at which ``W = 0`` is optimal, for penalties linear in ``alpha``.

    Closed form ``Omega*(-grad F(0))`` for a norm penalty (``alpha_max``), or the
    composite penalty's ``weight_dual_norm`` at level 1.

    Parameters
    ----------
    datafit : initialized datafit
    penalty_factory : callable
        ``alpha -> penalty``, e.g. ``L21`` or ``lambda a: Dirty(a, 0.5 * a)``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the penalty has neither ``alpha_max`` nor ``weight_dual_norm``.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import L21, SquaredLoss, alpha_max
    >>> X, Y = np.eye(3), np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 0.0]])
    >>> alpha_max(SquaredLoss().initialize(X, Y), L21)
    5.0
    """
    pen = penalty_factory(1.0)
    zero = np.zeros((datafit.n_features, datafit.n_tasks))
    grad0 = datafit.gradient(zero)
    if getattr(pen, "is_norm", False) and hasattr(pen, "alpha_max"):
        return float(pen.alpha_max(-grad0))
    if hasattr(pen, "weight_dual_norm"):
        return float(pen.weight_dual_norm(-grad0))
    raise ValueError(
        f"alphas is required: {type(pen).__name__} has no closed-form alpha_max "
        "(only norm and composite norm penalties do)."
    )


def _design(X: Any, Y: Any, task: Any) -> TaskDesign:
    if task is None:
        if isinstance(X, Mapping):
            X = list(X.values())
        if isinstance(X, (list, tuple)) and Y is None:
            return TaskDesign.per_task([p[0] for p in X], [p[1] for p in X])
        return resolve_design(X, Y)
    ids = np.asarray(task)
    Xa, ya = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if ids.shape[0] != Xa.shape[0] or ya.shape[0] != Xa.shape[0]:
        raise ValueError(
            f"task and y must have one entry per sample ({Xa.shape[0]}); got {ids.shape[0]} "
            f"task labels and {ya.shape[0]} labels."
        )
    names = np.unique(ids)
    return TaskDesign.per_task([Xa[ids == t] for t in names], [ya[ids == t] for t in names])


def regularization_path(
    X: Any,
    Y: Any = None,
    penalty_factory: Callable[[float], Any] = L21,
    *,
    task: Any = None,
    datafit: BaseDatafit | None = None,
    alphas: Any = None,
    n_alphas: int = 20,
    eps: float = 1e-3,
    solver: Any = None,
    max_iter: int = 1000,
    tol: float = 1e-6,
) -> RegularizationPath:
    """Solve for a decreasing grid of levels, warm-starting each from the previous one.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), list of (X_t, y_t) pairs, or TaskDesign
        Shared design, stacked per-task designs (with ``task``), or pairs.
    Y : ndarray of shape (n_samples, n_tasks) or (n_samples,), optional
        Labels (``NaN`` = missing in a shared ``Y``).
    penalty_factory : callable, default=L21
        ``alpha -> penalty``.
    task : array-like of shape (n_samples,), optional
        Task label of every sample.
    datafit : datafit, optional
        Not initialized; default ``SquaredLoss(normalization="mean")``.
    alphas : array-like, optional
        Levels; default ``n_alphas`` log-spaced values from :func:`alpha_max` down to
        ``eps * alpha_max``.
    n_alphas : int, default=20
        Grid size when ``alphas`` is None.
    eps : float, default=1e-3
        Ratio of the smallest to the largest level when ``alphas`` is None.
    solver : solver object, optional
        Default chosen as for the estimators (see :func:`choose_solver`).
    max_iter : int, default=1000
        Maximum iterations per level.
    tol : float, default=1e-6
        Tolerance per level.

    Returns
    -------
    RegularizationPath

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import L21, regularization_path
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 8))
    >>> Y = X[:, :2] @ rng.normal(size=(2, 3))
    >>> path = regularization_path(X, Y, L21, n_alphas=5)
    >>> path.coefs.shape
    (5, 3, 8)
    >>> [int(np.count_nonzero(np.abs(c).sum(0))) for c in path.coefs]
    [0, 2, 2, 2, 2]
    """
    design = _design(X, Y, task)
    df = (SquaredLoss(normalization="mean") if datafit is None else datafit).initialize(design)
    if alphas is None:
        top = alpha_max(df, penalty_factory)
        grid = top * np.logspace(0.0, np.log10(eps), n_alphas)
    else:
        grid = np.sort(np.asarray(alphas, dtype=np.float64).ravel())[::-1]
        if grid.size == 0 or np.any(grid < 0):
            raise ValueError("alphas must be a non-empty array of numbers >= 0.")
    settings = SimpleNamespace(solver=solver, max_iter=max_iter, tol=tol)
    T, d = design.n_tasks, design.n_features
    coefs = np.zeros((grid.size, T, d))
    intercepts = np.zeros((grid.size, T))
    iters = np.zeros(grid.size, dtype=np.int64)
    crits = np.zeros(grid.size)
    gaps = np.full(grid.size, np.nan)
    V = None
    for i, a in enumerate(grid):
        prox, smooth = split_penalties(penalty_factory(float(a)))
        res = choose_solver(settings, df, prox, smooth).solve(df, prox, W0=V, smooth=smooth)
        V = res.V
        coefs[i] = res.W.T
        intercepts[i] = df.intercept(res.W)
        iters[i], crits[i] = res.n_iter, res.stop_crit
        if res.dual_gap is not None:
            gaps[i] = res.dual_gap
    return RegularizationPath(grid, coefs, intercepts, iters, crits, gaps)


class MultiTaskCV(BaseEstimator):
    """Choose a regularisation level of a multi-task estimator by cross-validation.

    Every fold fits the whole grid from the largest level down, warm-starting each fit
    from the previous one. Shared designs are split by samples; per-task designs are
    split *within every task* (stratified on the task label), so that every fold holds
    about ``1 / cv`` of every task.

    Parameters
    ----------
    estimator : estimator
        A polytask linear estimator, e.g. ``L21Regressor()``.
    param : str, default="alpha"
        Name of the estimator parameter to tune.
    alphas : array-like, optional
        Candidate levels; default ``n_alphas`` log-spaced values from the estimator's
        closed-form ``alpha_max`` (norm penalties only) down to ``eps * alpha_max``.
    n_alphas : int, default=10
        Grid size when ``alphas`` is None.
    eps : float, default=1e-3
        Ratio of the smallest to the largest default level.
    cv : int, default=5
        Number of folds.
    scoring : callable, optional
        ``scoring(estimator, X, y)`` (and ``task=...`` for per-task data), higher is
        better; default the estimator's ``score`` (mean R^2 over tasks, or accuracy).
    random_state : int or None, default=0
        Seed of the fold shuffling.
    refit : bool, default=True
        Refit the best level on all the data as ``best_estimator_``.

    Attributes
    ----------
    alphas_ : ndarray of shape (n_alphas,)
        Decreasing grid used.
    scores_ : ndarray of shape (n_alphas, cv)
        Validation score of every level on every fold.
    alpha_ : float
        Level with the best mean score (the largest one on ties).
    best_estimator_ : estimator
        Refit on all data with ``alpha_`` (when ``refit``).

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import L21Regressor, MultiTaskCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 10))
    >>> Y = X[:, :3] @ rng.normal(size=(3, 4)) + 0.5 * rng.normal(size=(80, 4))
    >>> search = MultiTaskCV(L21Regressor(), n_alphas=6, cv=3).fit(X, Y)
    >>> search.scores_.shape, bool(search.alpha_ < search.alphas_[0])
    ((6, 3), True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "estimator": [HasMethods(["fit", "set_params"])],
        "param": [str],
        "alphas": ["array-like", None],
        "n_alphas": [Interval(Integral, 1, None, closed="left")],
        "eps": [Interval(Real, 0, 1, closed="right")],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "scoring": [callable, None],
        "random_state": ["random_state"],
        "refit": ["boolean"],
    }

    def __init__(
        self,
        estimator: Any,
        *,
        param: str = "alpha",
        alphas: Any = None,
        n_alphas: int = 10,
        eps: float = 1e-3,
        cv: int = 5,
        scoring: Callable[..., float] | None = None,
        random_state: Any = 0,
        refit: bool = True,
    ) -> None:
        self.estimator = estimator
        self.param = param
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.scoring = scoring
        self.random_state = random_state
        self.refit = refit

    def _grid(self, X: Any, y: Any, task: Any) -> FArray:
        if self.alphas is not None:
            grid = np.sort(np.asarray(self.alphas, dtype=np.float64).ravel())[::-1]
            if grid.size == 0 or np.any(grid < 0):
                raise ValueError("alphas must be a non-empty array of numbers >= 0.")
            return grid
        est = clone(self.estimator)
        _, datafit, _, _ = est._prepare(X, y, task)

        def factory(a: float) -> Any:
            return clone(est).set_params(**{self.param: a})._make_penalty()

        top = alpha_max(datafit, factory)
        return top * np.logspace(0.0, np.log10(self.eps), self.n_alphas)

    def _score(self, est: Any, X: Any, y: Any, task: Any) -> float:
        if self.scoring is None:
            return float(est.score(X, y, task=task) if task is not None else est.score(X, y))
        if task is not None:
            return float(self.scoring(est, X, y, task=task))
        return float(self.scoring(est, X, y))

    def fit(self, X: Any, y: Any = None, task: Any = None) -> MultiTaskCV:
        """Run the search (same data forms as the estimator's ``fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list/dict of (X_t, y_t)
        y : array-like of shape (n_samples, n_tasks) or (n_samples,), optional
        task : array-like of shape (n_samples,), optional

        Returns
        -------
        self : MultiTaskCV

        Raises
        ------
        ValueError
            If ``param`` is not a parameter of the estimator, or a task has fewer
            samples than folds.
        """
        self._validate_params()
        if self.param not in self.estimator.get_params():
            raise ValueError(
                f"param={self.param!r} is not a parameter of {type(self.estimator).__name__}."
            )
        if isinstance(X, (list, tuple, Mapping)) and y is None and task is None:
            names = list(X.keys()) if isinstance(X, Mapping) else list(range(len(X)))
            pairs = list(X.values()) if isinstance(X, Mapping) else list(X)
            task = np.concatenate([[n] * len(p[1]) for n, p in zip(names, pairs, strict=True)])
            y = np.concatenate([np.asarray(p[1]).ravel() for p in pairs])
            X = np.vstack([np.asarray(p[0]) for p in pairs])
        Xa, ya = np.asarray(X), np.asarray(y) if y is not None else None
        if ya is None:
            raise ValueError("MultiTaskCV requires y to be passed, but the target y is None.")
        if task is not None:
            ids = np.asarray(task)
            labels, counts = np.unique(ids, return_counts=True)
            few = np.flatnonzero(counts < self.cv)
            if few.size:
                raise ValueError(
                    f"task {labels[few[0]].item()!r} has {counts[few[0]]} samples, fewer than "
                    f"cv={self.cv} folds."
                )
            splits = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
            folds = list(splits.split(Xa, ids))
        else:
            ids = None
            splitter = KFold(self.cv, shuffle=True, random_state=self.random_state)
            folds = list(splitter.split(Xa))
        grid = self._grid(Xa, ya, ids)
        scores = np.zeros((grid.size, self.cv))
        for f, (train, test) in enumerate(folds):
            est = clone(self.estimator).set_params(warm_start=True)
            t_tr = None if ids is None else ids[train]
            t_te = None if ids is None else ids[test]
            for i, a in enumerate(grid):
                est.set_params(**{self.param: float(a)})
                est.fit(Xa[train], ya[train], task=t_tr) if ids is not None else est.fit(
                    Xa[train], ya[train]
                )
                scores[i, f] = self._score(est, Xa[test], ya[test], t_te)
        self.alphas_ = grid
        self.scores_ = scores
        self.alpha_ = float(grid[int(np.argmax(scores.mean(axis=1)))])
        if self.refit:
            best = clone(self.estimator).set_params(**{self.param: self.alpha_})
            self.best_estimator_ = (
                best.fit(Xa, ya, task=ids) if ids is not None else best.fit(Xa, ya)
            )
        return self

    def predict(self, X: Any, task: Any = None) -> Any:
        """Predict with ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        task : array-like of shape (n_samples,), optional

        Returns
        -------
        ndarray
        """
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X, task=task)

    def score(self, X: Any, y: Any, task: Any = None) -> float:
        """Score of ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like
        task : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        check_is_fitted(self, "best_estimator_")
        return float(self.best_estimator_.score(X, y, task=task))
