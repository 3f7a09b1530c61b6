"""HierarchicalBayesRegressor: likelihood, EM optimality, posterior means, recovery, input."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from polytask.linear import (
    HierarchicalBayesRegressor,
    MeanRegularizedRegressor,
    hierarchical_log_likelihood,
)
from polytask.linear._hierarchical_em import _task_statistics
from polytask.linear._task_input import parse_fit_input


def _tasks(seed=0, T=12, d=3, n=(8, 30), spread=0.5, noise=0.3, intercept_sd=1.0):
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=d)
    pairs, W, b = [], [], []
    for _ in range(T):
        w = mean + spread * rng.normal(size=d)
        c = 2.0 + intercept_sd * rng.normal()
        X = rng.normal(size=(int(rng.integers(*n)), d))
        pairs.append((X, X @ w + c + noise * rng.normal(size=X.shape[0])))
        W.append(w)
        b.append(c)
    return pairs, np.array(W), np.array(b)


def _dense_log_likelihood(pairs, mean, cov, noise, random):
    """Reference: sum over tasks of the multivariate normal log-density, built densely."""
    total = 0.0
    for X, y in pairs:
        Z = np.hstack([X, np.ones((X.shape[0], 1))])
        Zr = Z[:, random]
        V = Zr @ cov @ Zr.T + noise * np.eye(y.size)
        total += multivariate_normal(Z @ mean, V).logpdf(y)
    return total


def _stats(pairs):
    est = HierarchicalBayesRegressor()
    design = parse_fit_input(est, pairs, None, None, False).design
    return _task_statistics(design, intercept=True)


@pytest.mark.parametrize("random", [[0, 1, 2, 3], [1, 3]])
def test_log_likelihood_matches_the_dense_multivariate_normal(random):
    pairs, _, _ = _tasks(T=5)
    rng = np.random.default_rng(1)
    A = rng.normal(size=(len(random), len(random)))
    cov = A @ A.T + 0.1 * np.eye(len(random))
    mean, noise = rng.normal(size=4), 0.7
    ours = hierarchical_log_likelihood(*_stats(pairs), mean, cov, noise, np.array(random))
    assert ours == pytest.approx(_dense_log_likelihood(pairs, mean, cov, noise, random), rel=1e-10)


def test_log_likelihood_allows_a_singular_covariance():
    pairs, _, _ = _tasks(T=4)
    cov = np.diag([0.5, 0.0, 0.2, 0.0])  # two coefficients without task variation
    mean = np.zeros(4)
    ours = hierarchical_log_likelihood(*_stats(pairs), mean, cov, 0.4)
    assert ours == pytest.approx(_dense_log_likelihood(pairs, mean, cov, 0.4, [0, 1, 2, 3]))


def test_em_never_decreases_the_log_likelihood_and_reports_the_final_value():
    pairs, _, _ = _tasks(seed=2)
    for covariance in ("diagonal", "full"):
        model = HierarchicalBayesRegressor(covariance=covariance, tol=0.0, max_iter=12)
        with pytest.warns(ConvergenceWarning, match="max_iter=12 updates"):
            model.fit(pairs)
        path = model.log_likelihood_path_
        assert path.size == model.n_iter_ + 1 and 12 <= model.n_updates_ <= 14
        assert np.all(np.diff(path) >= -1e-9 * np.abs(path[1:]))
        final = hierarchical_log_likelihood(
            *_stats(pairs),
            np.append(model.mean_coef_, model.mean_intercept_),
            model.covariance_,
            model.noise_variance_,
        )
        assert model.log_likelihood_ == pytest.approx(final, rel=1e-12)


def test_acceleration_reaches_what_plain_em_reaches_slowly():
    """Plain EM (the accelerated steps refused) ends lower after many more updates."""
    from polytask.linear._hierarchical_em import _EMMap

    pairs, _, _ = _tasks(seed=11, T=30, intercept_sd=0.0)  # a variance that tends to 0
    stats = _stats(pairs)
    em = _EMMap(*stats, np.arange(4), diagonal=True)
    theta = em.start()
    for _ in range(3000):
        theta, ll_plain = em(theta)
    model = HierarchicalBayesRegressor(tol=1e-12, max_iter=3000).fit(pairs)
    assert model.n_updates_ < 1000
    assert model.log_likelihood_ >= ll_plain - 1e-9 * abs(ll_plain)


def test_em_reaches_the_maximum_found_by_a_generic_optimizer():
    """Diagonal covariance: L-BFGS on (mean, log variances, log noise) from the EM start."""
    pairs, _, _ = _tasks(seed=3, T=10, d=2)
    stats = _stats(pairs)
    model = HierarchicalBayesRegressor(tol=1e-12, max_iter=20000).fit(pairs)

    def negative(theta):
        mean, log_var, log_noise = theta[:3], theta[3:6], theta[6]
        cov = np.diag(np.exp(log_var))
        return -hierarchical_log_likelihood(*stats, mean, cov, float(np.exp(log_noise)))

    start = np.concatenate([np.zeros(3), np.zeros(3), [0.0]])
    ref = minimize(negative, start, method="L-BFGS-B", options={"maxiter": 5000, "ftol": 1e-15})
    assert model.log_likelihood_ >= -ref.fun - 1e-6 * abs(ref.fun)
    assert model.log_likelihood_ == pytest.approx(-ref.fun, rel=1e-7)
    assert np.allclose(model.mean_coef_, ref.x[:2], atol=1e-3)
    assert model.noise_variance_ == pytest.approx(np.exp(ref.x[6]), rel=1e-3)


def test_coef_is_the_posterior_mean_at_the_fitted_variances():
    """Each task's weights minimise ‖y − Z w‖²/σ² + (w − μ)ᵀ Σ⁻¹ (w − μ) (closed form)."""
    pairs, _, _ = _tasks(seed=4)
    model = HierarchicalBayesRegressor(covariance="full").fit(pairs)
    mu = np.append(model.mean_coef_, model.mean_intercept_)
    prior = np.linalg.inv(model.covariance_)
    for t, (X, y) in enumerate(pairs):
        Z = np.hstack([X, np.ones((X.shape[0], 1))])
        A = Z.T @ Z / model.noise_variance_ + prior
        w = np.linalg.solve(A, Z.T @ y / model.noise_variance_ + prior @ mu)
        assert np.allclose(model.coef_[t], w[:-1], atol=1e-8)
        assert model.intercept_[t] == pytest.approx(w[-1], abs=1e-8)


