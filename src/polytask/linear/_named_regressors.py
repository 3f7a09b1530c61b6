"""Named regressors: one penalty each (twins of the named classifiers).

Each is :class:`MultiTaskRegressor` with a fixed penalty class whose hyperparameters are the
estimator's own (scikit-learn needs explicit ``__init__`` signatures, hence one class
each).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

from sklearn.utils._param_validation import Interval

from polytask.linear._estimators import _LinearBase, _RegressorBase
from polytask.linear._penalties import L21, Clustered, Dirty, MeanRegularized, TraceNorm

__all__ = [
    "ClusteredRegressor",
    "DirtyRegressor",
    "L21Regressor",
    "MeanRegularizedRegressor",
    "TraceNormRegressor",
]


class L21Regressor(_RegressorBase):
    """Joint feature selection: ``loss + alpha sum_j ||W_j,:||_2``
    (a feature is used by all tasks or none).

    The squared loss of every task, with the :class:`L21` penalty.

    Parameters
    ----------
    alpha : float, default=1.0
        Level of the joint-sparsity penalty ``alpha sum_j ||W_j,:||_2``, ``>= 0``.
    normalization : {"sum", "mean"}, default="mean"
        Task weights of the loss (see :class:`MultiTaskRegressor`).
    fit_intercept : bool, default=True
        Fit an unpenalised intercept per task.
    solver : solver object or None, default=None
        None picks one automatically (see :func:`choose_solver`).
    max_iter : int, default=1000
        Maximum number of solver iterations.
    tol : float, default=1e-6
        Tolerance on the certified stopping criterion.
    warm_start : bool, default=False
        Start from the previous solution when refitting.

    Attributes
    ----------
    coef_ : ndarray of shape (n_tasks, n_features)
    intercept_ : ndarray of shape (n_tasks,)
    tasks_ : ndarray of shape (n_tasks,)
    n_iter_ : int
    dual_gap_ : float or None
    stop_crit_ : float
    n_features_in_ : int
        As in :class:`MultiTaskRegressor`.

    References
    ----------
    A. Argyriou, T. Evgeniou and M. Pontil. Convex multi-task feature learning.
    Machine Learning 73(3), 2008.
    G. Obozinski, B. Taskar and M. I. Jordan. Joint covariate selection and joint subspace
    selection for multiple classification problems. Statistics and Computing 20(2), 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import L21Regressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 5))
    >>> Y = X @ np.outer(rng.normal(size=5), [1.0, 1.2, 0.8])
    >>> Y += 0.05 * rng.normal(size=(60, 3))
    >>> model = L21Regressor(alpha=0.05).fit(X, Y)
    >>> model.coef_.shape, bool(model.score(X, Y) > 0.9)
    ((3, 5), True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_LinearBase._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        normalization: str = "mean",
        fit_intercept: bool = True,
        solver: Any = None,
        max_iter: int = 1000,
        tol: float = 1e-6,
        warm_start: bool = False,
    ) -> None:
        self.alpha = alpha
        self.normalization = normalization
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _make_penalty(self) -> Any:
        return L21(self.alpha)


