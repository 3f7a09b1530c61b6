"""Datafits: gradients, Lipschitz bounds, conjugates, intercepts and input errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad, minimize_scalar

from polytask.linear import LogisticLoss, SquaredLoss, TaskDesign

D, T = 4, 3
SIZES = (12, 17, 9)


def _data(kind: str, loss: str, seed: int = 0):
    """Shared design with ~20% missing labels, or per-task designs of unequal sizes."""
    rng = np.random.default_rng(seed)
    if kind == "shared":
        X = rng.normal(size=(25, D)) + 0.5
        Y = rng.normal(size=(25, T))
        if loss == "logistic":
            Y = (Y > 0).astype(float)
        Y[rng.random(Y.shape) < 0.2] = np.nan
        return X, Y
    Xs = [rng.normal(size=(n, D)) + 0.5 for n in SIZES]
    ys = [rng.normal(size=n) for n in SIZES]
    if loss == "logistic":
        ys = [np.where(y > 0, 1.0, -1.0) for y in ys]  # {-1, 1} labels are accepted
    return Xs, ys


def _tasks(X, Y):
    """Per-task (X_t, y_t, weight-free) lists from either form, labels as given."""
    if isinstance(X, list):
        return list(zip(X, Y, strict=True))
    out = []
    for t in range(Y.shape[1]):
        keep = ~np.isnan(Y[:, t])
        out.append((X[keep], Y[keep, t]))
    return out


def _make(loss: str, normalization: str, fit_intercept: bool, gram: bool | None):
    if loss == "squared":
        return SquaredLoss(normalization, fit_intercept, use_gram=gram)
    return LogisticLoss(normalization, fit_intercept)


CASES = [
    (kind, loss, norm, icpt, gram)
    for kind in ("shared", "tasks")
    for loss in ("squared", "logistic")
    for norm in ("sum", "mean")
    for icpt in (False, True)
    for gram in ((True, False) if loss == "squared" else (None,))
]


@pytest.mark.parametrize(("kind", "loss", "norm", "icpt", "gram"), CASES)
def test_gradient_matches_finite_differences(kind, loss, norm, icpt, gram):
    X, Y = _data(kind, loss)
    f = _make(loss, norm, icpt, gram).initialize(X, Y)
    rng = np.random.default_rng(1)
    w0 = 0.3 * rng.normal(size=D * T)
    err = check_grad(
        lambda w: f.value(w.reshape(D, T)), lambda w: f.gradient(w.reshape(D, T)).ravel(), w0
    )
    scale = np.linalg.norm(f.gradient(w0.reshape(D, T)))
    assert err <= 1e-5 * max(scale, 1.0)


def _reference_value(loss: str, norm: str, icpt: bool, tasks, W) -> float:
    """Direct per-task evaluation, intercepts minimised numerically (independent code)."""
    total = 0.0
    for t, (Xt, yt) in enumerate(tasks):
        c = 1.0 if norm == "sum" else 1.0 / len(yt)
        z0 = Xt @ W[:, t]
        if loss == "squared":

            def task_loss(b, z0=z0, yt=yt):
                return 0.5 * np.sum((yt - z0 - b) ** 2)

        else:
            y01 = (yt + 1) / 2 if yt.min() < 0 else yt

            def task_loss(b, z0=z0, y01=y01):
                z = z0 + b
                return np.sum(np.logaddexp(0, z) - y01 * z)

        best = minimize_scalar(task_loss, tol=1e-12).fun if icpt else task_loss(0.0)
        total += c * best
    return total


@pytest.mark.parametrize(("kind", "loss", "norm", "icpt", "gram"), CASES)
def test_value_matches_direct_formula(kind, loss, norm, icpt, gram):
    X, Y = _data(kind, loss)
    f = _make(loss, norm, icpt, gram).initialize(X, Y)
    W = np.random.default_rng(2).normal(size=(D, T))
    ref = _reference_value(loss, norm, icpt, _tasks(X, Y), W)
    assert f.value(W) == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize(("kind", "loss", "norm", "icpt", "gram"), CASES)
def test_fenchel_young_equality_at_natural_dual_point(kind, loss, norm, icpt, gram):
    # With u = grad f(z): f(z) + f*(u) = <u, z>, hence D(scale=1) = F(W) - <grad F(W), W>.
    X, Y = _data(kind, loss)
    f = _make(loss, norm, icpt, gram).initialize(X, Y)
    W = 0.5 * np.random.default_rng(3).normal(size=(D, T))
    S = f.state(W)
    expected = f.value(W, S) - np.vdot(f.gradient(W, S), W)
    assert f.dual_value(W, S, 1.0) == pytest.approx(expected, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize(("kind", "loss", "norm", "icpt", "gram"), CASES)
def test_weak_duality_for_scaled_dual_points(kind, loss, norm, icpt, gram):
    # For a dual-feasible scaling, P(W) >= D; for L21 with alpha = dual norm of -grad
    # the scale 1 point is feasible, so any alpha >= that gives D <= P.
    X, Y = _data(kind, loss)
    f = _make(loss, norm, icpt, gram).initialize(X, Y)
    rng = np.random.default_rng(4)
    for _ in range(3):
        W = rng.normal(size=(D, T))
        S = f.state(W)
        G = f.gradient(W, S)
        alpha = np.sqrt((G**2).sum(axis=1)).max()
        for scale in (1.0, 0.5, 0.1):
            P = f.value(W, S) + scale * alpha * np.sqrt((W**2).sum(axis=1)).sum()
            assert f.dual_value(W, S, scale) <= P + 1e-10 * abs(P)


def _hessian_fd(f, W):
    n = W.size
    H = np.empty((n, n))
    h = 1e-6
    for i in range(n):
        E = np.zeros(n)
        E[i] = h
        gp = f.gradient((W.ravel() + E).reshape(W.shape)).ravel()
        gm = f.gradient((W.ravel() - E).reshape(W.shape)).ravel()
        H[:, i] = (gp - gm) / (2 * h)
    return 0.5 * (H + H.T)


@pytest.mark.parametrize(("kind", "loss", "norm", "icpt", "gram"), CASES)
def test_lipschitz_bounds_the_hessian(kind, loss, norm, icpt, gram):
    X, Y = _data(kind, loss)
    f = _make(loss, norm, icpt, gram).initialize(X, Y)
    L, Lt = f.lipschitz(), f.task_lipschitz()
    assert Lt.shape == (T,)
    assert L == pytest.approx(Lt.max(), rel=1e-6)
    rng = np.random.default_rng(5)
    for W in (np.zeros((D, T)), 0.5 * rng.normal(size=(D, T))):
        H = _hessian_fd(f, W)
        assert np.linalg.eigvalsh(H)[-1] <= L * (1 + 1e-5)
        # tasks are separable: column t of W only touches task t
        for t in range(T):
            idx = np.arange(D) * T + t
            assert np.linalg.eigvalsh(H[np.ix_(idx, idx)])[-1] <= Lt[t] * (1 + 1e-5)
    if loss == "squared":  # the bound is exact for a quadratic
        assert L == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-4)


@pytest.mark.parametrize("kind", ["shared", "tasks"])
@pytest.mark.parametrize("icpt", [False, True])
def test_squared_hessian_diagonal_and_prox_solve(kind, icpt):
    X, Y = _data(kind, "squared")
    for gram in (True, False):
        f = SquaredLoss("mean", icpt, use_gram=gram).initialize(X, Y)
        H = _hessian_fd(f, np.zeros((D, T)))
        assert np.allclose(f.hessian_diagonal().ravel(), np.diag(H), rtol=1e-5, atol=1e-8)
        V = np.random.default_rng(6).normal(size=(D, T))
        for rho in (0.1, 3.0):
            Wp = f.prox_solve(V, rho)
            assert np.allclose(f.gradient(Wp) + rho * (Wp - V), 0.0, atol=1e-9)


@pytest.mark.parametrize("kind", ["shared", "tasks"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_intercepts_are_optimal(kind, loss):
    X, Y = _data(kind, loss)
    f = _make(loss, "sum", True, None).initialize(X, Y)
    W = np.random.default_rng(7).normal(size=(D, T))
    b = f.intercept(W)
    for t, (Xt, yt) in enumerate(_tasks(X, Y)):
        z = Xt @ W[:, t] + b[t]
        if loss == "squared":
            assert np.sum(yt - z) == pytest.approx(0.0, abs=1e-9)
        else:
            y01 = (yt + 1) / 2 if yt.min() < 0 else yt
            assert np.sum(1 / (1 + np.exp(-z)) - y01) == pytest.approx(0.0, abs=1e-9)
    no_icpt = _make(loss, "sum", False, None).initialize(X, Y)
    assert np.all(no_icpt.intercept(W) == 0.0)


def test_mean_normalisation_is_sklearn_convention_on_complete_data():
    rng = np.random.default_rng(8)
    X, Y = rng.normal(size=(30, D)), rng.normal(size=(30, T))
    W = rng.normal(size=(D, T))
    f = SquaredLoss("mean").initialize(X, Y)
    assert f.value(W) == pytest.approx(0.5 * np.sum((Y - X @ W) ** 2) / 30, rel=1e-12)


def test_design_accessors():
    X, Y = _data("shared", "squared")
    design = TaskDesign.shared(X, Y)
    assert design.n_samples.tolist() == (~np.isnan(Y)).sum(axis=0).tolist()
    f = SquaredLoss().initialize(design)
    assert f.n_tasks == T
    Xs, ys = _data("tasks", "squared")
    d2 = TaskDesign.per_task(Xs, ys)
    assert d2.task_index().tolist() == np.repeat(np.arange(T), SIZES).tolist()
    assert d2.offsets.tolist() == [0, 12, 29, 38]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: SquaredLoss("median").initialize(np.ones((3, 2)), np.ones(3)), "normalization"),
        (lambda: SquaredLoss().value(np.zeros((2, 1))), "not initialized"),
        (
            lambda: SquaredLoss().initialize(np.ones((3, 2)), np.ones(3)).value(np.zeros((3, 1))),
            r"W must have shape \(n_features, n_tasks\) = \(2, 1\)",
        ),
        (lambda: TaskDesign.shared(np.array([[np.nan, 1.0]]), [1.0]), "NaN or infinite"),
        (lambda: TaskDesign.shared(np.ones((3, 2)), np.ones((4, 1))), "n_samples=3"),
        (
            lambda: TaskDesign.shared(np.ones((2, 2)), np.array([[1.0, np.nan], [2.0, np.nan]])),
            "task 1 has no observed label",
        ),
        (lambda: TaskDesign.per_task([np.ones((3, 2))], [np.ones(2)]), "task 0: X has 3 rows"),
        (
            lambda: TaskDesign.per_task([np.ones((3, 2)), np.ones((3, 3))], [np.ones(3)] * 2),
            "task 1: X has 3 features",
        ),
        (lambda: TaskDesign.per_task([np.ones((3, 2))], [[1.0, np.nan, 2.0]]), "task 0: y"),
        (
            lambda: LogisticLoss().initialize(np.ones((3, 2)), np.array([0.0, 1.0, 2.0])),
            r"labels must be in \{0, 1\} or \{-1, 1\}",
        ),
        (
            lambda: LogisticLoss(fit_intercept=True).initialize(
                [np.ones((2, 2)), np.ones((2, 2))], [[0.0, 1.0], [1.0, 1.0]]
            ),
            "task 1 has labels of one class only",
        ),
        (lambda: SquaredLoss().initialize(np.ones((3, 2))), "Y is required"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(("kind", "loss", "norm", "icpt", "gram"), CASES)
def test_bregman_divergence_matches_its_definition(kind, loss, norm, icpt, gram):
    X, Y = _data(kind, loss)
    f = _make(loss, norm, icpt, gram).initialize(X, Y)
    rng = np.random.default_rng(9)
    A = rng.normal(size=(D, T))
    for step in (1.0, 1e-3):
        B = A + step * rng.normal(size=(D, T))
        ref = f.value(B) - f.value(A) - np.vdot(f.gradient(A), B - A)
        got = f.bregman(A, f.state(A), B, f.state(B))
        assert got >= 0.0
        assert got == pytest.approx(ref, rel=1e-5, abs=1e-12 * abs(f.value(A)))


@pytest.mark.parametrize("norm", ["sum", "mean"])
@pytest.mark.parametrize("icpt", [False, True])
def test_lipschitz_shared_design_without_gram_equals_top_eigenvalue(norm, icpt):
    # The shared-design, no-missing-label branch runs Lanczos in R^d on c X_c^T X_c.
    rng = np.random.default_rng(11)
    n, d, t = 60, 8, 3
    X = rng.normal(size=(n, d)) + rng.normal(size=d)
    Y = rng.normal(size=(n, t))
    f = SquaredLoss(norm, fit_intercept=icpt, use_gram=False).initialize(X, Y)
    Xc = X - X.mean(axis=0) if icpt else X
    c = 1.0 if norm == "sum" else 1.0 / n
    assert f.lipschitz() == pytest.approx(np.linalg.eigvalsh(c * Xc.T @ Xc)[-1], rel=1e-6)