def test_isotropic_prior_reduces_to_mean_regularisation():
    """With Σ = τ² I on the weights and a free intercept, the posterior mean is the
    mean-regularised solution at alpha = σ² / (2 τ²) (summed loss) — checked through
    fixed variances: EM's E-step at τ², σ² equals MeanRegularizedRegressor."""
    from polytask.linear._hierarchical_em import _posterior, _sqrt_psd

    pairs, _, _ = _tasks(seed=5, T=8, intercept_sd=0.0)
    H, g, _, _ = _stats(pairs)
    tau2, noise = 0.25, 0.5
    ref = MeanRegularizedRegressor(
        alpha=noise / (2 * tau2), beta=0.0, normalization="sum", fit_intercept=False, tol=1e-12
    )
    # no intercept column: fit the weights only, with the mean the average of the tasks
    X = [np.hstack([x, np.ones((x.shape[0], 1))]) for x, _ in pairs]
    ref.fit([(x, y) for x, (_, y) in zip(X, pairs, strict=True)])
    mu = ref.coef_.mean(axis=0)  # mean-regularisation's w̄ is the mean of the tasks
    m, _, _ = _posterior(H, g, mu, _sqrt_psd(tau2 * np.eye(4)), noise, np.arange(4))
    assert np.allclose(mu + m, ref.coef_, atol=1e-6)


def test_recovers_planted_variances_with_many_tasks():
    pairs, _, _ = _tasks(seed=6, T=400, d=2, n=(20, 40), spread=0.6, noise=0.5, intercept_sd=0.8)
    model = HierarchicalBayesRegressor().fit(pairs)
    assert np.diagonal(model.covariance_) == pytest.approx([0.36, 0.36, 0.64], rel=0.2)
    assert model.noise_variance_ == pytest.approx(0.25, rel=0.05)


def test_shrinkage_beats_per_task_least_squares_on_small_tasks():
    pairs, W, _ = _tasks(seed=6, T=200, d=2, n=(5, 10), spread=0.3, noise=1.0)
    model = HierarchicalBayesRegressor().fit(pairs)
    ols = np.array([np.linalg.lstsq(np.hstack([X, np.ones((len(y), 1))]), y)[0] for X, y in pairs])
    assert np.mean((model.coef_ - W) ** 2) < 0.5 * np.mean((ols[:, :2] - W) ** 2)