class TraceNormRegressor(_RegressorBase):
    """Low-rank multi-task model: ``loss + alpha ||W||_*``
    (tasks share a low-dimensional subspace).

    The squared loss of every task, with the :class:`TraceNorm` penalty.

    Parameters
    ----------
    alpha : float, default=1.0
        Level of the trace-norm penalty ``alpha ||W||_*``, ``>= 0``.
    normalization : {"sum", "mean"}, default="mean"
        Task weights of the loss (see :class:`MultiTaskRegressor`).
    fit_intercept : bool, default=True
        Fit an unpenalised intercept per task.
    solver : solver object or None, default=None
        None picks one automatically (see :func:`choose_solver`).
    max_iter : int, default=1000
        Maximum number of solver iterations.
    tol : float, default=1e-6
        Tolerance on the certified stopping criterion.
    warm_start : bool, default=False
        Start from the previous solution when refitting.

    Attributes
    ----------
    coef_ : ndarray of shape (n_tasks, n_features)
    intercept_ : ndarray of shape (n_tasks,)
    tasks_ : ndarray of shape (n_tasks,)
    n_iter_ : int
    dual_gap_ : float or None
    stop_crit_ : float
    n_features_in_ : int
        As in :class:`MultiTaskRegressor`.

    References
    ----------
    S. Ji and J. Ye. An accelerated gradient method for trace norm minimization. ICML 2009.
    T. K. Pong, P. Tseng, S. Ji and J. Ye. Trace norm regularization: reformulations,
    algorithms, and multi-task learning. SIAM J. Optim. 20(6), 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import TraceNormRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 5))
    >>> Y = X @ np.outer(rng.normal(size=5), [1.0, 1.2, 0.8])
    >>> Y += 0.05 * rng.normal(size=(60, 3))
    >>> model = TraceNormRegressor(alpha=0.05).fit(X, Y)
    >>> model.coef_.shape, bool(model.score(X, Y) > 0.9)
    ((3, 5), True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_LinearBase._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        normalization: str = "mean",
        fit_intercept: bool = True,
        solver: Any = None,
        max_iter: int = 1000,
        tol: float = 1e-6,
        warm_start: bool = False,
    ) -> None:
        self.alpha = alpha
        self.normalization = normalization
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _make_penalty(self) -> Any:
        return TraceNorm(self.alpha)


class MeanRegularizedRegressor(_RegressorBase):
    """Mean-regularised multi-task learning:
    ``loss + alpha sum_t ||w_t - w_bar||^2 + beta ||W||_F^2``.

    The squared loss of every task, with the :class:`MeanRegularized` penalty.

    Parameters
    ----------
    alpha : float, default=1.0
        Pull towards the mean model, ``alpha sum_t ||w_t - w_bar||^2``, ``>= 0``.
    beta : float, default=0.0
        Ridge level ``beta ||W||_F^2``, ``>= 0``.
    normalization : {"sum", "mean"}, default="mean"
        Task weights of the loss (see :class:`MultiTaskRegressor`).
    fit_intercept : bool, default=True
        Fit an unpenalised intercept per task.
    solver : solver object or None, default=None
        None picks one automatically (see :func:`choose_solver`).
    max_iter : int, default=1000
        Maximum number of solver iterations.
    tol : float, default=1e-6
        Tolerance on the certified stopping criterion.
    warm_start : bool, default=False
        Start from the previous solution when refitting.

    Attributes
    ----------
    coef_ : ndarray of shape (n_tasks, n_features)
    intercept_ : ndarray of shape (n_tasks,)
    tasks_ : ndarray of shape (n_tasks,)
    n_iter_ : int
    dual_gap_ : float or None
    stop_crit_ : float
    n_features_in_ : int
        As in :class:`MultiTaskRegressor`.

    References
    ----------
    T. Evgeniou and M. Pontil. Regularized multi-task learning. KDD 2004.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import MeanRegularizedRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 5))
    >>> Y = X @ np.outer(rng.normal(size=5), [1.0, 1.2, 0.8])
    >>> Y += 0.05 * rng.normal(size=(60, 3))
    >>> model = MeanRegularizedRegressor(alpha=0.1, beta=0.01).fit(X, Y)
    >>> model.coef_.shape, bool(model.score(X, Y) > 0.9)
    ((3, 5), True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_LinearBase._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 0.0,
        *,
        normalization: str = "mean",
        fit_intercept: bool = True,
        solver: Any = None,
        max_iter: int = 1000,
        tol: float = 1e-6,
        warm_start: bool = False,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.normalization = normalization
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _make_penalty(self) -> Any:
        return MeanRegularized(self.alpha, self.beta)


class DirtyRegressor(_RegressorBase):
    """Dirty model: ``W = B + S`` with
    ``loss + alpha_shared ||B||_{2,1} + alpha_specific ||S||_1``.

    The squared loss of every task, with the :class:`Dirty` penalty.

    Parameters
    ----------
    alpha_shared : float, default=1.0
        Level of the row-group (L2,1) penalty of the shared part, ``>= 0``.
    alpha_specific : float, default=1.0
        Level of the l1 penalty of the task-specific part, ``>= 0``.
    normalization : {"sum", "mean"}, default="mean"
        Task weights of the loss (see :class:`MultiTaskRegressor`).
    fit_intercept : bool, default=True
        Fit an unpenalised intercept per task.
    solver : solver object or None, default=None
        None picks one automatically (see :func:`choose_solver`).
    max_iter : int, default=1000
        Maximum number of solver iterations.
    tol : float, default=1e-6
        Tolerance on the certified stopping criterion.
    warm_start : bool, default=False
        Start from the previous solution when refitting.

    Attributes
    ----------
    coef_ : ndarray of shape (n_tasks, n_features)
    intercept_ : ndarray of shape (n_tasks,)
    tasks_ : ndarray of shape (n_tasks,)
    n_iter_ : int
    dual_gap_ : float or None
    stop_crit_ : float
    n_features_in_ : int
        As in :class:`MultiTaskRegressor`.

    References
    ----------
    A. Jalali, P. Ravikumar, S. Sanghavi and C. Ruan. A dirty model for multi-task
    learning. NIPS 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import DirtyRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 5))
    >>> Y = X @ np.outer(rng.normal(size=5), [1.0, 1.2, 0.8])
    >>> Y += 0.05 * rng.normal(size=(60, 3))
    >>> model = DirtyRegressor(alpha_shared=0.05, alpha_specific=0.05).fit(X, Y)
    >>> model.coef_.shape, bool(model.score(X, Y) > 0.9)
    ((3, 5), True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_LinearBase._parameter_constraints,
        "alpha_shared": [Interval(Real, 0, None, closed="left")],
        "alpha_specific": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        alpha_shared: float = 1.0,
        alpha_specific: float = 1.0,
        *,
        normalization: str = "mean",
        fit_intercept: bool = True,
        solver: Any = None,
        max_iter: int = 1000,
        tol: float = 1e-6,
        warm_start: bool = False,
    ) -> None:
        self.alpha_shared = alpha_shared
        self.alpha_specific = alpha_specific
        self.normalization = normalization
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _make_penalty(self) -> Any:
        return Dirty(self.alpha_shared, self.alpha_specific)


class ClusteredRegressor(_RegressorBase):
    """Convex clustered multi-task learning (Zhou, Chen & Ye 2011), see :class:`Clustered`.

    The squared loss of every task, with the :class:`Clustered` penalty.

    Parameters
    ----------
    alpha : float, default=1.0
        Clustering strength, ``> 0``.
    beta : float, default=1.0
        Ridge level, ``> 0``.
    n_clusters : int, default=2
        Number of task clusters, ``1 <= n_clusters <= n_tasks``.
    normalization : {"sum", "mean"}, default="mean"
        Task weights of the loss (see :class:`MultiTaskRegressor`).
    fit_intercept : bool, default=True
        Fit an unpenalised intercept per task.
    solver : solver object or None, default=None
        None picks one automatically (see :func:`choose_solver`).
    max_iter : int, default=1000
        Maximum number of solver iterations.
    tol : float, default=1e-6
        Tolerance on the certified stopping criterion.
    warm_start : bool, default=False
        Start from the previous solution when refitting.

    Attributes
    ----------
    coef_ : ndarray of shape (n_tasks, n_features)
    intercept_ : ndarray of shape (n_tasks,)
    tasks_ : ndarray of shape (n_tasks,)
    n_iter_ : int
    dual_gap_ : float or None
    stop_crit_ : float
    n_features_in_ : int
        As in :class:`MultiTaskRegressor`.

    References
    ----------
    J. Zhou, J. Chen and J. Ye. Clustered multi-task learning via alternating structure
    optimization. NIPS 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import ClusteredRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 5))
    >>> Y = X @ np.outer(rng.normal(size=5), [1.0, 1.2, 0.8])
    >>> Y += 0.05 * rng.normal(size=(60, 3))
    >>> model = ClusteredRegressor(alpha=0.1, beta=0.01, n_clusters=1).fit(X, Y)
    >>> model.coef_.shape, bool(model.score(X, Y) > 0.9)
    ((3, 5), True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_LinearBase._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "beta": [Interval(Real, 0, None, closed="neither")],
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        n_clusters: int = 2,
        *,
        normalization: str = "mean",
        fit_intercept: bool = True,
        solver: Any = None,
        max_iter: int = 1000,
        tol: float = 1e-6,
        warm_start: bool = False,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.n_clusters = n_clusters
        self.normalization = normalization
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _make_penalty(self) -> Any:
        return Clustered(self.alpha, self.beta, self.n_clusters)
