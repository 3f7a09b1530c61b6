"""Solvers against cvxpy, scikit-learn and their own optimality certificates."""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import MultiTaskLasso

from polytask.linear import (
    ADMM,
    FISTA,
    L21,
    Clustered,
    Dirty,
    GraphRegularized,
    L1Linf,
    Lasso,
    LogisticLoss,
    MeanRegularized,
    ProxNewton,
    Ridge,
    Robust,
    SparseLowRank,
    SquaredLoss,
    TraceNorm,
    ZeroPenalty,
    split_penalties,
)

D, T = 5, 3
SIZES = (14, 20, 11)
CHAIN = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 2.0], [0.0, 2.0, 0.0]])


def _data(kind: str, loss: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    W_true = rng.normal(size=(D, T))
    W_true[3:] = 0.0
    if kind == "shared":
        X = rng.normal(size=(24, D))
        Z = X @ W_true + 0.3 * rng.normal(size=(24, T))
        Y = (Z > 0).astype(float) if loss == "logistic" else Z
        Y[rng.random(Y.shape) < 0.15] = np.nan
        return X, Y
    Xs = [rng.normal(size=(n, D)) for n in SIZES]
    zs = [x @ W_true[:, t] + 0.3 * rng.normal(size=len(x)) for t, x in enumerate(Xs)]
    ys = [(z > 0).astype(float) if loss == "logistic" else z for z in zs]
    return Xs, ys


def _tasks(X, Y):
    if isinstance(X, list):
        return list(zip(X, Y, strict=True))
    return [(X[~np.isnan(Y[:, t])], Y[~np.isnan(Y[:, t]), t]) for t in range(Y.shape[1])]


def _cvx_penalty(pen, W, blocks):
    """cvxpy expression of a penalty (independent re-statement of its formula)."""
    name = type(pen).__name__
    if name == "Lasso":
        return pen.alpha * cp.sum(cp.abs(W))
    if name == "L21":
        return pen.alpha * cp.sum(cp.norm(W, 2, axis=1))
    if name == "L1Linf":
        return pen.alpha * cp.sum(cp.max(cp.abs(W), axis=1))
    if name == "TraceNorm":
        return pen.alpha * cp.normNuc(W)
    if name == "Ridge":
        return pen.alpha / 2 * cp.sum_squares(W)
    if name == "MeanRegularized":
        return pen.alpha * cp.sum_squares(W - cp.sum(W, axis=1, keepdims=True) / T) + (
            pen.beta * cp.sum_squares(W)
        )
    if name == "GraphRegularized":
        return pen.alpha * sum(
            CHAIN[s, t] * cp.sum_squares(W[:, s] - W[:, t])
            for s in range(T)
            for t in range(s + 1, T)
        )
    if name == "Clustered":
        eta = pen.beta / pen.alpha
        M = cp.Variable((T, T), symmetric=True)
        blocks["constraints"] += [M >> 0, np.eye(T) - M >> 0, cp.trace(M) == pen.n_clusters]
        return pen.alpha * eta * (1 + eta) * cp.matrix_frac(W.T, eta * np.eye(T) + M)
    P, Q = cp.Variable((D, T)), cp.Variable((D, T))
    blocks["constraints"].append(W == P + Q)
    if name == "Dirty":
        return pen.alpha_shared * cp.sum(cp.norm(P, 2, axis=1)) + pen.alpha_specific * cp.sum(
            cp.abs(Q)
        )
    if name == "Robust":
        return pen.alpha_rows * cp.sum(cp.norm(P, 2, axis=1)) + pen.alpha_tasks * cp.sum(
            cp.norm(Q, 2, axis=0)
        )
    if name == "SparseLowRank":
        return pen.alpha_sparse * cp.sum(cp.abs(P)) + pen.alpha_rank * cp.normNuc(Q)
    raise AssertionError(name)


def cvx_optimum(loss, norm, icpt, tasks, penalties) -> float:
    W = cp.Variable((D, T))
    b = cp.Variable(T) if icpt else np.zeros(T)
    terms = []
    for t, (Xt, yt) in enumerate(tasks):
        c = 1.0 if norm == "sum" else 1.0 / len(yt)
        z = Xt @ W[:, t] + b[t]
        if loss == "squared":
            terms.append(c / 2 * cp.sum_squares(yt - z))
        else:
            terms.append(c * cp.sum(cp.logistic(z) - cp.multiply(yt, z)))
    extra: dict = {"constraints": []}
    objective = sum(terms) + sum(_cvx_penalty(p, W, extra) for p in penalties)
    prob = cp.Problem(cp.Minimize(objective), extra["constraints"])
    prob.solve(solver=cp.CLARABEL)
    return float(prob.value)


def _make(loss, norm, icpt, X, Y):
    cls = SquaredLoss if loss == "squared" else LogisticLoss
    return cls(norm, icpt).initialize(X, Y)


PENALTIES = [
    Lasso(0.3),
    L21(0.5),
    L1Linf(0.4),
    TraceNorm(0.6),
    Ridge(0.7),
    MeanRegularized(0.5, 0.1),
    GraphRegularized(0.4, CHAIN),
    Clustered(0.5, 0.3, 2),
    Dirty(0.6, 0.3),
    Robust(0.5, 0.8),
    SparseLowRank(0.3, 0.6),
]


@pytest.mark.parametrize("pen", PENALTIES, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_fista_matches_cvxpy_for_every_penalty(pen, loss):
    kind, norm, icpt = ("tasks", "sum", True) if loss == "squared" else ("shared", "mean", True)
    X, Y = _data(kind, loss)
    datafit = _make(loss, norm, icpt, X, Y)
    prox, smooth = split_penalties(pen)
    res = FISTA(tol=1e-9, max_iter=20000).solve(datafit, prox, smooth=smooth)
    ref = cvx_optimum(loss, norm, icpt, _tasks(X, Y), [pen])
    assert res.converged
    assert res.objective == pytest.approx(ref, rel=1e-5)
    # KKT: the subdifferential distance at the solution is below the tolerance scale
    W = res.W
    grad = datafit.gradient(W) + sum((p.gradient(W) for p in smooth), np.zeros_like(W))
    kkt = prox.subdiff_distance(res.V, grad if prox.n_blocks == 1 else np.stack([grad] * 2))
    assert kkt <= 1e-3 * max(np.linalg.norm(datafit.gradient(np.zeros_like(W))), 1.0)
    if res.dual_gap is not None:
        assert -1e-9 * res.objective <= res.dual_gap <= 1e-9 * res.objective


NONSMOOTH = [
    Lasso(0.3),
    L21(0.5),
    L1Linf(0.4),
    TraceNorm(0.6),
    MeanRegularized(0.5, 0.1),
    Dirty(0.6, 0.3),
    Robust(0.5, 0.8),
    SparseLowRank(0.3, 0.6),
]


@pytest.mark.parametrize("pen", NONSMOOTH, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("kind", ["shared", "tasks"])
def test_prox_newton_matches_cvxpy_for_the_logistic_loss(pen, kind):
    X, Y = _data(kind, "logistic", seed=7)
    datafit = LogisticLoss("mean", fit_intercept=True).initialize(X, Y)
    res = ProxNewton(tol=1e-10).solve(datafit, pen)
    ref = cvx_optimum("logistic", "mean", True, _tasks(X, Y), [pen])
    assert res.converged and res.n_iter <= 30
    assert res.objective == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("pen", NONSMOOTH, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("kind", ["shared", "tasks"])
def test_prox_newton_reaches_tolerances_below_objective_rounding(pen, kind, seed):
    # Near 1e-12 the predicted decrease of a Newton step is below the rounding of the
    # objective; a sign test on it used to reject good steps until max_iter ran out.
    X, Y = _data(kind, "logistic", seed=seed)
    datafit = LogisticLoss("mean", fit_intercept=True).initialize(X, Y)
    res = ProxNewton(tol=1e-12).solve(datafit, pen)
    assert res.converged and res.n_iter <= 30
    assert res.stop_crit <= 1e-12


def test_prox_newton_stops_early_on_an_unreachable_tolerance():
    X, Y = _data("tasks", "logistic", seed=4)
    datafit = LogisticLoss("mean", fit_intercept=True).initialize(X, Y)
    with pytest.warns(ConvergenceWarning, match="ProxNewton did not converge"):
        res = ProxNewton(tol=1e-18, max_iter=100).solve(datafit, L1Linf(0.4))
    assert not res.converged and res.n_iter < 30
    assert res.stop_crit < 1e-12  # it stalls at the rounding floor, not before


@pytest.mark.parametrize("pen", NONSMOOTH, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("kind", ["shared", "tasks"])
def test_admm_matches_cvxpy(pen, kind):
    X, Y = _data(kind, "squared", seed=1)
    datafit = SquaredLoss("sum", False).initialize(X, Y)
    res = ADMM(tol=1e-9, max_iter=20000).solve(datafit, pen)
    ref = cvx_optimum("squared", "sum", False, _tasks(X, Y), [pen])
    assert res.converged
    assert res.objective == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("kind", ["shared", "tasks"])
@pytest.mark.parametrize("gram", [True, False])
def test_l21_squared_matches_cvxpy_both_forms(kind, gram):
    X, Y = _data(kind, "squared", seed=2)
    datafit = SquaredLoss("sum", use_gram=gram).initialize(X, Y)
    res = FISTA(tol=1e-10, max_iter=5000).solve(datafit, L21(0.8))
    ref = cvx_optimum("squared", "sum", False, _tasks(X, Y), [L21(0.8)])
    assert res.objective == pytest.approx(ref, rel=1e-6)
    assert 0.0 <= res.dual_gap <= 1e-10 * res.objective


def test_l21_mean_matches_sklearn_multitask_lasso():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 8))
    W = np.zeros((8, 4))
    W[:3] = rng.normal(size=(3, 4))
    Y = X @ W + 0.1 * rng.normal(size=(60, 4))
    alpha = 0.1
    sk = MultiTaskLasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100000).fit(X, Y)
    datafit = SquaredLoss("mean").initialize(X, Y)
    res = FISTA(tol=1e-12, max_iter=5000).solve(datafit, L21(alpha))
    assert np.allclose(res.W.T, sk.coef_, atol=1e-4)
    # and with intercepts
    sk = MultiTaskLasso(alpha=alpha, tol=1e-12, max_iter=100000).fit(X, Y + 3.0)
    datafit = SquaredLoss("mean", fit_intercept=True).initialize(X, Y + 3.0)
    res = FISTA(tol=1e-12, max_iter=5000).solve(datafit, L21(alpha))
    assert np.allclose(res.W.T, sk.coef_, atol=1e-4)
    assert np.allclose(datafit.intercept(res.W), sk.intercept_, atol=1e-4)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_gap_is_nonnegative_along_iterations_and_below_tol_at_stop(loss):
    X, Y = _data("shared", loss, seed=4)
    datafit = _make(loss, "mean", loss == "logistic", X, Y)
    res = FISTA(tol=1e-8, max_iter=5000, verbose=True).solve(datafit, L21(0.02))
    assert res.history is not None and len(res.history) >= 2
    crits = np.array([h[2] for h in res.history])
    assert np.all(crits >= -1e-12)
    assert res.stop_crit <= 1e-8 and res.converged
    assert res.dual_gap == pytest.approx(res.stop_crit * res.objective)


@pytest.mark.parametrize(
    "solver",
    [
        FISTA(tol=1e-10, max_iter=20000, backtracking=False, restart=None),
        FISTA(tol=1e-10, max_iter=20000, backtracking=False, restart="gradient"),
        FISTA(tol=1e-10, max_iter=20000, backtracking=True, restart="function"),
        FISTA(tol=1e-10, max_iter=20000, backtracking=True, restart=None),
        ADMM(tol=1e-10, max_iter=20000),
    ],
    ids=["plain", "restart", "bt-function", "bt-norestart", "admm"],
)
@pytest.mark.parametrize("pen", [TraceNorm(0.5), L21(0.5)], ids=["trace", "l21"])
def test_variants_reach_the_same_optimum(solver, pen):
    X, Y = _data("tasks", "squared", seed=5)
    datafit = SquaredLoss().initialize(X, Y)
    ref = FISTA(tol=1e-12, max_iter=20000).solve(datafit, pen)
    res = solver.solve(datafit, pen)
    assert res.objective == pytest.approx(ref.objective, rel=1e-9)
    assert np.allclose(res.W, ref.W, atol=1e-5)


@pytest.mark.parametrize("pen", [L21(0.5), Dirty(0.6, 0.3), MeanRegularized(0.5, 0.1)])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_warm_start_from_solution_stops_immediately(pen, loss):
    X, Y = _data("shared", loss, seed=6)
    datafit = _make(loss, "mean", True, X, Y)
    first = FISTA(tol=1e-7, max_iter=10000).solve(datafit, pen)
    again = FISTA(tol=1e-7).solve(datafit, pen, W0=first.V)
    assert again.n_iter <= 2
    assert again.objective == pytest.approx(first.objective, rel=1e-9)


@pytest.mark.parametrize("solver", [FISTA(max_iter=2, tol=1e-12), ADMM(max_iter=2, tol=1e-12)])
def test_convergence_warning_states_the_criterion(solver):
    X, Y = _data("tasks", "squared")
    datafit = SquaredLoss().initialize(X, Y)
    with pytest.warns(ConvergenceWarning, match=r"stopping criterion reached .* > tol=1\.0e-12"):
        res = solver.solve(datafit, L21(0.01))
    assert not res.converged and res.n_iter == 2


def test_composite_warm_start_shapes_and_errors():
    X, Y = _data("tasks", "squared")
    datafit = SquaredLoss().initialize(X, Y)
    res = FISTA(tol=1e-8).solve(datafit, Dirty(0.6, 0.3), W0=np.ones((D, T)))
    assert res.V.shape == (2, D, T) and np.allclose(res.V.sum(0), res.W)
    with pytest.raises(ValueError, match=r"W0 must have shape \(2, 5, 3\)"):
        FISTA().solve(datafit, Dirty(0.6, 0.3), W0=np.ones((3, D, T)))


class _NoProx:
    smooth = False
    n_blocks = 1

    def value(self, W):
        return 0.0

    def subdiff_distance(self, W, grad):
        return 0.0


def test_requirements_are_checked_and_named():
    X, Y = _data("tasks", "squared")
    datafit = SquaredLoss().initialize(X, Y)
    with pytest.raises(ValueError, match=r"FISTA needs penalty\.prox, which _NoProx"):
        FISTA().solve(datafit, _NoProx())
    logistic = LogisticLoss().initialize(*_data("tasks", "logistic"))
    with pytest.raises(ValueError, match=r"ADMM needs datafit\.prox_solve, which LogisticLoss"):
        ADMM().solve(logistic, L21(0.1))
    with pytest.raises(ValueError, match=r"ProxNewton needs datafit\.hessian_blocks"):
        ProxNewton().solve(datafit, L21(0.1))
    with pytest.raises(ValueError, match="ProxNewton takes no smooth penalty"):
        ProxNewton().solve(logistic, L21(0.1), smooth=[Ridge(1.0)])
    with pytest.raises(ValueError, match="ADMM takes no smooth penalty"):
        ADMM().solve(datafit, L21(0.1), smooth=[Ridge(1.0)])
    with pytest.raises(ValueError, match="not initialized"):
        FISTA().solve(SquaredLoss(), L21(0.1))
    with pytest.raises(ValueError, match="max_iter must be an integer"):
        FISTA(max_iter=0).solve(datafit, L21(0.1))
    with pytest.raises(ValueError, match="restart must be"):
        FISTA(restart="always").solve(datafit, L21(0.1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rho must be"):
        ADMM(rho=-1.0).solve(datafit, L21(0.1))
    with pytest.raises(ValueError, match="alpha"):
        FISTA().solve(datafit, L21(-1.0))


def test_split_penalties():
    assert split_penalties(None)[0].__class__ is ZeroPenalty
    prox, smooth = split_penalties([Ridge(1.0), L21(0.5)])
    assert isinstance(prox, L21) and isinstance(smooth[0], Ridge)
    prox, smooth = split_penalties(MeanRegularized(1.0))
    assert isinstance(prox, MeanRegularized) and smooth == ()
    prox, smooth = split_penalties(Clustered(1.0, 1.0, 1))
    assert isinstance(prox, ZeroPenalty) and isinstance(smooth[0], Clustered)
    with pytest.raises(ValueError, match="at most one non-smooth penalty"):
        split_penalties([L21(1.0), TraceNorm(1.0)])


def test_alpha_above_alpha_max_gives_zero_in_no_iteration():
    X, Y = _data("shared", "squared")
    datafit = SquaredLoss("mean").initialize(X, Y)
    amax = L21().alpha_max(datafit.gradient(np.zeros((D, T))))
    res = FISTA().solve(datafit, L21(1.01 * amax))
    assert res.n_iter == 0 and np.all(res.W == 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = FISTA(tol=1e-8).solve(datafit, L21(0.99 * amax))
    assert np.any(res.W != 0)


@pytest.mark.parametrize(
    "pen", [L21(alpha=0.5), TraceNorm(alpha=0.5)], ids=lambda p: type(p).__name__
)
def test_admm_converges_when_most_features_are_constant_within_tasks(pen):
    # As on School's training splits: a dummy feature absent from a task leaves a zero
    # Hessian diagonal entry; here 3 of the 5 features are zero in every task, so the
    # median diagonal entry is 0 (it once made ADMM start with rho ~ 0 and stall at Z = 0).
    rng = np.random.default_rng(3)
    Xs, ys = [], []
    for n in SIZES:
        X = rng.normal(size=(n, D))
        X[:, 2:] = 0.0
        Xs.append(X)
        ys.append(X @ rng.normal(size=D) + 0.1 * rng.normal(size=n))
    datafit = SquaredLoss("sum", False).initialize(Xs, ys)
    assert np.median(datafit.hessian_diagonal()) == 0.0
    res = ADMM(tol=1e-8, max_iter=2000).solve(datafit, pen)
    ref = cvx_optimum("squared", "sum", False, list(zip(Xs, ys, strict=True)), [pen])
    assert res.converged and np.abs(res.W).max() > 0
    assert res.objective == pytest.approx(ref, rel=1e-6)
