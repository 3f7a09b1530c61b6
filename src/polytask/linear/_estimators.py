"""scikit-learn estimators of linear multi-task models: generic regressor and classifier.

Each estimator composes a datafit (squared or logistic loss), a penalty object and a
solver; ``fit`` accepts a shared design ``fit(X, Y)`` (``Y`` of shape (n_samples,
n_tasks), ``NaN`` = missing label) or per-task designs, ``fit(X, y, task=ids)`` or
``fit([(X_1, y_1), ...])``.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from polytask.linear._datafit_base import BaseDatafit
from polytask.linear._datafit_logistic import LogisticLoss
from polytask.linear._datafits import SquaredLoss
from polytask.linear._objective import split_penalties
from polytask.linear._solver_choice import choose_solver
from polytask.linear._task_input import ParsedInput, parse_fit_input, task_indices

__all__ = ["MultiTaskClassifier", "MultiTaskRegressor"]

FArray = NDArray[np.float64]


class _LinearBase(BaseEstimator):
    """Fitting machinery shared by every linear multi-task estimator."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "normalization": [StrOptions({"sum", "mean"})],
        "fit_intercept": ["boolean"],
        "solver": [None, HasMethods(["solve"])],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
    }
    _classification: ClassVar[bool] = False

    # set by subclasses' __init__
    normalization: str
    fit_intercept: bool
    solver: Any
    max_iter: int
    tol: float
    warm_start: bool

    def _make_penalty(self) -> Any:
        raise NotImplementedError

    def _make_datafit(self) -> BaseDatafit:
        cls = LogisticLoss if self._classification else SquaredLoss
        return cls(normalization=self.normalization, fit_intercept=self.fit_intercept)  # type: ignore[arg-type]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _prepare(self, X: Any, y: Any, task: Any) -> tuple[ParsedInput, BaseDatafit, Any, tuple]:
        self._validate_params()
        parsed = parse_fit_input(self, X, y, task, self._classification)
        datafit = self._make_datafit().initialize(parsed.design)
        prox, smooth = split_penalties(self._make_penalty())
        return parsed, datafit, prox, smooth

    def fit(self, X: Any, y: Any = None, task: Any = None) -> Any:
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list of (X_t, y_t) pairs
            Shared design, stacked per-task designs (with ``task``), or one pair per
            task (a dict ``{name: (X_t, y_t)}`` names the tasks).
        y : array-like of shape (n_samples, n_tasks) or (n_samples,), optional
            Labels; ``NaN`` marks a missing label. 1-D with ``task``.
        task : array-like of shape (n_samples,), optional
            Task label (int or str) of every sample: per-task designs.

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        ValueError
            On invalid parameters or data (the message names the argument or task).
        """
        parsed, datafit, prox, smooth = self._prepare(X, y, task)
        solver = choose_solver(self, datafit, prox, smooth)
        res = solver.solve(datafit, prox, W0=self._warm_start_point(prox, parsed), smooth=smooth)
        self.tasks_ = parsed.tasks
        self.n_tasks_ = int(parsed.tasks.size)
        self._single_output = parsed.single_output
        if parsed.classes is not None:
            self.classes_ = parsed.classes
        self.coef_ = np.ascontiguousarray(res.W.T)
        if res.V.ndim == 3:
            self.coef_blocks_ = np.ascontiguousarray(np.swapaxes(res.V, 1, 2))
        elif hasattr(self, "coef_blocks_"):
            del self.coef_blocks_
        self.intercept_ = np.asarray(datafit.intercept(res.W), dtype=np.float64)
        self.n_iter_ = max(int(res.n_iter), 1)
        self.dual_gap_ = res.dual_gap
        self.stop_crit_ = float(res.stop_crit)
        self.objective_ = float(res.objective)
        self.solver_ = solver
        return self

    def _warm_start_point(self, prox: Any, parsed: ParsedInput) -> FArray | None:
        if not self.warm_start or not hasattr(self, "coef_"):
            return None
        shape = (parsed.design.n_tasks, parsed.design.n_features)
        if self.coef_.shape != shape:
            return None
        if int(getattr(prox, "n_blocks", 1)) > 1 and hasattr(self, "coef_blocks_"):
            return np.swapaxes(self.coef_blocks_, 1, 2)
        return self.coef_.T

    def _linear_scores(self, X: Any, task: Any) -> FArray:
        check_is_fitted(self, "coef_")
        Xv = validate_data(self, X, reset=False, dtype=np.float64)
        Z = Xv @ self.coef_.T + self.intercept_
        if task is not None:
            idx = task_indices(self.tasks_, task, Xv.shape[0])
            return Z[np.arange(Xv.shape[0]), idx]
        return Z[:, 0] if self._single_output else Z


class _RegressorBase(RegressorMixin, _LinearBase):
    """Squared loss: ``predict`` and a missing-label-aware ``score``."""

    def predict(self, X: Any, task: Any = None) -> FArray:
        """Predict every task, or each sample's own task.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        task : array-like of shape (n_samples,), optional
            Task label of every sample.

        Returns
        -------
        ndarray of shape (n_samples, n_tasks), or (n_samples,) with ``task`` or after
        fitting a 1-D ``y``.
        """
        return self._linear_scores(X, task)

    def score(self, X: Any, y: Any, task: Any = None, sample_weight: Any = None) -> float:
        """Coefficient of determination R^2, averaged over tasks (missing labels skipped).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples, n_tasks) or (n_samples,)
            True labels, ``NaN`` = missing.
        task : array-like of shape (n_samples,), optional
            Task label of every sample (per-task data): R^2 is computed per task.
        sample_weight : None
            Not supported; must be None.

        Returns
        -------
        float
        """
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported; pass None.")
        pred = self.predict(X, task=task)
        yt = np.asarray(y, dtype=np.float64)
        if task is not None:
            groups = task_indices(self.tasks_, task, yt.shape[0])
            cols = [(yt[groups == g], pred[groups == g]) for g in np.unique(groups)]
        else:
            yt2 = yt.reshape(yt.shape[0], -1)
            pr2 = pred.reshape(pred.shape[0], -1)
            cols = [(yt2[:, t], pr2[:, t]) for t in range(yt2.shape[1])]
        scores = []
        for truth, guess in cols:
            keep = ~np.isnan(truth)
            truth, guess = truth[keep], guess[keep]
            if truth.size == 0:
                continue
            ss_res = float(np.sum((truth - guess) ** 2))
            ss_tot = float(np.sum((truth - truth.mean()) ** 2))
            scores.append(1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0))
        return float(np.mean(scores))


class _ClassifierBase(ClassifierMixin, _LinearBase):
    """Logistic loss: decision function, probabilities and labels."""

    _classification: ClassVar[bool] = True

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def decision_function(self, X: Any, task: Any = None) -> FArray:
        """Scores ``X w_t + b_t`` (positive means ``classes_[1]``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        task : array-like of shape (n_samples,), optional

        Returns
        -------
        ndarray of shape (n_samples, n_tasks), or (n_samples,) with ``task`` or after
        fitting a 1-D ``y``.
        """
        return self._linear_scores(X, task)

    def predict_proba(self, X: Any, task: Any = None) -> FArray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        task : array-like of shape (n_samples,), optional

        Returns
        -------
        ndarray
            (n_samples, 2) with columns ordered as ``classes_`` when there is one task per
            sample (``task`` given, or a 1-D ``y`` was fitted); otherwise
            (n_samples, n_tasks), the probability of ``classes_[1]`` for every task.
        """
        p = expit(self.decision_function(X, task))
        if p.ndim == 1:
            return np.column_stack([1.0 - p, p])
        return p

    def predict(self, X: Any, task: Any = None) -> NDArray[Any]:
        """Predicted labels (from ``classes_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        task : array-like of shape (n_samples,), optional

        Returns
        -------
        ndarray of shape (n_samples, n_tasks), or (n_samples,) with ``task`` or after
        fitting a 1-D ``y``.
        """
        positive = self.decision_function(X, task) > 0
        return self.classes_[positive.astype(int)]

    def score(self, X: Any, y: Any, task: Any = None, sample_weight: Any = None) -> float:
        """Accuracy over all observed labels (``NaN`` = missing in a numeric ``y``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples, n_tasks) or (n_samples,)
        task : array-like of shape (n_samples,), optional
        sample_weight : None
            Not supported; must be None.

        Returns
        -------
        float
        """
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported; pass None.")
        pred = self.predict(X, task=task)
        yt = np.asarray(y)
        if yt.dtype.kind in "fc":
            keep = ~np.isnan(yt)
            return float(np.mean(pred[keep] == yt[keep]))
        return float(np.mean(pred == yt))


_DOC_COMMON = """
    normalization : {"sum", "mean"}, default="mean"
        Task weights of the loss: ``"mean"`` averages every task's loss over its observed
        samples (scikit-learn's convention), ``"sum"`` adds them (MALSAR's).
    fit_intercept : bool, default=True
        Fit an unpenalised intercept per task (exactly, by centering for the squared
        loss and by 1-D minimisation for the logistic loss).
    solver : solver object or None, default=None
        ``FISTA()``, ``ADMM()``, ``ProxNewton()``, ``WorkingSet()``,
        ``MeanRegularizedSolver()``, ``GraphRegularizedSolver()`` (exact, for
        graph-regularised least squares); None picks one (see
        :func:`choose_solver`). The estimator's ``max_iter`` and ``tol`` override the
        solver's own.
    max_iter : int, default=1000
        Maximum number of solver iterations.
    tol : float, default=1e-6
        Tolerance on the solver's certified stopping criterion (relative duality gap or
        relative subdifferential distance).
    warm_start : bool, default=False
        Start from the previous solution when refitting data of the same shape.
"""

_DOC_ATTRIBUTES = """
    Attributes
    ----------
    coef_ : ndarray of shape (n_tasks, n_features)
        Weights of every task (the transpose of the internal ``W``).
    coef_blocks_ : ndarray of shape (2, n_tasks, n_features)
        The two parts of a composite penalty (only then); ``coef_`` is their sum.
    intercept_ : ndarray of shape (n_tasks,)
        Intercepts (zeros when ``fit_intercept=False``).
    tasks_ : ndarray of shape (n_tasks,)
        Task labels: column indices (or DataFrame columns) of ``Y``, the sorted unique
        ``task`` labels, or the keys / positions of the per-task pairs.
    n_tasks_ : int
        Number of tasks.
    n_iter_ : int
        Solver iterations; the optimality check of the starting point counts as one,
        so a model already optimal at its start reports 1.
    dual_gap_ : float or None
        Duality gap at the solution when the penalty admits one.
    stop_crit_ : float
        Certified stopping criterion reached (compare with ``tol``).
    objective_ : float
        Objective value at the solution.
    solver_ : solver object
        The solver used.
    n_features_in_ : int
        Number of features seen during fit.
"""


class MultiTaskRegressor(_RegressorBase):
    __doc__ = (
        """Multi-task least squares with any penalty object (or a list of them).

    Minimises ``sum_t c_t / 2 ||y_t - X_t w_t - b_t||^2 + pen(W)`` where ``pen`` is the
    given penalty (one non-smooth penalty plus any smooth ones when a list is given).

    Parameters
    ----------
    penalty : penalty object, list of penalty objects, or None, default=None
        E.g. ``L21(alpha=0.1)``, ``[L21(0.1), Ridge(0.01)]``; None fits plain least
        squares."""
        + _DOC_COMMON
        + _DOC_ATTRIBUTES
        + """
    Notes
    -----
    A task whose observed labels are constant is accepted: with an intercept the
    constant is fitted by ``intercept_`` (a task-separable penalty then gives that task
    zero weights). Missing labels (``NaN``) are skipped task by task; a task with no
    observed label is an error naming the task.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import L21, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 6))
    >>> Y = X[:, :2] @ rng.normal(size=(2, 3)) + 0.05 * rng.normal(size=(60, 3))
    >>> model = MultiTaskRegressor(penalty=L21(alpha=0.05)).fit(X, Y)
    >>> model.coef_.shape, model.predict(X).shape
    ((3, 6), (60, 3))
    >>> bool(model.score(X, Y) > 0.9)
    True
    """
    )

    def __init__(
        self,
        penalty: Any = None,
        *,
        normalization: str = "mean",
        fit_intercept: bool = True,
        solver: Any = None,
        max_iter: int = 1000,
        tol: float = 1e-6,
        warm_start: bool = False,
    ) -> None:
        self.penalty = penalty
        self.normalization = normalization
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _make_penalty(self) -> Any:
        return self.penalty


class MultiTaskClassifier(_ClassifierBase):
    __doc__ = (
        """Multi-task logistic regression with any penalty object (or a list of them).

    Minimises ``sum_t c_t sum_i [log(1 + exp(z_ti)) - y_ti z_ti] + pen(W)`` with
    ``z_t = X_t w_t + b_t``. Every task is binary; labels may be any two values (they
    are sorted into ``classes_``, the second one is the positive class), ``NaN`` marks a
    missing label in a numeric ``Y``.

    Parameters
    ----------
    penalty : penalty object, list of penalty objects, or None, default=None
        E.g. ``L21(alpha=0.01)``; None fits unpenalised logistic regression."""
        + _DOC_COMMON
        + _DOC_ATTRIBUTES
        + """    classes_ : ndarray of shape (2,)
        The two labels.

    Notes
    -----
    Labels are checked once over all tasks: exactly two values overall (a third one
    raises "Only binary classification is supported"). With ``fit_intercept=True`` every
    task needs both classes (its intercept would be infinite otherwise): the error
    names the task.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import L21, MultiTaskClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 5))
    >>> Y = (X[:, :2] @ rng.normal(size=(2, 3)) > 0).astype(float)
    >>> model = MultiTaskClassifier(penalty=L21(alpha=0.01)).fit(X, Y)
    >>> model.predict(X).shape, bool(model.score(X, Y) > 0.9)
    ((80, 3), True)
    """
    )

    def __init__(
        self,
        penalty: Any = None,
        *,
        normalization: str = "mean",
        fit_intercept: bool = True,
        solver: Any = None,
        max_iter: int = 1000,
        tol: float = 1e-6,
        warm_start: bool = False,
    ) -> None:
        self.penalty = penalty
        self.normalization = normalization
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _make_penalty(self) -> Any:
        return self.penalty
