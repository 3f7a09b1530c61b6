"""Working-set solver and gap-safe screening: same answer as a tight plain solve, a
certificate on the full problem, and screening that never removes a used feature."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from polytask.linear import (
    ADMM,
    FISTA,
    L21,
    L1Linf,
    L21Regressor,
    Lasso,
    LogisticLoss,
    MultiTaskRegressor,
    Ridge,
    SquaredLoss,
    TaskDesign,
    TraceNorm,
)
from polytask.linear._screening import gap_safe_screen, restrict_design
from polytask.linear._working_set import WorkingSet

N, D, T, ACTIVE = 70, 40, 4, 5
PENALTIES = {"l21": L21, "lasso": Lasso, "l1linf": L1Linf}


def _problem(kind: str, seed: int = 0):
    """Sparse ground truth on ACTIVE features; ``kind`` in shared / missing / per_task."""
    rng = np.random.default_rng(seed)
    W = np.zeros((D, T))
    W[rng.choice(D, ACTIVE, replace=False)] = rng.normal(size=(ACTIVE, T))
    if kind == "per_task":
        Xs = [rng.normal(size=(n, D)) + 0.5 for n in (60, 75, 66, 80)]
        ys = [x @ W[:, t] + 0.1 * rng.normal(size=len(x)) + t for t, x in enumerate(Xs)]
        return Xs, ys
    X = rng.normal(size=(N, D)) + 0.5
    Y = X @ W + 0.1 * rng.normal(size=(N, T)) + np.arange(T)
    if kind == "missing":
        Y[rng.random(Y.shape) < 0.2] = np.nan
    return X, Y


def _alpha(datafit, pen_cls, frac: float = 0.15) -> float:
    grad0 = datafit.gradient(np.zeros((datafit.n_features, datafit.n_tasks)))
    return frac * pen_cls(1.0).alpha_max(grad0)


def _tight(datafit, pen):
    """Reference solution: ADMM to a relative duality gap of 1e-13."""
    res = ADMM(tol=1e-13, max_iter=100000).solve(datafit, pen)
    assert res.converged
    return res


def _relative_gap(X, Y, lam, W):
    """linear.md's relative duality gap (mean loss, no intercept), written here anew."""
    n = X.shape[0]
    R = Y - X @ W
    primal = 0.5 * np.sum(R**2) / n + lam * np.linalg.norm(W, axis=1).sum()
    corr = np.linalg.norm(X.T @ R, axis=1).max()
    theta = min(1.0, n * lam / corr) * R
    dual = (np.sum(theta * Y) - 0.5 * np.sum(theta**2)) / n
    return (primal - dual) / primal


# ---------------------------------------------------------------------- same answer
@pytest.mark.parametrize("pen_name", sorted(PENALTIES))
@pytest.mark.parametrize("kind", ["shared", "missing", "per_task"])
@pytest.mark.parametrize(("normalization", "icpt"), [("mean", False), ("sum", True)])
def test_same_answer_as_tight_plain_solve(pen_name, kind, normalization, icpt):
    X, Y = _problem(kind)
    datafit = SquaredLoss(normalization, fit_intercept=icpt).initialize(X, Y)
    pen = PENALTIES[pen_name](_alpha(datafit, PENALTIES[pen_name]))
    ref = _tight(datafit, pen)
    res = WorkingSet(tol=1e-10, initial_size=2, max_iter=20000).solve(datafit, pen)
    assert res.converged and res.stop_crit <= 1e-10
    assert res.objective == pytest.approx(ref.objective, rel=1e-9)
    np.testing.assert_allclose(res.W, ref.W, atol=1e-4 * np.abs(ref.W).max())
    used = np.abs(ref.W).max(axis=1) > 1e-6 * np.abs(ref.W).max()
    assert np.array_equal(np.abs(res.W).max(axis=1) > 0, used)


@pytest.mark.parametrize("icpt", [False, True])
def test_logistic_loss_same_answer(icpt):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 30))
    Y = (X[:, :3] @ rng.normal(size=(3, 3)) + 0.3 * rng.normal(size=(90, 3)) > 0).astype(float)
    datafit = LogisticLoss("mean", fit_intercept=icpt).initialize(X, Y)
    pen = L21(_alpha(datafit, L21, 0.3))
    ref = FISTA(tol=1e-12, max_iter=100000).solve(datafit, pen)
    res = WorkingSet(tol=1e-10, initial_size=2, max_iter=20000).solve(datafit, pen)
    assert res.converged
    assert res.objective == pytest.approx(ref.objective, rel=1e-9)
    np.testing.assert_allclose(res.W, ref.W, atol=1e-4)


