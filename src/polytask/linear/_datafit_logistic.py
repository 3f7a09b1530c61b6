"""Logistic loss of binary tasks, with an intercept eliminated by exact 1-D minimisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, xlogy

from polytask.linear._datafit_base import (
    BaseDatafit,
    Normalization,
    _lanczos_top,
    resolve_design,
    top_eigenvalues,
)
from polytask.linear._design import TaskDesign

__all__ = ["LogisticLoss"]

FArray = NDArray[np.float64]


def binary_labels(y: FArray, where: str) -> FArray:
    """Map labels in {0, 1} or {-1, 1} (NaN kept) to {0, 1}; raise otherwise."""
    observed = y[~np.isnan(y)]
    values = set(np.unique(observed).tolist())
    if values <= {0.0, 1.0}:
        return y
    if values <= {-1.0, 1.0}:
        return np.where(np.isnan(y), np.nan, (y + 1.0) / 2.0)
    shown = sorted(values)[:5]
    raise ValueError(f"{where}: logistic labels must be in {{0, 1}} or {{-1, 1}}; got {shown}.")


class LogisticLoss(BaseDatafit):
    r"""Logistic loss of every binary task.

    .. math::

        F(W) = \min_{b} \sum_t c_t \sum_{i} \left[\log(1 + e^{z_{ti}}) - y_{ti} z_{ti}\right],
        \qquad z_{ti} = x_{ti}^\top w_t + b_t,

    with labels ``y`` in {0, 1} (labels in {-1, 1} are mapped to {0, 1}), missing labels
    (``NaN`` in a shared ``Y``) masked, and ``c_t = 1`` (``"sum"``) or ``1 / n_t``
    (``"mean"``, ``n_t`` the observed labels of task ``t``). Without intercept, ``b = 0``.
    With intercept, the minimisation over ``b`` is done exactly (safeguarded Newton per
    task, warm-started from the last call); by Danskin's theorem the gradient of the
    partial minimum is the gradient at the optimal ``b``, and the partial minimum stays
    convex and as smooth as ``F`` itself, so solvers only ever see ``W``.

    The Fenchel conjugate of ``z -> log(1 + e^z) - y z`` is the negative binary entropy,
    which gives :meth:`dual_value`.

    Parameters
    ----------
    normalization : {"sum", "mean"}, default="sum"
        Task weights ``c_t``.
    fit_intercept : bool, default=False
        Whether every task has an unpenalised intercept.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import LogisticLoss
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(30, 4))
    >>> Y = (rng.normal(size=(30, 2)) > 0).astype(float)
    >>> loss = LogisticLoss().initialize(X, Y)
    >>> bool(np.isclose(loss.value(np.zeros((4, 2))), 60 * np.log(2)))
    True
    """

    def __init__(self, normalization: Normalization = "sum", fit_intercept: bool = False) -> None:
        super().__init__(normalization, fit_intercept)

    def initialize(
        self, X: ArrayLike | TaskDesign | Sequence[ArrayLike], Y: Any = None
    ) -> LogisticLoss:
        """Bind the data; labels are checked and mapped to {0, 1}.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), sequence of such arrays, or TaskDesign
            Shared design, per-task designs, or already validated data.
        Y : ndarray of shape (n_samples, n_tasks), sequence of (n_samples_t,) arrays, or None
            Binary labels (``NaN`` = missing in a shared ``Y``).

        Returns
        -------
        self : LogisticLoss

        Raises
        ------
        ValueError
            If labels are not binary, or a task has one class only while fitting an
            intercept (its intercept would be infinite).
        """
        design = resolve_design(X, Y)
        self._bind(design)
        if design.is_shared:
            assert design.Y is not None
            Yn = np.where(design.mask, design.Y, np.nan) if design.mask is not None else design.Y
            y = binary_labels(Yn, "Y")
            y = np.nan_to_num(y, nan=0.0)
        else:
            y = np.concatenate([binary_labels(yt, f"task {t}") for t, yt in enumerate(design.ys)])
        self._y = y
        self._sw = self._sample_weights()
        pos = design.task_sums(self._y * (self._sw > 0))
        if self.fit_intercept:
            bad = np.flatnonzero((pos == 0) | (pos == design.n_samples))
            if bad.size:
                raise ValueError(
                    f"task {int(bad[0])} has labels of one class only; its intercept would "
                    "be infinite. Drop the task or set fit_intercept=False."
                )
        self._b = np.zeros(self.n_tasks)
        self._cache: list[tuple[FArray, FArray, FArray]] = []
        return self

    def state(self, W: FArray) -> FArray:
        """Scores ``X_t w_t`` (without intercept), layout of ``TaskDesign.matvec``.

        Parameters
        ----------
        W : ndarray of shape (n_features, n_tasks)

        Returns
        -------
        ndarray
        """
        self._check_ready(W)
        return self.design_.matvec(W)

    def _scores(self, state: FArray) -> FArray:
        """Scores with the optimal intercepts, cached for the last few states.

        Solvers evaluate value, gradient and divergences at the same few points; the
        cache is keyed by the state *object* (held, so its identity is not reused), which
        avoids repeating the intercept's Newton solve. It never changes a result.
        """
        if not self.fit_intercept:
            return state
        for held, scores, b in self._cache:
            if held is state:
                self._b = b
                return scores
        self._b = self._solve_intercept(state, self._b)
        scores = state + self.design_.per_task_view(self._b)
        self._cache = [(state, scores, self._b), *self._cache[:3]]
        return scores

    def _solve_intercept(self, Z: FArray, b0: FArray) -> FArray:
        """Per-task root of ``sum_i c m_i (sigmoid(z_i + b) - y_i)`` (safeguarded Newton)."""
        view, sums, sw, y = self.design_.per_task_view, self.design_.task_sums, self._sw, self._y
        b = b0.copy()
        lo = np.full_like(b, -np.inf)
        hi = np.full_like(b, np.inf)
        scale = sums(sw)
        for _ in range(100):
            p = expit(Z + view(b))
            g = sums(sw * (p - y))
            h = sums(sw * p * (1.0 - p))
            done = np.abs(g) <= 1e-13 * scale
            if np.all(done):
                break
            lo = np.where(g < 0, np.maximum(lo, b), lo)
            hi = np.where(g > 0, np.minimum(hi, b), hi)
            step = np.clip(-g / np.maximum(h, 1e-300), -4.0, 4.0)
            new = b + step
            outside = (new <= lo) | (new >= hi)
            bisect = np.isfinite(lo) & np.isfinite(hi)
            mid = 0.5 * (np.where(bisect, lo, 0.0) + np.where(bisect, hi, 0.0))
            bisected = outside & bisect
            new = np.where(bisected, mid, new)
            b = np.where(done, b, new)
            # A tiny Newton step leaves a residual of order step^2: stop without
            # evaluating it (saves one pass over the samples per call).
            if not np.any(bisected) and np.all(np.abs(step) <= 1e-9 * (1.0 + np.abs(b))):
                break
        return b

    def value(self, W: FArray, state: Any = None) -> float:
        """Datafit value ``F(W)`` (intercepts minimised out when fitted).

        Parameters
        ----------
        W : ndarray of shape (n_features, n_tasks)
        state : ndarray, optional
            ``self.state(W)``, computed when omitted.

        Returns
        -------
        float
        """
        S = self.state(W) if state is None else state
        z = self._scores(S)
        loss = np.logaddexp(0.0, z) - self._y * z
        return float(np.sum(self._sw * loss))

    def gradient(self, W: FArray, state: Any = None) -> FArray:
        """Gradient ``(c_t X_t^T (sigmoid(z_t) - y_t))_t``, shape (n_features, n_tasks).

        Parameters
        ----------
        W : ndarray of shape (n_features, n_tasks)
        state : ndarray, optional
            ``self.state(W)``, computed when omitted.

        Returns
        -------
        ndarray of shape (n_features, n_tasks)
        """
        S = self.state(W) if state is None else state
        z = self._scores(S)
        return self.design_.rmatvec(self._sw * (expit(z) - self._y))

    def dual_value(self, W: FArray, state: Any, scale: float) -> float:
        r"""Dual objective at ``theta = scale * c (y - sigmoid(z))``: weighted entropies.

        ``D = sum_t c_t sum_i H(p_i)`` with ``p = (1 - scale) y + scale sigmoid(z)`` and
        ``H`` the binary entropy (nats). With an intercept the dual point sums to zero in
        every task (the intercept is optimal), as the dual constraint requires.

        Parameters
        ----------
        W : ndarray of shape (n_features, n_tasks)
        state : ndarray
            ``self.state(W)``.
        scale : float
            Dual scaling in ``[0, 1]``.

        Returns
        -------
        float
        """
        z = self._scores(state)
        p = (1.0 - scale) * self._y + scale * expit(z)
        entropy = -xlogy(p, p) - xlogy(1.0 - p, 1.0 - p)
        return float(np.sum(self._sw * entropy))

    def bregman(self, W_from: FArray, S_from: Any, W_to: FArray, S_to: Any) -> float:
        """Bregman divergence ``F(W_to) - F(W_from) - <grad F(W_from), W_to - W_from>``.

        Summed per sample as ``log1p(p (e^d - 1)) - p d`` with ``p = sigmoid(z_from)`` and
        ``d = z_to - z_from``, which stays accurate for tiny steps. With intercepts, the
        optimal intercepts of both points enter the scores (the intercept gradient is
        zero at ``W_from``, so this is the divergence of the partial minimum).

        Parameters
        ----------
        W_from, W_to : ndarray of shape (n_features, n_tasks)
        S_from, S_to : ndarray
            Their states.

        Returns
        -------
        float
        """
        z_from = self._scores(S_from)
        z_to = self._scores(S_to)
        delta = z_to - z_from
        p = expit(z_from)
        div = np.log1p(p * np.expm1(np.clip(delta, -1.0, 1.0))) - p * delta
        big = np.flatnonzero(np.abs(delta.ravel()) > 1.0)
        if big.size:
            zt, zf = z_to.ravel()[big], z_from.ravel()[big]
            div.ravel()[big] = (
                np.logaddexp(0.0, zt) - np.logaddexp(0.0, zf) - p.ravel()[big] * delta.ravel()[big]
            )
        return float(np.sum(self._sw * div))

    def intercept(self, W: FArray, state: Any = None) -> FArray:
        """Optimal intercepts given ``W`` (zeros without intercept), shape (n_tasks,).

        Parameters
        ----------
        W : ndarray of shape (n_features, n_tasks)
        state : ndarray, optional
            ``self.state(W)``.

        Returns
        -------
        ndarray of shape (n_tasks,)
        """
        if not self.fit_intercept:
            return np.zeros(self.n_tasks)
        S = self.state(W) if state is None else state
        self._b = self._solve_intercept(S, self._b)
        return self._b.copy()

    def hessian_blocks(self, W: FArray, state: Any = None) -> FArray:
        """Hessian of every task's loss at ``W``, shape (n_tasks, n_features, n_features).

        ``c_t X_t^T D_t X_t`` with ``D_t = diag(p (1 - p))``; with intercepts, the Schur
        complement that eliminates the intercept,
        ``X_t^T D_t X_t - (X_t^T d_t)(X_t^T d_t)^T / sum(d_t)`` (the Hessian of the partial
        minimum over ``b``).

        Parameters
        ----------
        W : ndarray of shape (n_features, n_tasks)
        state : ndarray, optional
            ``self.state(W)``.

        Returns
        -------
        ndarray of shape (n_tasks, n_features, n_features)
        """
        S = self.state(W) if state is None else state
        p = expit(self._scores(S))
        curv = self._sw * p * (1.0 - p)
        design, T = self.design_, self.n_tasks
        if design.is_shared:
            assert design.X is not None
            X = design.X
            blocks = [(X, curv[:, t]) for t in range(T)]
        else:
            off = design.offsets
            blocks = [(Xt, curv[off[t] : off[t + 1]]) for t, Xt in enumerate(design.Xs)]
        H = np.empty((T, self.n_features, self.n_features))
        for t, (Xt, wt) in enumerate(blocks):
            H[t] = Xt.T @ (Xt * wt[:, None])
            if self.fit_intercept:
                u = Xt.T @ wt
                H[t] -= np.outer(u, u) / max(float(wt.sum()), np.finfo(float).tiny)
        return H

    def _curvature_bound_grams(self) -> FArray:
        design, c = self.design_, self.weights_
        if design.is_shared:
            assert design.X is not None
            X = design.X
            if design.mask is None:
                return 0.25 * c[0] * (X.T @ X)
            M = design.mask.astype(np.float64)
            return 0.25 * np.stack([c[t] * (X.T @ (X * M[:, [t]])) for t in range(self.n_tasks)])
        return 0.25 * np.stack([c[t] * (x.T @ x) for t, x in enumerate(design.Xs)])

    def lipschitz(self) -> float:
        """Global bound ``max_t c_t lambda_max(X_t^T X_t) / 4``.

        Returns
        -------
        float
        """
        return float(self.task_lipschitz().max())

    def task_lipschitz(self) -> FArray:
        """Per-task bounds ``c_t lambda_max(X_t^T X_t) / 4``, shape (n_tasks,).

        Returns
        -------
        ndarray of shape (n_tasks,)
        """
        d = self.n_features
        design = self.design_
        if d <= 4 * float(design.n_samples.mean()):
            top = top_eigenvalues(self._curvature_bound_grams())
            return np.full(self.n_tasks, top[0]) if top.size == 1 else top
        out = np.empty(self.n_tasks)
        for t in range(self.n_tasks):
            if design.is_shared:
                assert design.X is not None
                Xt = design.X if design.mask is None else design.X[design.mask[:, t]]
            else:
                Xt = design.Xs[t]
            op = spla.aslinearoperator(Xt)
            gram = spla.LinearOperator((d, d), matvec=lambda v, op=op: op.rmatvec(op.matvec(v)))
            out[t] = 0.25 * self.weights_[t] * _lanczos_top(gram)
        return out
