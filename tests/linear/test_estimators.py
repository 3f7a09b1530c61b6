"""Estimators: scikit-learn contract, equivalent data forms, references, input errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import MultiTaskLasso
from sklearn.utils.estimator_checks import parametrize_with_checks

from polytask.linear import (
    ADMM,
    FISTA,
    L21,
    ClusteredClassifier,
    ClusteredRegressor,
    DirtyClassifier,
    DirtyRegressor,
    HierarchicalBayesRegressor,
    L21Classifier,
    L21Regressor,
    Lasso,
    MeanRegularizedClassifier,
    MeanRegularizedRegressor,
    MeanRegularizedSolver,
    MultiTaskClassifier,
    MultiTaskRegressor,
    ProxNewton,
    Ridge,
    TraceNorm,
    TraceNormClassifier,
    TraceNormRegressor,
)

# The checks fit single-task data, on which only one cluster is possible, and forcibly
# set n_clusters=2 in this one check.
_CLUSTER_XFAIL = {
    "check_methods_sample_order_invariance": "sets n_clusters=2 on a single task; "
    "Clustered needs n_clusters <= n_tasks"
}
ESTIMATORS = [
    MultiTaskRegressor(),
    MultiTaskRegressor(penalty=[L21(0.01), Ridge(0.01)]),
    L21Regressor(),
    TraceNormRegressor(),
    MeanRegularizedRegressor(),
    DirtyRegressor(alpha_shared=0.01, alpha_specific=0.01),
    ClusteredRegressor(alpha=0.01, beta=0.01, n_clusters=1),
    HierarchicalBayesRegressor(),
    HierarchicalBayesRegressor(mean_prior="gaussian", covariance="full"),
    MultiTaskClassifier(penalty=L21(0.01), tol=1e-4),
    L21Classifier(alpha=0.01, tol=1e-4),
    TraceNormClassifier(alpha=0.01, tol=1e-4),
    MeanRegularizedClassifier(alpha=0.01, tol=1e-4),
    DirtyClassifier(alpha_shared=0.01, alpha_specific=0.01, tol=1e-4),
    ClusteredClassifier(alpha=0.01, beta=0.01, n_clusters=1, tol=1e-4),
]


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: _CLUSTER_XFAIL if "Clustered" in type(est).__name__ else {},
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _shared(seed=0, n=60, d=6, T=3, missing=0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = np.zeros((d, T))
    W[:2] = rng.normal(size=(2, T))
    Y = X @ W + 0.1 * rng.normal(size=(n, T)) + np.arange(T)
    if missing:
        Y[rng.random(Y.shape) < missing] = np.nan
    return X, Y


def test_l21_regressor_matches_sklearn_multitask_lasso_with_intercepts():
    X, Y = _shared()
    ours = L21Regressor(alpha=0.05, tol=1e-10, max_iter=10000).fit(X, Y)
    ref = MultiTaskLasso(alpha=0.05, tol=1e-12, max_iter=100000).fit(X, Y)
    assert np.allclose(ours.coef_, ref.coef_, atol=1e-4)
    assert np.allclose(ours.intercept_, ref.intercept_, atol=1e-4)
    assert ours.dual_gap_ is not None and ours.stop_crit_ <= 1e-10


def test_mean_regularized_regressor_solves_the_stationarity_system():
    # Independent reference: the full (d T) x (d T) normal equations, built with Kronecker
    # products, for the "sum" loss without intercept.
    X, Y = _shared(seed=1)
    d, T = X.shape[1], Y.shape[1]
    alpha, beta = 0.7, 0.2
    model = MeanRegularizedRegressor(
        alpha=alpha, beta=beta, normalization="sum", fit_intercept=False
    ).fit(X, Y)
    P = np.eye(T) - np.ones((T, T)) / T
    A = np.kron(np.eye(T), X.T @ X) + 2 * alpha * np.kron(P, np.eye(d)) + 2 * beta * np.eye(d * T)
    w = np.linalg.solve(A, (X.T @ Y).T.ravel())
    assert np.allclose(model.coef_, w.reshape(T, d), atol=1e-8)
    assert model.solver_.__class__ is MeanRegularizedSolver
    fista = MultiTaskRegressor(
        penalty=[Ridge(1e-12), MeanRegularizedRegressor(alpha, beta)._make_penalty()],
        normalization="sum",
        fit_intercept=False,
        tol=1e-10,
        max_iter=20000,
    ).fit(X, Y)
    assert np.allclose(fista.coef_, model.coef_, atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: L21Regressor(0.05),
        lambda: TraceNormRegressor(0.05),
        lambda: DirtyRegressor(0.05, 0.1),
        lambda: MeanRegularizedRegressor(0.3, 0.01),
    ],
)
def test_three_per_task_forms_and_masked_shared_design_agree(make):
    # Each sample belongs to one task: (X, y, task), list of pairs, dict of pairs, and a
    # shared design whose Y is NaN outside the sample's task are the same problem.
    rng = np.random.default_rng(2)
    X, Yfull = _shared(seed=2, n=90)
    task = rng.integers(0, 3, size=90)
    y = Yfull[np.arange(90), task]
    pairs = [(X[task == t], y[task == t]) for t in range(3)]
    Ymask = np.full_like(Yfull, np.nan)
    Ymask[np.arange(90), task] = y
    kwargs = {"tol": 1e-10, "max_iter": 20000}
    fits = [
        make().set_params(**kwargs).fit(X, y, task=task),
        make().set_params(**kwargs).fit(pairs),
        make().set_params(**kwargs).fit({"a": pairs[0], "b": pairs[1], "c": pairs[2]}),
        make().set_params(**kwargs).fit(X, Ymask),
    ]
    for other in fits[1:]:
        assert np.allclose(other.coef_, fits[0].coef_, atol=1e-6)
        assert np.allclose(other.intercept_, fits[0].intercept_, atol=1e-6)
    assert fits[2].tasks_.tolist() == ["a", "b", "c"]
    full = fits[0].predict(X)
    assert full.shape == (90, 3)
    assert np.allclose(fits[0].predict(X, task=task), full[np.arange(90), task])
    assert np.allclose(
        fits[2].predict(X, task=np.array(["a", "b", "c"])[task]), full[np.arange(90), task]
    )


def test_intercepts_absorb_per_task_shifts():
    X, Y = _shared(seed=3, missing=0.2)
    base = L21Regressor(0.05, tol=1e-10).fit(X, Y)
    shifted = L21Regressor(0.05, tol=1e-10).fit(X, Y + np.array([10.0, -5.0, 2.0]))
    assert np.allclose(shifted.coef_, base.coef_, atol=1e-8)
    assert np.allclose(shifted.intercept_ - base.intercept_, [10.0, -5.0, 2.0], atol=1e-8)


def test_constant_target_is_allowed_and_fit_by_the_intercept():
    X, Y = _shared(seed=4)
    Y[:, 1] = 3.0
    model = MultiTaskRegressor(penalty=Lasso(0.01), tol=1e-10).fit(X, Y)
    assert np.allclose(model.coef_[1], 0.0) and model.intercept_[1] == pytest.approx(3.0)


def test_warm_start_reuses_the_previous_solution():
    X, Y = _shared(seed=5)
    model = L21Regressor(0.05, warm_start=True, solver=FISTA(), tol=1e-8).fit(X, Y)
    first = model.n_iter_
    model.fit(X, Y)
    assert first > 2 and model.n_iter_ <= 2
    dirty = DirtyRegressor(0.05, 0.1, warm_start=True, tol=1e-8).fit(X, Y)
    assert dirty.coef_blocks_.shape == (2, 3, 6)
    assert np.allclose(dirty.coef_blocks_.sum(0), dirty.coef_)
    dirty.fit(X, Y)
    assert dirty.n_iter_ <= 5


@pytest.mark.parametrize("labels", [(0.0, 1.0), (-1.0, 1.0), ("no", "yes")])
def test_classifier_label_encodings_give_the_same_model(labels):
    X, Y = _shared(seed=6)
    Z = Y - np.median(Y, axis=0) > 0
    ref = L21Classifier(0.01, tol=1e-10).fit(X, Z.astype(float))
    coded = np.where(Z, labels[1], labels[0])
    model = L21Classifier(0.01, tol=1e-10).fit(X, coded)
    assert np.allclose(model.coef_, ref.coef_, atol=1e-6)
    assert model.classes_.tolist() == list(labels)
    assert np.all(model.predict(X) == np.where(ref.predict(X) == 1.0, labels[1], labels[0]))
    proba = model.predict_proba(X)
    assert proba.shape == (60, 3) and np.all((proba >= 0) & (proba <= 1))
    one = model.predict_proba(X, task=np.zeros(60, dtype=int))
    assert one.shape == (60, 2) and np.allclose(one[:, 1], proba[:, 0])


def test_classifier_per_task_and_missing_labels():
    X, Y = _shared(seed=7, missing=0.3)
    B = np.where(np.isnan(Y), np.nan, (Y > np.nanmedian(Y, axis=0)).astype(float))
    model = TraceNormClassifier(0.01, tol=1e-8).fit(X, B)
    keep = ~np.isnan(B)
    assert model.score(X, B) == pytest.approx(np.mean(model.predict(X)[keep] == B[keep]))
    assert model.score(X, B) > 0.8


def test_auto_solver_choice_and_user_solver_gets_max_iter_tol():
    X, Y = _shared(seed=8)
    assert isinstance(L21Regressor(0.05).fit(X, Y).solver_, ADMM)
    assert isinstance(L21Classifier(0.05).fit(X, (Y > 0).astype(float)).solver_, ProxNewton)
    with_ridge = MultiTaskClassifier([L21(0.05), Ridge(0.1)]).fit(X, (Y > 0).astype(float))
    assert isinstance(with_ridge.solver_, FISTA)
    model = L21Regressor(0.05, solver=FISTA(restart=None), max_iter=77, tol=1e-3).fit(X, Y)
    assert model.solver_ == FISTA(max_iter=77, tol=1e-3, restart=None)


@pytest.mark.parametrize(
    ("est", "args", "kwargs", "match"),
    [
        (L21Regressor(alpha=-1.0), "shared", {}, "'alpha' parameter of L21Regressor"),
        (L21Regressor(), "nan_X", {}, "Input X contains NaN"),
        (L21Regressor(), "shared_task_len", {}, r"task must hold one task label per sample"),
        (L21Regressor(), "y_none", {}, "requires y to be passed"),
        (L21Regressor(), "empty_task", {}, "task 1 has no observed label"),
        (L21Regressor(), "bad_pair", {}, "task 1: X_t must be 2-D with 3 rows"),
        (L21Classifier(), "multiclass", {}, "Only binary classification is supported"),
        (L21Classifier(), "one_class_task", {}, "task 2 has labels of one class only"),
        (L21Classifier(), "continuous", {}, "Unknown label type"),
        (L21Classifier(solver=ADMM()), "binary", {}, r"ADMM needs datafit\.prox_solve"),
        (
            MultiTaskRegressor(penalty=L21(0.1), solver=MeanRegularizedSolver()),
            "shared",
            {},
            "MeanRegularizedSolver solves the squared loss with one MeanRegularized",
        ),
        (
            MultiTaskRegressor(penalty=[L21(0.1), TraceNorm(0.1)]),
            "shared",
            {},
            "at most one non-smooth penalty",
        ),
        (MultiTaskRegressor(normalization="median"), "shared", {}, "'normalization' parameter"),
    ],
)
def test_bad_input_raises(est, args, kwargs, match):
    X, Y = _shared(seed=9)
    data = {
        "shared": (X, Y),
        "nan_X": (np.where(np.eye(60, 6) > 0, np.nan, X), Y),
        "shared_task_len": (X, Y[:, 0]),
        "y_none": (X, None),
        "empty_task": (X, np.column_stack([Y[:, 0], np.full(60, np.nan)])),
        "binary": (X, (Y > 0).astype(float)),
        "multiclass": (X, np.digitize(Y[:, 0], [-1, 1]).astype(float)),
        "one_class_task": (X, np.column_stack([Y[:, :2] > 0, np.ones(60)]).astype(float)),
        "continuous": (X, Y[:, 0]),
    }
    if args == "bad_pair":
        with pytest.raises(ValueError, match=match):
            est.fit([(X[:5], Y[:5, 0]), (X[:4], Y[:3, 0])])
        return
    Xa, ya = data[args]
    extra = {"task": np.zeros(59)} if args == "shared_task_len" else {}
    with pytest.raises(ValueError, match=match):
        est.fit(Xa, ya, **extra, **kwargs)


def test_predict_errors_name_the_task_and_features():
    X, Y = _shared(seed=10)
    task = np.repeat(["x", "y", "z"], 20)
    model = L21Regressor(0.05).fit(X, Y[np.arange(60), np.repeat([0, 1, 2], 20)], task=task)
    with pytest.raises(ValueError, match="unknown task label 'w'"):
        model.predict(X[:2], task=["x", "w"])
    with pytest.raises(ValueError, match="expecting 6 features"):
        model.predict(X[:, :4])


def test_import_does_not_pull_torch():
    code = "import polytask.linear, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


SCHOOL = Path(__file__).resolve().parents[3] / "shared" / "data" / "school" / "school.mat"


@pytest.mark.skipif(not SCHOOL.exists(), reason="School data not available")
def test_school_optima_of_the_benchmark():
    # linear.md: certified optima of three School objectives (cvxpy + Clarabel).
    from scipy.io import loadmat

    raw = loadmat(SCHOOL)
    pairs = [
        (np.asarray(x, float), np.asarray(y, float).ravel())
        for x, y in zip(raw["X"][0], raw["Y"][0], strict=True)
    ]
    opts = {"normalization": "sum", "fit_intercept": False, "tol": 1e-8}
    cases = [
        (L21Regressor(10.0, **opts), 674696.2207250588),
        (TraceNormRegressor(10.0, **opts), 673051.1272110625),
        (MeanRegularizedRegressor(1.0, 0.1, **opts), 691226.759017883),
    ]
    for model, optimum in cases:
        model.fit(pairs)
        assert model.objective_ == pytest.approx(optimum, rel=1e-7)
