"""Datafits of linear multi-task learning: the squared loss.

A datafit is the smooth, task-separable part of the objective,
``F(W) = sum_t c_t f_t(X_t w_t)`` with ``W`` of shape ``(n_features, n_tasks)`` and
``c_t`` the normalisation weight of task ``t``. Solvers use it through a small
interface (see :class:`SquaredLoss`):

``initialize(X, Y)``
    bind the data (shared design with missing labels, or per-task designs) and
    precompute what makes later calls cheap;
``state(W)``
    a quantity *affine in* ``W`` from which value and gradient follow (predictions, or
    the gradient ``H W - B`` itself in Gram form): solvers combine states with weights
    summing to one instead of recomputing them, so an accelerated step costs one product
    with the data;
``value(W, state)``, ``gradient(W, state)``, ``lipschitz()``, ``task_lipschitz()``;
``dual_value(W, state, scale)``
    the Fenchel dual objective at the rescaled natural dual point, for duality gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike, NDArray

from polytask.linear._datafit_base import (
    BaseDatafit,
    Normalization,
    _batched_rowvec,
    _lanczos_top,
    resolve_design,
    top_eigenvalues,
)
from polytask.linear._design import TaskDesign

__all__ = ["SquaredLoss"]

FArray = NDArray[np.float64]


class SquaredLoss(BaseDatafit):
    r"""Squared loss of every task, optionally with an unpenalised intercept.

    .. math::

        F(W) = \sum_t \frac{c_t}{2} \| y_t - X_t w_t - b_t \mathbf{1} \|_2^2,
        \qquad c_t = 1 \ (\text{"sum"}) \quad\text{or}\quad c_t = 1 / n_t \ (\text{"mean"}),

    where ``n_t`` counts the *observed* labels of task ``t`` (missing labels, ``NaN``
    in a shared ``Y``, are masked out). ``"sum"`` is the MALSAR convention; ``"mean"`` with
    a complete shared design is ``1/(2n) ||Y - XW||_F^2``, scikit-learn's
    ``MultiTaskLasso``; with missing labels every task is averaged over its own
    observed samples. The intercept ``b_t`` is eliminated exactly by centering every
    task on its observed samples; :meth:`intercept` recovers it.

    Parameters
    ----------
    normalization : {"sum", "mean"}, default="sum"
        Task weights ``c_t`` as above.
    fit_intercept : bool, default=False
        Whether every task has an unpenalised intercept.
    use_gram : bool or None, default=None
        Work with the per-task Gram matrices ``c_t X_t^T X_t`` (gradients then cost
        ``O(d^2 T)`` whatever the number of samples). ``None`` picks Gram form when
        ``n_features`` is at most the mean number of samples per task and the Gram
        matrices fit in memory (at most 2e8 floats).

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import SquaredLoss
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    >>> loss = SquaredLoss(normalization="mean").initialize(X, Y)
    >>> W = np.zeros((3, 2))
    >>> bool(np.isclose(loss.value(W), 0.5 * (Y**2).sum() / 20))
    True
    >>> loss.gradient(W).shape
    (3, 2)
    """

    quadratic: ClassVar[bool] = True

    def __init__(
        self,
        normalization: Normalization = "sum",
        fit_intercept: bool = False,
        use_gram: bool | None = None,
    ) -> None:
        super().__init__(normalization, fit_intercept)
        self.use_gram = use_gram

    def initialize(
        self, X: ArrayLike | TaskDesign | Sequence[ArrayLike], Y: Any = None
    ) -> SquaredLoss:
        """Bind the data (Gram matrices, in Gram form, are formed on first use).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), sequence of such arrays, or TaskDesign
            Shared design, per-task designs, or already validated data.
        Y : ndarray of shape (n_samples, n_tasks), sequence of (n_samples_t,) arrays, or None
            Labels (``NaN`` = missing in a shared ``Y``); None when ``X`` is a TaskDesign.

        Returns
        -------
        self : SquaredLoss
        """
        design = resolve_design(X, Y)
        self._bind(design)
        self._eig: tuple[FArray, FArray, FArray] | None = None
        self._lipschitz: float | None = None
        d, T = design.n_features, design.n_tasks
        n_mean = float(design.n_samples.mean())
        n_grams = 1 if (design.is_shared and design.mask is None) else T
        gram = self.use_gram
        if gram is None:
            gram = d <= n_mean and n_grams * d * d <= 2e8
        self.gram_ = bool(gram)
        yc = design.stacked_labels() - design.per_task_view(self.y_mean_)
        mask = self._mask()
        if mask is not None:
            yc = yc * mask
        self._const = 0.5 * float(np.sum(self.weights_ * design.task_sums(yc**2)))
        self._gram_parts: tuple[FArray, FArray] | None = None
        if not self.gram_:
            self._yc, self._sw = yc, self._sample_weights()
        return self

    def _gram(self) -> tuple[FArray, FArray]:
        """``(H, B)`` in Gram form, formed on first use: a solver that only needs
        products with the data (``WorkingSet``) never pays the ``O(n d^2)``."""
        if self._gram_parts is None:
            self._gram_parts = self._gram_terms(self.design_, self.weights_)[:2]
        return self._gram_parts

    @property
    def _H(self) -> FArray:
        return self._gram()[0]

    @property
    def _B(self) -> FArray:
        return self._gram()[1]

    def _gram_terms(self, design: TaskDesign, c: FArray) -> tuple[FArray, FArray, float]:
        """Weighted (centered) Gram matrices, ``X^T y`` terms and ``||y||^2 / 2``."""
        n = design.n_samples.astype(np.float64)
        xm, ym = self.x_mean_, self.y_mean_
        H: FArray
        if design.is_shared:
            assert design.X is not None and design.Y is not None
            X, Y = design.X, design.Y
            XtY = X.T @ Y
            y2 = (Y**2).sum(axis=0)
            if design.mask is None:
                H = X.T @ X
                if self.fit_intercept:
                    H = H - n[0] * np.outer(xm[:, 0], xm[:, 0])
                H = c[0] * H
            else:
                M = design.mask.astype(np.float64)
                H = np.stack([X.T @ (X * M[:, [t]]) for t in range(design.n_tasks)])
        else:
            XtY = np.stack([x.T @ y for x, y in zip(design.Xs, design.ys, strict=True)], axis=1)
            y2 = np.array([y @ y for y in design.ys])
            H = np.stack([x.T @ x for x in design.Xs])
        if H.ndim == 3:
            if self.fit_intercept:
                H = H - n[:, None, None] * np.einsum("jt,kt->tjk", xm, xm)
            H = c[:, None, None] * H
        if self.fit_intercept:
            XtY = XtY - xm * (n * ym)
            y2 = y2 - n * ym**2
        return H, c * XtY, 0.5 * float(np.sum(c * y2))

    # ------------------------------------------------------------------ core
    def state(self, W: FArray) -> FArray:
        """The gradient ``H W - B`` in Gram form, else the centered predictions.

        Parameters
        ----------
        W : ndarray of shape (n_features, n_tasks)

        Returns
        -------
        ndarray
            (n_features, n_tasks) in Gram form; otherwise the layout of
            ``TaskDesign.matvec``.
        """
        self._check_ready(W)
        if self.gram_:
            return self._hess_gram(W) - self._B
        Z = self.design_.matvec(W)
        if self.fit_intercept:
            Z = Z - self.design_.per_task_view(np.einsum("jt,jt->t", self.x_mean_, W))
        return Z

    def _hess_gram(self, W: FArray) -> FArray:
        rows = np.flatnonzero(np.any(W != 0.0, axis=1))
        sparse = rows.size < 0.5 * self.n_features
        H = self._H
        if H.ndim == 2:
            return H[:, rows] @ W[rows] if sparse else H @ W
        if sparse:
            # (H_t w_t)^T = w_t^T H_t on the nonzero rows only (H_t is symmetric).
            return _batched_rowvec(W[rows], H[:, rows, :])
        return _batched_rowvec(W, H)

    def _residual(self, state: FArray) -> FArray:
        R = self._yc - state
        mask = self._mask()
        return R * mask if mask is not None else R

    def value(self, W: FArray, state: Any = None) -> float:
        """Datafit value ``F(W)`` (see the class docstring).

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
        if self.gram_:
            return float(0.5 * np.vdot(W, S - self._B) + self._const)
        R = self._residual(S)
        per_task = self.design_.task_sums(R**2)
        return 0.5 * float(np.dot(self.weights_, per_task))

    def gradient(self, W: FArray, state: Any = None) -> FArray:
        """Gradient ``(c_t X_t^T (X_t w_t - y_t))_t``, shape (n_features, n_tasks).

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
        if self.gram_:
            return S
        R = -self._residual(S) * self._sw
        G = self.design_.rmatvec(R)
        if self.fit_intercept:
            G = G - self.x_mean_ * self.design_.task_sums(R)
        return G

    def dual_value(self, W: FArray, state: Any, scale: float) -> float:
        r"""Dual objective at the rescaled residual ``theta_t = scale * c_t r_t``.

        ``D = sum_t c_t (scale <r_t, y_t> - scale^2 / 2 ||r_t||^2)`` with
        ``r_t = y_t - X_t w_t`` (centered when fitting intercepts). With
        ``scale = min(1, alpha / N^*(-gradient))`` for a norm penalty ``alpha N``,
        ``P(W) - D`` is a duality gap.

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
        if self.gram_:
            wb = float(np.vdot(W, self._B))
            r_dot_y = 2.0 * self._const - wb
            r_dot_r = 2.0 * self._const - wb + float(np.vdot(W, state))
            return scale * r_dot_y - 0.5 * scale**2 * r_dot_r
        R = self._residual(state)
        s = self.design_.task_sums
        ry, rr = s(R * self._yc), s(R**2)
        return float(np.dot(self.weights_, scale * ry - 0.5 * scale**2 * rr))

    def bregman(self, W_from: FArray, S_from: Any, W_to: FArray, S_to: Any) -> float:
        """Bregman divergence ``F(W_to) - F(W_from) - <grad F(W_from), W_to - W_from>``.

        Computed as ``1/2 <W_to - W_from, H (W_to - W_from)>`` from the states, free of
        the cancellation that the difference of values suffers near an optimum.

        Parameters
        ----------
        W_from, W_to : ndarray of shape (n_features, n_tasks)
        S_from, S_to : ndarray
            Their states.

        Returns
        -------
        float
        """
        if self.gram_:
            return 0.5 * float(np.vdot(W_to - W_from, S_to - S_from))
        dZ = S_to - S_from
        return 0.5 * float(np.sum(self._sw * dZ * dZ))

    def intercept(self, W: FArray, state: Any = None) -> FArray:
        """Optimal intercepts ``b_t = mean(y_t) - mean(X_t) w_t`` (zeros without intercept).

        Parameters
        ----------
        W : ndarray of shape (n_features, n_tasks)
        state : ignored

        Returns
        -------
        ndarray of shape (n_tasks,)
        """
        if not self.fit_intercept:
            return np.zeros(self.n_tasks)
        return self.y_mean_ - np.einsum("jt,jt->t", self.x_mean_, W)

    # ------------------------------------------------------------------ curvature
    def _hess_apply(self, W: FArray) -> FArray:
        return self.gradient(W) - self.gradient(np.zeros_like(W))

    def quadratic_terms(self) -> tuple[FArray, FArray]:
        """``(H, B)`` with ``F(W) = sum_t (w_t^T H_t w_t / 2 - b_t^T w_t) + const``.

        Returns
        -------
        H : ndarray of shape (n_features, n_features) or (n_tasks, n_features, n_features)
            The weighted (centered) Gram matrices; one matrix when every task shares it.
        B : ndarray of shape (n_features, n_tasks)
            The weighted (centered) ``X_t^T y_t``.
        """
        if self.gram_:
            return self._H, self._B
        H, B, _ = self._gram_terms(self.design_, self.weights_)
        return H, B

    def _grams(self) -> FArray:
        """Gram matrices ``H_t``: (d, d) when shared by all tasks, else (T, d, d)."""
        if self.gram_:
            return self._H
        return self._gram_terms(self.design_, self.weights_)[0]

    def hessian_diagonal(self) -> FArray:
        """Diagonal of every task's Hessian ``H_t``, shape (n_features, n_tasks).

        Returns
        -------
        ndarray of shape (n_features, n_tasks)
        """
        if self.gram_:
            diag = np.diagonal(self._H, axis1=-2, axis2=-1)
            return np.repeat(diag[:, None], self.n_tasks, axis=1) if diag.ndim == 1 else diag.T
        design = self.design_
        if design.is_shared:
            assert design.X is not None
            X2 = design.X**2
            M = np.ones_like(design.Y) if design.mask is None else design.mask.astype(float)
            sq = X2.T @ M
        else:
            sq = np.stack([(x**2).sum(axis=0) for x in design.Xs], axis=1)
        sq = sq - design.n_samples * self.x_mean_**2
        return self.weights_ * sq

    def lipschitz(self) -> float:
        """Global Lipschitz constant of the gradient, ``max_t lambda_max(H_t)``.

        Computed once per :meth:`initialize` and cached.

        Returns
        -------
        float
        """
        if self._lipschitz is None:
            self._lipschitz = self._compute_lipschitz()
        return self._lipschitz

    def _compute_lipschitz(self) -> float:
        if self.gram_:
            return float(top_eigenvalues(self._H).max())
        design = self.design_
        if design.is_shared and design.mask is None:
            # All tasks share c X_c^T X_c: Lanczos in R^d, a step costs 1/T of a gradient.
            X, d, centre = design.X, self.n_features, self.fit_intercept
            assert X is not None

            def gram_vec(v: FArray) -> FArray:
                z = X @ v  # X_c v = X v - mean(X v), and X_c^T z = X^T z when z sums to 0
                return X.T @ (z - z.mean() if centre else z)

            op = spla.LinearOperator((d, d), matvec=gram_vec, dtype=np.float64)
            return float(self.weights_[0]) * _lanczos_top(op)
        dim = self.n_features * self.n_tasks
        shape = (self.n_features, self.n_tasks)
        op = spla.LinearOperator(
            (dim, dim), matvec=lambda v: self._hess_apply(v.reshape(shape)).ravel()
        )
        return _lanczos_top(op)

    def task_lipschitz(self) -> FArray:
        """Lipschitz constant of every task's gradient, ``lambda_max(H_t)``.

        Returns
        -------
        ndarray of shape (n_tasks,)
        """
        if self.gram_:
            top = top_eigenvalues(self._H)
            return np.full(self.n_tasks, top[0]) if self._H.ndim == 2 else top
        d, T = self.n_features, self.n_tasks
        out = np.empty(T)
        for t in range(T):

            def mv(v: FArray, t: int = t) -> FArray:
                E = np.zeros((d, T))
                E[:, t] = v.ravel()
                return self._hess_apply(E)[:, t]

            out[t] = _lanczos_top(spla.LinearOperator((d, d), matvec=mv))
        return out

    def prox_solve(self, V: FArray, rho: float) -> FArray:
        r"""Exact ``argmin_W F(W) + rho/2 ||W - V||_F^2`` (one linear system per task).

        Uses an eigendecomposition of every ``H_t``, computed once and reused for every
        ``rho``.

        Parameters
        ----------
        V : ndarray of shape (n_features, n_tasks)
        rho : float
            Positive weight of the proximity term.

        Returns
        -------
        ndarray of shape (n_features, n_tasks)
        """
        if self._eig is None:
            if self.gram_:
                H, B = self._H, self._B
            else:
                H, B, _ = self._gram_terms(self.design_, self.weights_)
            lam, Q = np.linalg.eigh(H)
            QtB = Q.T @ B if Q.ndim == 2 else _batched_rowvec(B, Q)
            self._eig = (np.maximum(lam, 0.0), Q, QtB)
            self._eig_qt = np.ascontiguousarray(np.swapaxes(Q, -1, -2))
        lam, Q, QtB = self._eig
        if Q.ndim == 2:
            return Q @ ((QtB + rho * (Q.T @ V)) / (lam[:, None] + rho))
        rhs = (QtB + rho * _batched_rowvec(V, Q)) / (lam.T + rho)
        return _batched_rowvec(rhs, self._eig_qt)