def test_zero_spread_gives_a_pooled_model():
    rng = np.random.default_rng(7)
    w = np.array([1.0, -2.0])
    pairs = []
    for _ in range(30):
        X = rng.normal(size=(25, 2))
        pairs.append((X, X @ w + 0.5 + 0.2 * rng.normal(size=25)))
    model = HierarchicalBayesRegressor(max_iter=3000).fit(pairs)
    assert np.abs(model.coef_ - model.mean_coef_).max() < 0.02
    assert np.allclose(model.mean_coef_, w, atol=0.02)


def test_fixed_features_are_shared_by_every_task():
    pairs, _, _ = _tasks(seed=8)
    model = HierarchicalBayesRegressor(random_features=[1]).fit(pairs)
    assert model.covariance_.shape == (2, 2)  # feature 1 and the intercept
    assert np.ptp(model.coef_[:, [0, 2]], axis=0).max() < 1e-12
    assert np.ptp(model.coef_[:, 1]) > 0.1
    no_intercept = HierarchicalBayesRegressor(random_features=[0, 2], fit_intercept=False)
    no_intercept.fit(pairs)
    assert np.all(no_intercept.intercept_ == 0) and no_intercept.covariance_.shape == (2, 2)


def test_shared_design_with_missing_labels_equals_per_task_form():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(60, 3))
    Y = X @ rng.normal(size=(3, 4)) + rng.normal(size=(60, 4))
    Y[rng.random(Y.shape) < 0.3] = np.nan
    shared = HierarchicalBayesRegressor().fit(X, Y)
    pairs = [(X[~np.isnan(Y[:, t])], Y[~np.isnan(Y[:, t]), t]) for t in range(4)]
    per_task = HierarchicalBayesRegressor().fit(pairs)
    assert np.allclose(shared.coef_, per_task.coef_)
    assert np.allclose(shared.predict(X), X @ per_task.coef_.T + per_task.intercept_)
    stacked = np.vstack([x for x, _ in pairs])
    ids = np.repeat(["a", "b", "c", "d"], [len(y) for _, y in pairs])
    labels = np.concatenate([y for _, y in pairs])
    named = HierarchicalBayesRegressor().fit(stacked, labels, task=ids)
    assert np.allclose(named.coef_, per_task.coef_)
    assert named.predict(stacked[:2], task=["d", "a"]).shape == (2,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"random_features": [0, 5]}, "random_features holds column 5, but X has 3 features"),
        ({"random_features": [1, 1]}, "random_features repeats a column"),
        ({"random_features": [0.5]}, "random_features must be a 1-D array of column indices"),
        ({"random_features": [], "fit_intercept": False}, "no random effect"),
        ({"covariance": "spherical"}, "covariance"),
        ({"max_iter": 0}, "max_iter"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, match):
    pairs, _, _ = _tasks()
    with pytest.raises(ValueError, match=match):
        HierarchicalBayesRegressor(**kwargs).fit(pairs)


def test_bad_data_names_the_task():
    pairs, _, _ = _tasks(T=3)
    X, y = pairs[1]
    X = X.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"task 1: Input X contains NaN or infinity \(X_t row 0\)"):
        HierarchicalBayesRegressor().fit([pairs[0], (X, y), pairs[2]])
    model = HierarchicalBayesRegressor().fit(pairs)
    with pytest.raises(ValueError, match="unknown task label 7"):
        model.predict(pairs[0][0][:1], task=[7])


def test_constant_targets_are_fitted_exactly_without_a_zero_noise_variance():
    rng = np.random.default_rng(10)
    pairs = [(rng.normal(size=(10, 2)), np.full(10, 3.0)) for _ in range(4)]
    model = HierarchicalBayesRegressor().fit(pairs)
    assert np.allclose(model.predict(pairs[0][0], task=np.zeros(10, int)), 3.0)
    assert 0 < model.noise_variance_ < 1e-8 and np.isfinite(model.log_likelihood_)


def test_one_label_is_refused_with_the_count():
    with pytest.raises(ValueError, match="n_samples=1"):
        HierarchicalBayesRegressor().fit([(np.ones((1, 2)), np.ones(1))])


# ------------------------------------------------------------------ Gaussian prior on the mean
def _dense_latent_mean_log_likelihood(pairs, cov, noise, tau2):
    """Reference without intercept: all labels jointly normal, the mean integrated out."""
    Zs = [X for X, _ in pairs]
    Z = np.vstack(Zs)
    V = tau2 * Z @ Z.T
    start = 0
    for X in Zs:
        end = start + X.shape[0]
        V[start:end, start:end] += X @ cov @ X.T + noise * np.eye(X.shape[0])
        start = end
    y = np.concatenate([y for _, y in pairs])
    return multivariate_normal(np.zeros(y.size), V).logpdf(y)


