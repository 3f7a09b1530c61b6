"""Reference models of the School accuracy benchmark (not part of the package).

* ``PooledRidge``: one ridge for all schools, checked against scikit-learn's ``Ridge``;
* ``MixedModel``: this script's own EM for the Gaussian hierarchical model, an
  independent check of :class:`polytask.linear.HierarchicalBayesRegressor`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from _school_common import Split, per_task
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge as SkRidge

from polytask.linear import HierarchicalBayesRegressor, TaskDesign, hierarchical_log_likelihood
from polytask.linear._hierarchical_em import _task_statistics


class PooledRidge:
    """One ridge (one intercept) for all schools, ``task`` ignored: scikit-learn's
    ``Ridge`` objective ``||y - X w - b||^2 + alpha ||w||^2``, solved by its normal
    equations (checked against ``sklearn.linear_model.Ridge`` at start-up)."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def fit(self, X: np.ndarray, y: np.ndarray, task: Any = None) -> PooledRidge:
        mx, my = X.mean(axis=0), y.mean()
        Xc = X - mx
        gram = Xc.T @ Xc + self.alpha * np.eye(X.shape[1])
        self.coef_ = np.linalg.solve(gram, Xc.T @ (y - my))
        self.intercept_ = my - mx @ self.coef_
        return self

    def predict(self, X: np.ndarray, task: Any = None) -> np.ndarray:
        return X @ self.coef_ + self.intercept_


def check_pooled_ridge(s: Split) -> None:
    """The normal-equation ridge agrees with scikit-learn's."""
    ours = PooledRidge(3.0).fit(s.X, s.y)
    ref = SkRidge(alpha=3.0).fit(s.X, s.y)
    if not np.allclose(ours.coef_, ref.coef_, rtol=1e-6, atol=1e-8):
        raise AssertionError("PooledRidge disagrees with sklearn.linear_model.Ridge")


def check_hierarchical(s: Split) -> None:
    """polytask's EM agrees with this script's own EM (MixedModel) on the same model.

    Both are run long: EM approaches variances that tend to 0 slowly, so the check
    compares the marginal log-likelihoods (polytask's at least as high, both within
    1e-6 relative) and the test predictions (within 1 % of the labels' spread).
    """
    ours = HierarchicalBayesRegressor(tol=1e-8, max_iter=3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(s.X, s.y, task=s.task)
    ref = MixedModel(n_iter=3000).fit(s.X, s.y, s.task)
    design = TaskDesign.per_task(per_task(s.X, s.task), per_task(s.y, s.task))
    stats = _task_statistics(design, intercept=True)
    ref_ll = hierarchical_log_likelihood(*stats, ref.w0_, np.diag(ref.s_), ref.noise_)
    a, b = ours.predict(s.X_test, task=s.task_test), ref.predict(s.X_test, s.task_test)
    gap = abs(ours.log_likelihood_ - ref_ll) / abs(ref_ll)
    if ours.log_likelihood_ < ref_ll - 1e-9 * abs(ref_ll) or gap > 1e-6:
        raise AssertionError(f"log-likelihoods differ: {ours.log_likelihood_} vs {ref_ll}")
    if not np.allclose(a, b, atol=1e-2 * float(np.std(s.y))):
        raise AssertionError(f"predictions differ by up to {np.abs(a - b).max():.3g}")


class MixedModel:
    """Independent check, not polytask: the Gaussian hierarchical (linear mixed) model
    ``y_t = X_t (w_0 + v_t) + b_t + noise`` with random school effects ``(v_t, b_t) ~
    N(0, diag(s))`` and one noise variance, fitted by EM (Dempster, Laird & Rubin 1977;
    the variance-components form of Laird & Ware 1982); predictions use the posterior
    means. Mean-regularisation is its MAP estimate with the variances fixed and equal;
    here they are estimated from the training data (empirical Bayes, no CV).
    """

    def __init__(self, n_iter: int = 150) -> None:
        self.n_iter = n_iter

    def fit(self, X: np.ndarray, y: np.ndarray, task: Any) -> MixedModel:
        Z = np.hstack([X, np.ones((X.shape[0], 1))])
        ids = np.unique(task)
        H = np.stack([Z[task == t].T @ Z[task == t] for t in ids])
        B = np.stack([Z[task == t].T @ y[task == t] for t in ids])
        yy = np.array([y[task == t] @ y[task == t] for t in ids])
        d = Z.shape[1]
        w0 = np.linalg.lstsq(H.sum(axis=0), B.sum(axis=0), rcond=None)[0]
        s, noise = np.full(d, 0.1), float(np.var(y))
        for _ in range(self.n_iter):
            post_cov = np.linalg.inv(H / noise + np.diag(1.0 / s))
            v = np.einsum("tij,tj->ti", post_cov, (B - H @ w0) / noise)
            s = (v**2).mean(axis=0) + np.einsum("tii->i", post_cov) / len(ids) + 1e-10
            w0 = np.linalg.lstsq(
                H.sum(axis=0), (B - np.einsum("tij,tj->ti", H, v)).sum(axis=0), rcond=None
            )[0]
            W = w0 + v
            rss = yy - 2 * np.einsum("ti,ti->t", B, W) + np.einsum("ti,tij,tj->t", W, H, W)
            noise = float((rss.sum() + np.einsum("tij,tji->", H, post_cov)) / y.size)
        self.tasks_, self.W_ = ids, w0 + v
        self.w0_, self.s_, self.noise_ = w0, s, noise
        return self

    def predict(self, X: np.ndarray, task: Any) -> np.ndarray:
        rows = np.searchsorted(self.tasks_, task)
        return np.einsum("ni,ni->n", X, self.W_[rows, :-1]) + self.W_[rows, -1]
