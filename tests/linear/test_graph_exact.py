"""Exact graph-regularised least squares (``GraphRegularizedSolver``).

References are independent of the solver: the dense (d T) x (d T) normal equations are
assembled here from the raw data (centred by hand, task weights by hand, Laplacian
``D - A`` by hand) and solved with ``numpy.linalg.solve``; FISTA at a tight tolerance
solves the same objective iteratively; the KKT residual (gradient of the whole
objective) is recomputed from the raw data.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import scipy.sparse.linalg
from sklearn.exceptions import ConvergenceWarning

from polytask.linear import (
    FISTA,
    L21,
    GraphRegularized,
    LogisticLoss,
    MeanRegularized,
    MeanRegularizedSolver,
    MultiTaskRegressor,
    Ridge,
    SquaredLoss,
    ZeroPenalty,
    choose_solver,
    split_penalties,
)
from polytask.linear._graph_exact import (
    GraphRegularizedSolver,
    _band_order,
    _banded,
    exact_cost,
    graph_exact_applies,
    solve_graph_regularized,
    task_coupling,
)

D, T = 5, 6


def _graph(kind: str, n_tasks: int = T, seed: int = 0) -> np.ndarray:
    """Symmetric non-negative adjacency of a few shapes (weights not all 1)."""
    rng = np.random.default_rng(seed)
    if kind == "chain":
        A = np.diag(rng.uniform(0.5, 2.0, n_tasks - 1), 1)
    elif kind == "star":
        A = np.zeros((n_tasks, n_tasks))
        A[0, 1:] = rng.uniform(0.5, 2.0, n_tasks - 1)
    elif kind == "random":
        A = np.triu(
            rng.uniform(0.5, 2.0, (n_tasks, n_tasks)) * (rng.random((n_tasks,) * 2) < 0.4), 1
        )
    elif kind == "complete":
        A = np.triu(rng.uniform(0.5, 2.0, (n_tasks, n_tasks)), 1)
    else:  # two components, one of them a single isolated task
        A = np.diag(np.r_[rng.uniform(0.5, 2.0, n_tasks - 2), 0.0], 1)
    return A + A.T


def _data(design: str, seed: int = 1, d: int = D, n_tasks: int = T) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, 1)) + 0.3 * rng.normal(size=(d, n_tasks))
    if design == "per_task":
        Xs = [
            rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, d) for n in rng.integers(8, 20, n_tasks)
        ]
        ys = [x @ W[:, t] + 0.5 + 0.2 * rng.normal(size=len(x)) for t, x in enumerate(Xs)]
        return Xs, ys
    X = rng.normal(size=(25, d)) * rng.uniform(0.5, 3.0, d)
    Y = X @ W + 0.2 * rng.normal(size=(25, n_tasks)) + 1.0
    if design == "missing":
        Y[rng.random(Y.shape) < 0.25] = np.nan
    return X, Y


def _task_pairs(X: Any, Y: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every task's observed (X_t, y_t)."""
    if isinstance(X, list):
        return list(zip(X, Y, strict=True))
    return [(X[~np.isnan(Y[:, t])], Y[~np.isnan(Y[:, t]), t]) for t in range(Y.shape[1])]


def _laplacian(A: np.ndarray) -> np.ndarray:
    return np.diag(A.sum(axis=1)) - A


def _reference(pairs: list, M: np.ndarray, normalization: str, intercept: bool) -> np.ndarray:
    """Dense normal equations sum_t c_t Xc^T (Xc w_t - yc) + (W M)_t = 0, from raw data."""
    n_tasks, d = len(pairs), pairs[0][0].shape[1]
    K = np.kron(M, np.eye(d))
    rhs = np.zeros(d * n_tasks)
    for t, (x, y) in enumerate(pairs):
        c = 1.0 / len(y) if normalization == "mean" else 1.0
        xc, yc = (x - x.mean(0), y - y.mean()) if intercept else (x, y)
        K[t * d : (t + 1) * d, t * d : (t + 1) * d] += c * xc.T @ xc
        rhs[t * d : (t + 1) * d] = c * xc.T @ yc
    return np.linalg.solve(K, rhs).reshape(n_tasks, d).T