def test_gaussian_mean_prior_likelihood_matches_the_dense_joint_normal():
    pairs, _, _ = _tasks(seed=12, T=5, d=3, n=(6, 12), intercept_sd=0.0)
    pairs = [(X, y - 2.0) for X, y in pairs]  # no intercept in this check
    model = HierarchicalBayesRegressor(mean_prior="gaussian", fit_intercept=False, tol=1e-10)
    model.fit(pairs)
    ref = _dense_latent_mean_log_likelihood(
        pairs, model.covariance_, model.noise_variance_, model.mean_variance_
    )
    assert model.log_likelihood_ == pytest.approx(ref, rel=1e-9)
    assert np.all(np.diff(model.log_likelihood_path_) >= -1e-9 * np.abs(model.log_likelihood_))


def test_gaussian_mean_prior_reaches_the_maximum_of_a_generic_optimizer():
    pairs, _, _ = _tasks(seed=13, T=6, d=2, n=(6, 12), intercept_sd=0.0)
    pairs = [(X, y - 2.0) for X, y in pairs]
    model = HierarchicalBayesRegressor(
        mean_prior="gaussian", fit_intercept=False, tol=1e-12, max_iter=20000
    ).fit(pairs)

    def negative(theta):
        cov = np.diag(np.exp(theta[:2]))
        return -_dense_latent_mean_log_likelihood(pairs, cov, np.exp(theta[2]), np.exp(theta[3]))

    ref = minimize(negative, np.zeros(4), method="L-BFGS-B", options={"ftol": 1e-15})
    assert model.log_likelihood_ >= -ref.fun - 1e-6 * abs(ref.fun)
    assert model.log_likelihood_ == pytest.approx(-ref.fun, rel=1e-6)


def test_gaussian_mean_prior_coef_is_the_joint_posterior_mean():
    """Dense check: minimise Σ‖y_t − Z_t(μ + u_t)‖²/σ² + Σ u_tᵀΣ⁻¹u_t + ‖μ_w‖²/τ² over
    (μ, u_1..u_T) at the fitted variances (the intercept's mean unpenalised)."""
    pairs, _, _ = _tasks(seed=14, T=4, d=3)
    model = HierarchicalBayesRegressor(mean_prior="gaussian", covariance="full").fit(pairs)
    s2, tau2, prior = model.noise_variance_, model.mean_variance_, np.linalg.inv(model.covariance_)
    T, p = len(pairs), 4
    A = np.zeros((p * (T + 1), p * (T + 1)))
    b = np.zeros(p * (T + 1))
    A[:3, :3] += np.eye(3) / tau2
    for t, (X, y) in enumerate(pairs):
        Z = np.hstack([X, np.ones((X.shape[0], 1))])
        E = np.zeros((Z.shape[0], p * (T + 1)))
        E[:, :p] = Z
        E[:, p * (t + 1) : p * (t + 2)] = Z
        A += E.T @ E / s2
        b += E.T @ y / s2
        A[p * (t + 1) : p * (t + 2), p * (t + 1) : p * (t + 2)] += prior
    sol = np.linalg.solve(A, b)
    for t in range(T):
        w = sol[:p] + sol[p * (t + 1) : p * (t + 2)]
        assert np.allclose(model.coef_[t], w[:3], atol=1e-7)
        assert model.intercept_[t] == pytest.approx(w[3], abs=1e-7)


def test_gaussian_mean_prior_helps_when_features_rival_samples():
    """A shared design with nearly as many features as rows: the flat mean overfits."""
    rng = np.random.default_rng(15)
    n, d, T = 55, 50, 8
    X, X_test = rng.normal(size=(n, d)), rng.normal(size=(500, d))
    mean = 0.2 * rng.normal(size=d)
    W = mean[:, None] + 0.1 * rng.normal(size=(d, T))
    Y, Y_test = X @ W + 2.0 * rng.normal(size=(n, T)), X_test @ W
    errors = {}
    for mode in ("flat", "gaussian"):
        model = HierarchicalBayesRegressor(mean_prior=mode, max_iter=3000).fit(X, Y)
        errors[mode] = float(np.mean((model.predict(X_test) - Y_test) ** 2))
        if mode == "gaussian":  # the planted spread of the mean is 0.2² = 0.04
            assert 0.01 < model.mean_variance_ < 0.1
        else:
            assert model.mean_variance_ is None
    assert errors["gaussian"] < 0.5 * errors["flat"]
