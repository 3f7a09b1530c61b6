"""The EM updates of :class:`~polytask.linear.HierarchicalBayesRegressor` (private).

Every task enters through its sufficient statistics ``H_t = Z_tᵀZ_t``, ``g_t = Z_tᵀy_t``,
``y_tᵀy_t`` and ``n_t``; nothing here builds an ``n_t x n_t`` matrix.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from polytask.linear._design import TaskDesign

FArray = NDArray[np.float64]
_LOG_2PI = float(np.log(2.0 * np.pi))


def _task_statistics(design: TaskDesign, intercept: bool) -> tuple[FArray, FArray, FArray, FArray]:
    """Per-task ``Z_tᵀZ_t``, ``Z_tᵀy_t``, ``y_tᵀy_t`` and ``n_t``; ``Z_t = [X_t, 1]``."""
    if design.is_shared:
        assert design.X is not None and design.Y is not None
        observed = np.ones(design.Y.shape, bool) if design.mask is None else design.mask
        rows = [observed[:, t] for t in range(design.n_tasks)]
        blocks = [(design.X[r], design.Y[r, t]) for t, r in enumerate(rows)]
    else:
        blocks = list(zip(design.Xs, design.ys, strict=True))
    H, g, yy, n = [], [], [], []
    for X, y in blocks:
        Z = np.hstack([X, np.ones((X.shape[0], 1))]) if intercept else X
        H.append(Z.T @ Z)
        g.append(Z.T @ y)
        yy.append(float(y @ y))
        n.append(float(y.size))
    return np.stack(H), np.stack(g), np.array(yy), np.array(n)


def _sqrt_psd(S: FArray) -> FArray:
    """A square root ``L`` with ``L Lᵀ = S`` for a symmetric PSD ``S`` (eigenvalues >= 0)."""
    vals, vecs = np.linalg.eigh((S + S.T) / 2)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def _posterior(
    H: FArray, g: FArray, mean: FArray, L: FArray, noise: float, rand: NDArray[np.intp]
) -> tuple[FArray, FArray, FArray]:
    """Posterior means ``m_t`` and covariances ``C_t`` of the random effects, and
    ``log det(I + Lᵀ H_t L / noise)`` of every task (batched over tasks)."""
    C, logdet = _effect_covariance(H[:, rand][:, :, rand], L, noise)
    resid = g[:, rand] - H[:, rand, :] @ mean  # Z_rᵀ (y - Z μ), (T, q)
    m = (C @ resid[:, :, None])[:, :, 0] / noise
    return m, C, logdet


def _effect_covariance(Hr: FArray, L: FArray, noise: float) -> tuple[FArray, FArray]:
    """``C_t = L S_t⁻¹ Lᵀ`` with ``S_t = I + Lᵀ H_r,t L / noise`` (the effects' posterior
    covariance given the mean), and ``log det S_t``, batched over tasks."""
    S = np.eye(L.shape[1]) + (L.T @ Hr @ L) / noise
    chol = np.linalg.cholesky(S)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    return L @ np.linalg.inv(S) @ L.T, logdet


def _log_likelihood(
    H: FArray,
    g: FArray,
    yy: FArray,
    n: FArray,
    mean: FArray,
    noise: float,
    rand: NDArray[np.intp],
    m: FArray,
    logdet: FArray,
) -> float:
    """The marginal log-likelihood from the posterior of the same parameters."""
    rr = yy - 2.0 * g @ mean + ((H @ mean) @ mean)
    resid = g[:, rand] - H[:, rand, :] @ mean
    quad = (rr - np.sum(resid * m, axis=1)) / noise  # rᵀ V⁻¹ r
    return float(-0.5 * np.sum(n * (_LOG_2PI + np.log(noise)) + logdet + quad))


class _EMMap:
    """One EM update of the hierarchical model, on ``theta = (mean, log Sigma, log s2)``.

    ``log Sigma`` is the matrix logarithm (eigenvalues floored at a tiny fraction of
    the starting prior variances), so that extrapolated points stay valid: Sigma
    positive definite, the noise variance positive.
    """

    def __init__(
        self,
        H: FArray,
        g: FArray,
        yy: FArray,
        n: FArray,
        rand: NDArray[np.intp],
        diagonal: bool,
        prior: NDArray[np.bool_] | None = None,
    ) -> None:
        self.H, self.g, self.yy, self.n, self.rand, self.diagonal = H, g, yy, n, rand, diagonal
        # with a prior, the mean is latent: N(0, tau2 I) on the columns ``prior`` (flat on
        # the others, the intercept), tau2 fitted too (the last entry of theta)
        self.prior = prior
        self.total = float(n.sum())
        self.Hr = H[:, rand][:, :, rand]
        self.pooled_H, self.pooled_g = H.sum(axis=0), g.sum(axis=0)
        self.pooled_inv = np.linalg.pinv(self.pooled_H)  # minimum-norm mean if singular
        # a model that interpolates the data would drive the noise to 0 (unbounded
        # likelihood): keep it above a tiny fraction of the labels' second moment
        self.noise_floor = max(1e-10 * float(yy.sum()) / self.total, np.finfo(float).tiny)
        self.p, self.q = H.shape[1], rand.size
        self.n_updates = 0

    def start(self) -> FArray:
        """Pooled least squares; a tenth of the noise over each column's scale."""
        mean = self.pooled_inv @ self.pooled_g
        rss = float(self.yy.sum() - 2.0 * self.pooled_g @ mean + mean @ self.pooled_H @ mean)
        noise = max(rss / self.total, self.noise_floor)
        scale = np.diagonal(self.pooled_H)[self.rand] / self.total
        prior = 0.1 * noise / np.where(scale > 0, scale, 1.0)
        self.var_floor = 1e-12 * float(prior.max())
        tau2 = 1.0
        if self.prior is not None:  # the spread of the pooled solution's weights
            tau2 = max(float(np.mean(mean[self.prior] ** 2)), 1e-12)
        return self.pack(mean, np.diag(prior), noise, tau2)

    def pack(self, mean: FArray, cov: FArray, noise: float, tau2: float = 1.0) -> FArray:
        vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
        log_cov = (vecs * np.log(np.maximum(vals, self.var_floor))) @ vecs.T
        return np.concatenate([mean, log_cov.ravel(), [np.log(noise), np.log(tau2)]])

    def unpack(self, theta: FArray) -> tuple[FArray, FArray, float, float]:
        """``(mean, Sigma, noise variance, tau2)``; the mean is the posterior mean of
        the last update when it is latent."""
        p, q = self.p, self.q
        log_cov = theta[p : p + q * q].reshape(q, q)
        vals, vecs = np.linalg.eigh((log_cov + log_cov.T) / 2)
        cov = (vecs * np.exp(np.clip(vals, -745.0, 700.0))) @ vecs.T
        noise = max(float(np.exp(min(theta[-2], 700.0))), self.noise_floor)
        tau2 = float(np.exp(np.clip(theta[-1], -700.0, 700.0)))
        return theta[:p], cov, noise, tau2

    def trial(self, theta: FArray) -> tuple[FArray | None, float]:
        """``__call__`` at an extrapolated point: ``(None, -inf)`` where it is invalid
        (overflow, a non-finite likelihood) instead of an error."""
        try:
            with np.errstate(all="ignore"):
                out, ll = self(theta)
        except (ValueError, np.linalg.LinAlgError):
            return None, -np.inf
        if not (np.isfinite(ll) and np.all(np.isfinite(out))):
            return None, -np.inf
        return out, ll

    def __call__(self, theta: FArray) -> tuple[FArray, float]:
        """The EM update of ``theta``, and the log-likelihood at ``theta`` itself."""
        if self.prior is not None:
            return self._latent_mean(theta)
        H, g, yy, n, rand = self.H, self.g, self.yy, self.n, self.rand
        mean, cov, noise, _ = self.unpack(theta)
        m, C, logdet = _posterior(H, g, mean, _sqrt_psd(cov), noise, rand)
        ll = _log_likelihood(H, g, yy, n, mean, noise, rand, m, logdet)
        self.n_updates += 1
        # M-step: every update reads the same posterior (E-step) of the random effects
        shift = (H[:, :, rand] @ m[:, :, None]).sum(axis=(0, 2))
        mean = self.pooled_inv @ (self.pooled_g - shift)
        cov, noise = self._variances(mean, m, C, 0.0)
        return self.pack(mean, cov, noise), self._checked(ll)

    def _variances(
        self, mean: FArray, m: FArray, cov_u: FArray, extra: float
    ) -> tuple[FArray, float]:
        """M-step of ``Sigma`` and the noise variance from the effects' posterior means
        ``m`` and covariances ``cov_u``; ``extra`` adds the mean's own uncertainty to
        the expected residual sum of squares."""
        cov = (m.T @ m + cov_u.sum(axis=0)) / m.shape[0]
        if self.diagonal:
            cov = np.diag(np.diagonal(cov))
        w = np.tile(mean, (m.shape[0], 1))
        w[:, self.rand] += m
        Hw = (self.H @ w[:, :, None])[:, :, 0]
        rss = self.yy - 2.0 * np.sum(self.g * w, axis=1) + np.sum(Hw * w, axis=1)
        trace = float(np.sum(self.Hr * np.swapaxes(cov_u, 1, 2))) + extra
        return cov, max(float(rss.sum() + trace) / self.total, self.noise_floor)

    @staticmethod
    def _checked(ll: float) -> float:
        if not np.isfinite(ll):
            raise ValueError(
                "the marginal log-likelihood became non-finite during EM; check the "
                "scale of X and y (values near the float64 range overflow)."
            )
        return ll

    def _latent_mean(self, theta: FArray) -> tuple[FArray, float]:
        """EM with the mean latent too: ``mu ~ N(0, tau2)`` on the prior columns.

        Given ``(Sigma, s2, tau2)``, integrating out each task's effects gives
        ``Z_tᵀV_t⁻¹Z_t = (H_t − H_t,r C_t H_r,t / s2) / s2`` (``C_t`` the effects'
        posterior covariance given the mean), so the mean's posterior has precision
        ``P0 = Σ_t Z_tᵀV_t⁻¹Z_t + D`` and every effect's posterior follows from it:
        ``E u_t = C_t (g_r − H_r,: m0) / s2`` and ``Cov u_t = C_t + K_t C0 K_tᵀ`` with
        ``K_t = C_t H_r,: / s2``. The log-likelihood is
        ``log p(y | m0) + log p(m0) − log p(m0 | y)`` (the flat columns contribute a
        constant).
        """
        H, g, yy, n, rand, prior = self.H, self.g, self.yy, self.n, self.rand, self.prior
        assert prior is not None
        _, cov, noise, tau2 = self.unpack(theta)
        Hr, Hcr, Hrc = self.Hr, H[:, :, rand], H[:, rand, :]
        C, logdet = _effect_covariance(Hr, _sqrt_psd(cov), noise)
        precision = (self.pooled_H - (Hcr @ C @ Hrc).sum(axis=0) / noise) / noise
        precision[prior, prior] += 1.0 / tau2
        linear = self.pooled_g - (Hcr @ (C @ g[:, rand, None]))[:, :, 0].sum(axis=0) / noise
        linear = linear / noise
        chol0 = np.linalg.cholesky((precision + precision.T) / 2)
        chol0_inv = np.linalg.inv(chol0)
        C0 = chol0_inv.T @ chol0_inv
        m0 = C0 @ linear
        m = (C @ (g[:, rand] - Hrc @ m0)[:, :, None])[:, :, 0] / noise
        ll = _log_likelihood(H, g, yy, n, m0, noise, rand, m, logdet)
        k = int(prior.sum())
        ll -= 0.5 * (k * (_LOG_2PI + np.log(tau2)) + float(m0[prior] @ m0[prior]) / tau2)
        ll += 0.5 * (self.p * _LOG_2PI - 2.0 * float(np.log(np.diagonal(chol0)).sum()))
        self.n_updates += 1
        # M-step from the joint posterior of the mean and the effects
        K = C @ Hrc / noise  # (T, q, p)
        cov_u = C + K @ C0 @ np.swapaxes(K, 1, 2)
        tau2 = (float(m0[prior] @ m0[prior]) + float(np.trace(C0[prior][:, prior]))) / k
        # tr(H_t Cov w_t) beyond the effects' part: the mean's covariance and its cross
        # covariance with the effects, Cov(u_t, mu) = -K_t C0
        extra = float(np.sum(self.pooled_H * C0)) - 2.0 * float(
            np.einsum("tpq,tqr,rp->", Hcr, K, C0)
        )
        cov, noise = self._variances(m0, m, cov_u, extra)
        return self.pack(m0, cov, noise, max(tau2, 1e-300)), self._checked(ll)