def _kkt(pairs: list, M: np.ndarray, normalization: str, intercept: bool, W: np.ndarray) -> float:
    """||gradient of the objective at W|| / ||gradient at 0||, from raw data."""
    G, G0 = W @ M, np.zeros_like(W)
    for t, (x, y) in enumerate(pairs):
        c = 1.0 / len(y) if normalization == "mean" else 1.0
        xc, yc = (x - x.mean(0), y - y.mean()) if intercept else (x, y)
        G[:, t] += c * xc.T @ (xc @ W[:, t] - yc)
        G0[:, t] = -c * xc.T @ yc
    return float(np.linalg.norm(G) / np.linalg.norm(G0))


PENALTIES = {
    "graph": lambda A: GraphRegularized(0.7, A),
    "graph+ridge": lambda A: [GraphRegularized(0.7, A), Ridge(0.3)],
    "ridge+graph(incidence)": lambda A: [
        Ridge(0.3),
        GraphRegularized(0.7, _incidence(A), "incidence"),
    ],
    "graph+meanreg": lambda A: [GraphRegularized(0.4, A), MeanRegularized(0.5, 0.1)],
}


def _incidence(A: np.ndarray) -> np.ndarray:
    """R with one column sqrt(A_st) (e_s - e_t) per edge s < t, so that R R^T = D - A."""
    s, t = np.nonzero(np.triu(A, 1))
    R = np.zeros((A.shape[0], s.size))
    R[s, np.arange(s.size)] = np.sqrt(A[s, t])
    R[t, np.arange(s.size)] = -np.sqrt(A[s, t])
    return R


def _coupling_by_hand(name: str, A: np.ndarray) -> np.ndarray:
    L, eye = _laplacian(A), np.eye(A.shape[0])
    centring = eye - 1.0 / A.shape[0]
    return {
        "graph": 1.4 * L,
        "graph+ridge": 1.4 * L + 0.3 * eye,
        "ridge+graph(incidence)": 1.4 * L + 0.3 * eye,
        "graph+meanreg": 0.8 * L + 1.0 * centring + 0.2 * eye,
    }[name]


# ---------------------------------------------------------------------- coupling matrix
@pytest.mark.parametrize("name", list(PENALTIES))
def test_coupling_is_the_penalties_hessian(name: str) -> None:
    A = _graph("random")
    pens = PENALTIES[name](A)
    pens = pens if isinstance(pens, list) else [pens]
    M = task_coupling(pens, T)
    np.testing.assert_allclose(M, _coupling_by_hand(name, A), atol=1e-12)
    W = np.random.default_rng(2).normal(size=(D, T))
    np.testing.assert_allclose(sum(p.gradient(W) for p in pens), W @ M, atol=1e-12)