def test_custom_inner_solver_and_warm_start():
    X, Y = _problem("shared", seed=1)
    datafit = SquaredLoss("mean").initialize(X, Y)
    pen = L21(_alpha(datafit, L21))
    ref = _tight(datafit, pen)
    res = WorkingSet(tol=1e-9, inner=ADMM(), initial_size=3).solve(datafit, pen)
    assert res.converged
    np.testing.assert_allclose(res.W, ref.W, atol=1e-5)
    again = WorkingSet(tol=1e-9).solve(datafit, pen, W0=res.W)
    assert again.n_iter == 0 and again.converged
    np.testing.assert_array_equal(again.W, res.W)


def test_everything_screened_gives_zero():
    """Above alpha_max every feature is screened out from a warm start near zero."""
    X, Y = _problem("shared", seed=10)
    datafit = SquaredLoss("mean").initialize(X, Y)
    pen = L21(2.0 * _alpha(datafit, L21, 1.0))
    W0 = 1e-6 * np.random.default_rng(0).normal(size=(D, T))
    assert gap_safe_screen(datafit, pen, W0).all()
    res = WorkingSet(tol=1e-10).solve(datafit, pen, W0=W0)
    assert res.converged and not res.W.any() and res.n_iter == 0


# ---------------------------------------------------------------- certificate
@pytest.mark.parametrize("tol", [1e-4, 1e-6, 1e-8])
def test_stop_crit_is_the_full_problem_gap(tol):
    """The reported criterion is linear.md's gap of the returned W, over ALL features."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 400))
    Y = X[:, :6] @ rng.normal(size=(6, 5)) + 0.1 * rng.normal(size=(60, 5))
    lam = 0.1 * np.linalg.norm(X.T @ Y, axis=1).max() / 60
    datafit = SquaredLoss("mean").initialize(X, Y)
    res = WorkingSet(tol=tol, initial_size=4, verbose=True).solve(datafit, L21(lam))
    gap = _relative_gap(X, Y, lam, res.W)
    assert res.converged and gap <= tol
    assert res.stop_crit == pytest.approx(gap, rel=1e-6, abs=1e-13)
    assert res.history is not None and res.history[-1][2] == res.stop_crit
    assert len(res.history) >= 3  # the first working set (4 features) was too small


def test_gram_form_datafit_is_never_formed():
    """The full Gram matrix is built lazily and the working set never asks for it."""
    X, Y = _problem("shared")
    alpha = _alpha(SquaredLoss("mean", use_gram=False).initialize(X, Y), L21)
    datafit = SquaredLoss("mean", use_gram=True).initialize(X, Y)
    assert datafit.gram_ and datafit._gram_parts is None
    res = WorkingSet(tol=1e-8, initial_size=3).solve(datafit, L21(alpha))
    assert res.converged and datafit._gram_parts is None
    H, _ = datafit.quadratic_terms()  # formed on demand, equal to the definition
    np.testing.assert_allclose(H, X.T @ X / N, rtol=1e-12)


# ----------------------------------------------------------------- screening
def _iterates(datafit, pen):
    """Points at every distance from the optimum: zero, rough solves, noise."""
    rng = np.random.default_rng(5)
    shape = (datafit.n_features, datafit.n_tasks)
    points = [np.zeros(shape), 0.01 * rng.normal(size=shape)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in (3, 10, 30, 100, 300):
            points.append(FISTA(tol=0.0, max_iter=k).solve(datafit, pen).W)
    return points


@pytest.mark.parametrize("pen_name", sorted(PENALTIES))
@pytest.mark.parametrize("kind", ["shared", "missing", "per_task"])
@pytest.mark.parametrize("icpt", [False, True])
def test_screening_never_removes_a_used_feature(pen_name, kind, icpt):
    X, Y = _problem(kind, seed=4)
    datafit = SquaredLoss("mean", fit_intercept=icpt).initialize(X, Y)
    pen = PENALTIES[pen_name](_alpha(datafit, PENALTIES[pen_name]))
    used = np.abs(_tight(datafit, pen).W).max(axis=1) > 1e-9
    removed = [gap_safe_screen(datafit, pen, W) for W in _iterates(datafit, pen)]
    for mask in removed:
        assert not np.any(mask & used)
    # not vacuous: near the optimum nearly every unused feature goes
    assert removed[-1].sum() >= 0.8 * (~used).sum()


@pytest.mark.parametrize("pen_name", sorted(PENALTIES))
def test_dual_optimum_inside_the_safe_sphere(pen_name):
    """The defining property of the rule: ||theta(W) - theta*|| <= sqrt(2 gap max c_t)."""
    X, Y = _problem("per_task", seed=6)
    datafit = SquaredLoss("sum").initialize(X, Y)
    pen = PENALTIES[pen_name](_alpha(datafit, PENALTIES[pen_name]))
    ref = _tight(datafit, pen)
    r_star = np.concatenate(
        [y - x @ ref.W[:, t] for t, (x, y) in enumerate(zip(X, Y, strict=True))]
    )
    for W in _iterates(datafit, pen):
        resid = np.concatenate([y - x @ W[:, t] for t, (x, y) in enumerate(zip(X, Y, strict=True))])
        G = np.stack(
            [-x.T @ (y - x @ W[:, t]) for t, (x, y) in enumerate(zip(X, Y, strict=True))], 1
        )
        scale = min(1.0, pen.alpha / pen.dual_norm(-G))
        P = 0.5 * np.sum(resid**2) + pen.value(W)
        D_val = scale * resid @ np.concatenate(Y) - 0.5 * scale**2 * resid @ resid
        assert np.linalg.norm(scale * resid - r_star) <= np.sqrt(2 * (P - D_val)) + 1e-9


@pytest.mark.parametrize(("pen_name", "kappa"), [("l21", 1.0), ("lasso", 1.0), ("l1linf", 2.0)])
@pytest.mark.parametrize("icpt", [False, True])
def test_screening_follows_the_sphere_test(pen_name, kappa, icpt):
    """Independent evaluation of the rule on per-task data (c_t = 1/n_t, T = 4 so
    kappa = sqrt(T) = 2 for l1/l_inf): remove j iff
    s omega*(G_j) + sqrt(2 gap max_t c_t) kappa max_t ||x~_tj|| < alpha."""
    Xs, ys = _problem("per_task", seed=9)
    datafit = SquaredLoss("mean", fit_intercept=icpt).initialize(Xs, ys)
    pen = PENALTIES[pen_name](_alpha(datafit, PENALTIES[pen_name]))
    dual_rows = {
        "l21": lambda G: np.linalg.norm(G, axis=1),
        "lasso": lambda G: np.abs(G).max(axis=1),
        "l1linf": lambda G: np.abs(G).sum(axis=1),
    }[pen_name]
    c = np.array([1.0 / len(y) for y in ys])
    Xc = [x - x.mean(0) if icpt else x for x in Xs]
    yc = [y - y.mean() if icpt else y for y in ys]
    col = np.max([np.linalg.norm(x, axis=0) for x in Xc], axis=0)
    n_checked = 0
    for W in _iterates(datafit, pen)[2:]:
        R = [y - x @ W[:, t] for t, (x, y) in enumerate(zip(Xc, yc, strict=True))]
        G = np.stack([-c[t] * x.T @ R[t] for t, x in enumerate(Xc)], axis=1)
        s = min(1.0, pen.alpha / dual_rows(G).max())
        P = sum(0.5 * c[t] * r @ r for t, r in enumerate(R)) + pen.value(W)
        D_val = sum(c[t] * (s * r @ yc[t] - 0.5 * s**2 * r @ r) for t, r in enumerate(R))
        score = s * dual_rows(G) + np.sqrt(2 * (P - D_val) * c.max()) * kappa * col
        far = np.abs(score - pen.alpha) > 1e-6 * pen.alpha  # skip numerical ties
        removed = gap_safe_screen(datafit, pen, W)
        np.testing.assert_array_equal(removed[far], (score < pen.alpha)[far])
        n_checked += int(removed.sum())
    assert n_checked > 0


def test_screening_exact_at_the_optimum():
    """At the optimum (gap ~ 0) the test reduces to the KKT scores: omega*(G_j) < alpha."""
    X, Y = _problem("shared", seed=7)
    datafit = SquaredLoss("mean").initialize(X, Y)
    pen = L21(_alpha(datafit, L21))
    W = _tight(datafit, pen).W
    scores = np.linalg.norm(datafit.gradient(W), axis=1)
    expected = scores < pen.alpha * (1 - 1e-3)
    removed = gap_safe_screen(datafit, pen, W)
    assert np.array_equal(removed[expected], np.ones(expected.sum(), bool))
    assert not np.any(removed[scores > pen.alpha * (1 - 1e-9)])


# --------------------------------------------------------- estimators and routing
def test_estimator_routes_large_row_separable_problems():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(80, 400))  # too many features for ADMM's factorisation
    Y = X[:, :4] @ rng.normal(size=(4, 3)) + 0.05 * rng.normal(size=(80, 3))
    auto = L21Regressor(alpha=0.05, tol=1e-9).fit(X, Y)
    assert isinstance(auto.solver_, WorkingSet)
    plain = L21Regressor(alpha=0.05, tol=1e-11, solver=FISTA(), max_iter=50000).fit(X, Y)
    np.testing.assert_allclose(auto.coef_, plain.coef_, atol=1e-5)
    np.testing.assert_allclose(auto.intercept_, plain.intercept_, atol=1e-5)
    small = L21Regressor(alpha=0.05).fit(X[:, :20], Y)
    assert not isinstance(small.solver_, WorkingSet)
    smooth = MultiTaskRegressor([L21(0.05), Ridge(0.1)]).fit(X, Y)
    assert not isinstance(smooth.solver_, WorkingSet)


def test_estimator_accepts_a_user_working_set():
    X, Y = _problem("shared")
    model = L21Regressor(alpha=0.1, solver=WorkingSet(initial_size=2), tol=1e-9).fit(X, Y)
    assert model.solver_.tol == 1e-9 and model.stop_crit_ <= 1e-9


# ------------------------------------------------------------------- restriction
@pytest.mark.parametrize("kind", ["shared", "missing", "per_task"])
def test_restrict_design_selects_columns(kind):
    X, Y = _problem(kind)
    design = TaskDesign.shared(X, Y) if kind != "per_task" else TaskDesign.per_task(X, Y)
    idx = np.array([7, 1, 30])
    sub = restrict_design(design, idx)
    assert sub.n_features == 3 and sub.n_tasks == T
    np.testing.assert_array_equal(sub.n_samples, design.n_samples)
    if kind == "per_task":
        for a, b in zip(sub.Xs, X, strict=True):
            np.testing.assert_array_equal(a, b[:, idx])
    else:
        np.testing.assert_array_equal(sub.X, X[:, idx])
        np.testing.assert_array_equal(sub.mask is None, kind == "shared")


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"max_outer": 0}, "max_outer must be an integer >= 1"),
        ({"initial_size": 1.5}, "initial_size must be an integer >= 1"),
        ({"inner_tol_ratio": 1.0}, r"inner_tol_ratio must be in \(0, 1\)"),
        ({"screening": "yes"}, "screening must be a bool"),
        ({"inner": object()}, "inner must be a solver"),
        ({"tol": -1.0}, "tol must be a number >= 0"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1"),
    ],
)
def test_invalid_parameters(params, match):
    X, Y = _problem("shared")
    datafit = SquaredLoss().initialize(X, Y)
    with pytest.raises(ValueError, match=match):
        WorkingSet(**params).solve(datafit, L21(0.1))


def test_invalid_inputs():
    X, Y = _problem("shared")
    datafit = SquaredLoss().initialize(X, Y)
    with pytest.raises(ValueError, match=r"row-separable norm .* got TraceNorm"):
        WorkingSet().solve(datafit, TraceNorm(0.1))
    with pytest.raises(ValueError, match="smooth penalties are not supported"):
        WorkingSet().solve(datafit, L21(0.1), smooth=[Ridge(0.1)])
    with pytest.raises(ValueError, match="not initialized"):
        WorkingSet().solve(SquaredLoss(), L21(0.1))
    with pytest.raises(ValueError, match=r"W0 must have shape \(40, 4\)"):
        WorkingSet().solve(datafit, L21(0.1), W0=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="gap_safe_screen: datafit must be an initialized"):
        gap_safe_screen(LogisticLoss().initialize(X, (Y > 0).astype(float)), L21(0.1), 0 * X.T)
    with pytest.raises(ValueError, match="gap_safe_screen: penalty alpha must be > 0"):
        gap_safe_screen(datafit, L21(0.0), np.zeros((D, T)))
    with pytest.raises(ValueError, match="gap_safe_screen: penalty must be a row-separable"):
        gap_safe_screen(datafit, TraceNorm(0.1), np.zeros((D, T)))
    with pytest.raises(ValueError, match="restrict_design: features must be a 1-D array"):
        restrict_design(datafit.design_, [0, D])


def test_max_outer_reached_warns():
    X, Y = _problem("shared")
    datafit = SquaredLoss().initialize(X, Y)
    with pytest.warns(ConvergenceWarning, match="WorkingSet did not converge"):
        res = WorkingSet(max_outer=1, initial_size=1, tol=1e-12).solve(
            datafit, L21(_alpha(datafit, L21))
        )
    assert not res.converged and res.stop_crit > 1e-12
