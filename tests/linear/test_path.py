"""Regularisation paths and cross-validation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import KFold

from polytask.linear import (
    FISTA,
    L21,
    Dirty,
    L21Regressor,
    LogisticLoss,
    MeanRegularized,
    MeanRegularizedRegressor,
    MultiTaskCV,
    SquaredLoss,
    TraceNorm,
    alpha_max,
    regularization_path,
)


def _data(seed=0, n=60, d=8, T=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = np.zeros((d, T))
    W[:3] = rng.normal(size=(3, T))
    return X, X @ W + 0.3 * rng.normal(size=(n, T))


def test_alpha_max_matches_the_closed_form_and_is_sharp():
    X, Y = _data()
    n = X.shape[0]
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    expected = np.sqrt(((Xc.T @ Yc) ** 2).sum(axis=1)).max() / n  # scikit-learn's formula
    datafit = SquaredLoss("mean", fit_intercept=True).initialize(X, Y)
    top = alpha_max(datafit, L21)
    assert top == pytest.approx(expected, rel=1e-12)
    above = FISTA(tol=1e-10).solve(datafit, L21(1.001 * top))
    below = FISTA(tol=1e-10).solve(datafit, L21(0.99 * top))
    assert np.all(above.W == 0) and np.any(below.W != 0)
    top_dirty = alpha_max(datafit, lambda a: Dirty(a, 2.0 * a))
    above = FISTA(tol=1e-10).solve(datafit, Dirty(1.001 * top_dirty, 2.002 * top_dirty))
    assert np.all(above.W == 0)
    assert np.any(FISTA(tol=1e-10).solve(datafit, Dirty(0.99 * top_dirty, 1.98 * top_dirty)).W)


@pytest.mark.parametrize("factory", [L21, TraceNorm, lambda a: Dirty(a, 1.5 * a)])
def test_path_equals_independent_cold_fits(factory):
    X, Y = _data(seed=1)
    path = regularization_path(X, Y, factory, n_alphas=6, eps=1e-2, tol=1e-10, max_iter=20000)
    assert path.alphas.shape == (6,) and np.all(np.diff(path.alphas) < 0)
    assert np.all(path.coefs[0] == 0)
    datafit = SquaredLoss("mean").initialize(X, Y)
    for a, coef in zip(path.alphas[1:], path.coefs[1:], strict=True):
        cold = FISTA(tol=1e-12, max_iter=50000).solve(datafit, factory(a))
        assert np.allclose(coef, cold.W.T, atol=1e-5)
    assert np.all(path.stop_crits <= 1e-10)
    assert np.all(np.isfinite(path.dual_gaps))


def test_path_with_logistic_datafit_and_per_task_designs():
    X, Y = _data(seed=2, n=90)
    task = np.repeat([0, 1, 2], 30)
    y = (Y[np.arange(90), task] > 0).astype(float)
    path = regularization_path(
        X, y, L21, task=task, datafit=LogisticLoss("mean", fit_intercept=True), n_alphas=4
    )
    assert path.coefs.shape == (4, 3, 8) and path.intercepts.shape == (4, 3)
    assert np.all(path.coefs[0] == 0)
    # the intercept at alpha_max is the log-odds of every task
    p = np.array([y[task == t].mean() for t in range(3)])
    assert np.allclose(path.intercepts[0], np.log(p / (1 - p)), atol=1e-8)
    pairs = [(X[task == t], y[task == t]) for t in range(3)]
    again = regularization_path(
        pairs, None, L21, datafit=LogisticLoss("mean", fit_intercept=True), n_alphas=4
    )
    assert np.allclose(again.coefs, path.coefs)


def test_path_errors():
    X, Y = _data()
    with pytest.raises(ValueError, match="alphas is required: MeanRegularized"):
        regularization_path(X, Y, lambda a: MeanRegularized(a))
    with pytest.raises(ValueError, match="alphas must be a non-empty array"):
        regularization_path(X, Y, L21, alphas=[-1.0])
    with pytest.raises(ValueError, match="one entry per sample"):
        regularization_path(X, Y[:, 0], L21, task=np.zeros(5))


def test_cv_scores_match_a_manual_cross_validation():
    X, Y = _data(seed=3)
    search = MultiTaskCV(L21Regressor(tol=1e-10), n_alphas=5, cv=3, random_state=1).fit(X, Y)
    assert search.scores_.shape == (5, 3)
    folds = KFold(3, shuffle=True, random_state=1).split(X)
    for f, (tr, te) in enumerate(folds):
        for i, a in enumerate(search.alphas_):
            model = L21Regressor(alpha=a, tol=1e-10).fit(X[tr], Y[tr])
            assert search.scores_[i, f] == pytest.approx(model.score(X[te], Y[te]), abs=1e-6)
    best = search.alphas_[np.argmax(search.scores_.mean(1))]
    assert search.alpha_ == best and search.best_estimator_.alpha == best
    assert search.predict(X).shape == Y.shape
    assert search.score(X, Y) == pytest.approx(search.best_estimator_.score(X, Y))


def test_cv_per_task_folds_hold_every_task_and_custom_scoring():
    X, Y = _data(seed=4, n=90)
    task = np.repeat(["a", "b", "c"], 30)
    y = Y[np.arange(90), np.repeat([0, 1, 2], 30)]
    seen = []

    def neg_mse(est, Xv, yv, task=None):
        seen.append(sorted(set(task)))
        return -float(np.mean((est.predict(Xv, task=task) - yv) ** 2))

    search = MultiTaskCV(
        MeanRegularizedRegressor(), alphas=[10.0, 1.0, 0.1], cv=3, scoring=neg_mse
    ).fit(X, y, task=task)
    assert all(s == ["a", "b", "c"] for s in seen)  # every validation fold has every task
    assert search.alphas_.tolist() == [10.0, 1.0, 0.1]
    assert search.predict(X, task=task).shape == (90,)
    pairs = {t: (X[task == t], y[task == t]) for t in "abc"}
    again = MultiTaskCV(
        MeanRegularizedRegressor(), alphas=[10.0, 1.0, 0.1], cv=3, scoring=neg_mse
    ).fit(pairs)
    assert again.alpha_ == search.alpha_


def test_cv_errors():
    X, Y = _data(seed=5, n=30)
    task = np.array([0] * 27 + [1] * 3)
    with pytest.raises(ValueError, match="task 1 has 3 samples, fewer than cv=5 folds"):
        MultiTaskCV(L21Regressor()).fit(X, Y[:, 0], task=task)
    with pytest.raises(ValueError, match="param='beta' is not a parameter of L21Regressor"):
        MultiTaskCV(L21Regressor(), param="beta").fit(X, Y)
    with pytest.raises(ValueError, match="alphas is required: MeanRegularized"):
        MultiTaskCV(MeanRegularizedRegressor()).fit(X, Y)