@pytest.fixture
def direct_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if the conjugate-gradient fallback runs (the system is positive definite)."""

    def no_cg(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the banded Cholesky solve should not have needed CG")

    monkeypatch.setattr(scipy.sparse.linalg, "cg", no_cg)


@pytest.mark.parametrize("graph", ["chain", "star", "random", "complete", "split"])
def test_banded_storage_holds_the_whole_system(graph: str) -> None:
    rng = np.random.default_rng(10)
    Z = rng.normal(size=(T, 8, D))
    H = np.einsum("tij,tik->tjk", Z, Z)
    M = 0.9 * _laplacian(_graph(graph)) + 0.2 * np.eye(T)
    perm, u = _band_order(M, D)
    assert sorted(perm) == list(range(T))
    Hp, Mp = H[perm], M[np.ix_(perm, perm)]
    K = np.kron(Mp, np.eye(D))
    for t in range(T):
        K[t * D : (t + 1) * D, t * D : (t + 1) * D] += Hp[t]
    ab = _banded(Hp, Mp, u)
    n = D * T
    i, j = np.triu_indices(n)
    inside = j - i <= u
    np.testing.assert_array_equal(ab[u + i[inside] - j[inside], j[inside]], K[i[inside], j[inside]])
    assert np.all(K[i[~inside], j[~inside]] == 0)  # nothing lies outside the band
    assert ab.shape == (u + 1, n)


# ---------------------------------------------------------------------- solutions
@pytest.mark.usefixtures("direct_only")
@pytest.mark.parametrize("design", ["shared", "per_task", "missing"])
@pytest.mark.parametrize("graph", ["chain", "star", "random", "complete", "split"])
@pytest.mark.parametrize(("normalization", "intercept"), [("sum", False), ("mean", True)])
def test_exact_solution_matches_the_dense_normal_equations(
    design: str, graph: str, normalization: str, intercept: bool
) -> None:
    X, Y = _data(design)
    A = _graph(graph)
    prox, smooth = split_penalties([GraphRegularized(0.7, A), Ridge(0.3)])
    datafit = SquaredLoss(normalization, fit_intercept=intercept).initialize(X, Y)
    res = GraphRegularizedSolver(tol=1e-10).solve(datafit, prox, smooth=smooth)
    pairs = _task_pairs(X, Y)
    M = 1.4 * _laplacian(A) + 0.3 * np.eye(T)
    ref = _reference(pairs, M, normalization, intercept)
    np.testing.assert_allclose(res.W, ref, rtol=1e-9, atol=1e-10 * np.abs(ref).max())
    assert res.converged and res.n_iter == 1 and res.stop_crit <= 1e-10
    assert _kkt(pairs, M, normalization, intercept, res.W) <= 1e-10


@pytest.mark.parametrize("name", list(PENALTIES))
@pytest.mark.parametrize("design", ["shared", "per_task"])
def test_exact_solution_matches_fista(name: str, design: str) -> None:
    X, Y = _data(design, seed=3)
    prox, smooth = split_penalties(PENALTIES[name](_graph("random", seed=4)))
    datafit = SquaredLoss("mean").initialize(X, Y)
    exact = GraphRegularizedSolver(tol=1e-10).solve(datafit, prox, smooth=smooth)
    fista = FISTA(tol=1e-12, max_iter=20000).solve(datafit, prox, smooth=smooth)
    assert fista.converged
    scale = np.abs(exact.W).max()
    np.testing.assert_allclose(exact.W, fista.W, rtol=0, atol=1e-7 * scale)
    assert exact.objective <= fista.objective + 1e-12 * abs(fista.objective)
    assert exact.objective == pytest.approx(fista.objective, rel=1e-11)


@pytest.mark.parametrize("design", ["shared", "per_task"])
def test_singular_system_gives_a_minimiser(design: str) -> None:
    """No ridge and more features than samples (an isolated task in the per-task case):
    the minimiser is not unique; the returned one has zero gradient."""
    rng = np.random.default_rng(5)
    d = 12
    if design == "shared":
        X, Y = rng.normal(size=(6, d)), rng.normal(size=(6, T))
    else:
        X = [rng.normal(size=(n, d)) for n in (4, 5, 6, 4, 5, 3)]
        Y = [rng.normal(size=len(x)) for x in X]
    A = _graph("split")
    datafit = SquaredLoss().initialize(X, Y)
    res = GraphRegularizedSolver(tol=1e-8).solve(datafit, GraphRegularized(0.5, A))
    assert res.converged
    assert _kkt(_task_pairs(X, Y), _laplacian(A), "sum", False, res.W) <= 1e-8
    # Every minimiser has the same objective: compare with a slightly ridged one.
    ridged = GraphRegularizedSolver(tol=1e-8).solve(
        datafit, GraphRegularized(0.5, A), smooth=[Ridge(1e-9)]
    )
    assert res.objective <= ridged.objective + 1e-6 * abs(ridged.objective)


def test_solve_function_on_a_shared_hessian_matches_kronecker_solve() -> None:
    rng = np.random.default_rng(6)
    Z = rng.normal(size=(9, D))
    H, B = Z.T @ Z, rng.normal(size=(D, T))
    M = 2.0 * _laplacian(_graph("complete")) + 0.1 * np.eye(T)
    W = solve_graph_regularized(H, B, M)
    K = np.kron(np.eye(T), H) + np.kron(M, np.eye(D))
    np.testing.assert_allclose(W.T.ravel(), np.linalg.solve(K, B.T.ravel()), rtol=1e-9)
    np.testing.assert_allclose(H @ W + W @ M, B, atol=1e-10)  # the Sylvester equation


# ---------------------------------------------------------------------- cost and routing
@pytest.mark.parametrize(("graph", "beta"), [("chain", 1), ("star", None), ("complete", T - 1)])
def test_cost_follows_the_band_of_the_ordered_graph(graph: str, beta: int | None) -> None:
    M = _laplacian(_graph(graph))
    flops, size = exact_cost(D, M, shared=False)
    u = (size / (8.0 * D * T)) - 1
    if beta is not None:
        assert u == D * (beta + 1) - 1
    assert flops == pytest.approx(D * T * (u + 1) ** 2)
    assert exact_cost(D, M, shared=True)[0] == pytest.approx(10.0 * (D**3 + T**3))


def _chosen(penalty: Any, design: str = "per_task", **kwargs: Any) -> Any:
    X, Y = _data(design)
    est = MultiTaskRegressor(penalty=penalty, tol=1e-10, **kwargs)
    prox, smooth = split_penalties(penalty)
    return choose_solver(est, SquaredLoss().initialize(X, Y), prox, smooth)


@pytest.mark.parametrize(
    ("penalty", "expected"),
    [
        (lambda A: GraphRegularized(0.7, A), GraphRegularizedSolver),
        (lambda A: [GraphRegularized(0.7, A), Ridge(0.3)], GraphRegularizedSolver),
        (
            lambda A: [Ridge(0.3), GraphRegularized(0.7, A), MeanRegularized(0.2)],
            GraphRegularizedSolver,
        ),
        (lambda A: MeanRegularized(0.2, 0.1), MeanRegularizedSolver),
        (lambda A: [L21(0.1), GraphRegularized(0.7, A)], FISTA),
    ],
)
def test_estimators_route_graph_least_squares_to_the_exact_solver(
    penalty: Any, expected: type
) -> None:
    assert type(_chosen(penalty(_graph("chain")))) is expected


def test_unaffordable_systems_stay_iterative() -> None:
    n_tasks, d = 120, 30  # complete graph: a dense system of 3600 unknowns, ~4.7e10 flops
    A = np.ones((n_tasks, n_tasks)) - np.eye(n_tasks)
    rng = np.random.default_rng(7)
    Xs = [rng.normal(size=(3, d)) for _ in range(n_tasks)]
    ys = [rng.normal(size=3) for _ in range(n_tasks)]
    loss = SquaredLoss().initialize(Xs, ys)
    chain = np.diag(np.ones(n_tasks - 1), 1)
    assert graph_exact_applies(loss, GraphRegularized(1.0, chain + chain.T), ())
    big = [GraphRegularized(1.0, A), MeanRegularized(1.0)]
    assert exact_cost(d, task_coupling(big, n_tasks), shared=False)[1] <= 2.0**28
    d_big = 80  # 9600 unknowns in a dense band: over the 1e11-flop budget
    Xs = [rng.normal(size=(3, d_big)) for _ in range(n_tasks)]
    loss = SquaredLoss().initialize(Xs, ys)
    assert not graph_exact_applies(loss, GraphRegularized(1.0, A), ())
    assert not graph_exact_applies(LogisticLoss().initialize(Xs, [y > 0 for y in ys]), big[0], ())


@pytest.mark.parametrize(("normalization", "intercept"), [("mean", True), ("sum", False)])
def test_estimator_fit_equals_the_reference(normalization: str, intercept: bool) -> None:
    X, Y = _data("per_task", seed=8)
    A = _graph("random", seed=9)
    kwargs = {"normalization": normalization, "fit_intercept": intercept, "tol": 1e-10}
    model = MultiTaskRegressor(penalty=[GraphRegularized(0.7, A), Ridge(0.3)], **kwargs)
    model.fit(list(zip(X, Y, strict=True)))
    assert isinstance(model.solver_, GraphRegularizedSolver) and model.n_iter_ == 1
    pairs = _task_pairs(X, Y)
    ref = _reference(pairs, 1.4 * _laplacian(A) + 0.3 * np.eye(T), normalization, intercept)
    np.testing.assert_allclose(model.coef_, ref.T, rtol=1e-9, atol=1e-12)
    expected_b = [y.mean() - x.mean(0) @ w for (x, y), w in zip(pairs, ref.T, strict=True)]
    np.testing.assert_allclose(model.intercept_, expected_b if intercept else 0.0, atol=1e-9)
    # Same model through FISTA, chosen by hand.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        slow = MultiTaskRegressor(
            penalty=[GraphRegularized(0.7, A), Ridge(0.3)],
            solver=FISTA(),
            max_iter=20000,
            **{**kwargs, "tol": 1e-12},
        ).fit(list(zip(X, Y, strict=True)))
    np.testing.assert_allclose(model.coef_, slow.coef_, atol=1e-7 * np.abs(ref).max())


# ---------------------------------------------------------------------- errors
def test_solver_errors_name_the_problem() -> None:
    X, Y = _data("shared")
    loss = SquaredLoss().initialize(X, Y)
    A = _graph("chain")
    solver = GraphRegularizedSolver()
    with pytest.raises(ValueError, match="GraphRegularizedSolver: penalty L21 is not a quadratic"):
        solver.solve(loss, L21(0.1), smooth=[GraphRegularized(1.0, A)])
    with pytest.raises(ValueError, match=r"graph has 4 tasks but the data have 6"):
        solver.solve(loss, GraphRegularized(1.0, np.ones((4, 4))))
    with pytest.raises(ValueError, match=r"needs datafit\.quadratic_terms"):
        solver.solve(LogisticLoss().initialize(X, Y > 1.0), GraphRegularized(1.0, A))
    with pytest.raises(ValueError, match="tol must be a number >= 0"):
        GraphRegularizedSolver(tol=-1.0).solve(loss, GraphRegularized(1.0, A))
    with pytest.raises(ValueError, match="not initialized"):
        solver.solve(SquaredLoss(), GraphRegularized(1.0, A))
    with pytest.raises(ValueError, match="graph must be symmetric"):
        solver.solve(loss, ZeroPenalty(), smooth=[GraphRegularized(1.0, np.triu(np.ones((T, T))))])


@pytest.mark.parametrize(
    ("H", "B", "M", "match"),
    [
        (np.eye(3), np.ones(3), np.eye(1), "B must be 2-D"),
        (np.eye(2), np.ones((3, 2)), np.eye(2), r"H must have shape \(3, 3\) or \(2, 3, 3\)"),
        (np.eye(3), np.ones((3, 2)), np.eye(3), r"coupling must be a symmetric \(2, 2\)"),
        (np.eye(3), np.ones((3, 2)), np.array([[1.0, 1.0], [0.0, 1.0]]), "symmetric"),
    ],
)
def test_solve_function_checks_shapes(H: Any, B: Any, M: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        solve_graph_regularized(H, B, M)
