"""Tests of the norm penalties of polytask.linear and of every penalty's validation.

References are independent of the implementation: cvxpy (Clarabel) for proxes, dual
norms and subdifferential distances; a least-squares datafit written here for alpha_max.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
from sklearn.base import clone

from polytask.linear._penalties import (
    L21,
    Clustered,
    Dirty,
    GraphRegularized,
    L1Linf,
    Lasso,
    MeanRegularized,
    Ridge,
    Robust,
    SparseLowRank,
    TraceNorm,
)
from polytask.linear._penalties_norms import _L21Columns

TIGHT = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9}


def solve(problem: cp.Problem) -> float:
    problem.solve(solver=cp.CLARABEL, **TIGHT)
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
    return float(problem.value)


# name -> (class, Omega as a cvxpy expression, Omega* as a cvxpy expression)


def structured(seed: int, shape: tuple[int, int] = (6, 4)) -> np.ndarray:
    """A random matrix with rows of very different scales (so proxes zero some out)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * rng.uniform(0.05, 2.0, size=(shape[0], 1))


def ls_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((20, 6))
    Y = X @ rng.standard_normal((6, 4)) + 0.1 * rng.standard_normal((20, 4))
    return X, Y


def ls_gradient(X: np.ndarray, Y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Gradient of F(W) = 1/(2n) ||Y - X W||_F^2."""
    return X.T @ (X @ W - Y) / X.shape[0]


NORMS: dict[str, tuple[type, Callable, Callable]] = {
    "Lasso": (Lasso, lambda Z: cp.sum(cp.abs(Z)), lambda Z: cp.max(cp.abs(Z))),
    "L21": (
        L21,
        lambda Z: cp.sum(cp.norm(Z, 2, axis=1)),
        lambda Z: cp.max(cp.norm(Z, 2, axis=1)),
    ),
    "L1Linf": (
        L1Linf,
        lambda Z: cp.sum(cp.max(cp.abs(Z), axis=1)),
        lambda Z: cp.max(cp.sum(cp.abs(Z), axis=1)),
    ),
    "TraceNorm": (TraceNorm, cp.normNuc, cp.sigma_max),
    "L21Columns": (
        _L21Columns,
        lambda Z: cp.sum(cp.norm(Z, 2, axis=0)),
        lambda Z: cp.max(cp.norm(Z, 2, axis=0)),
    ),
}
NORM_NAMES = sorted(NORMS)


# ---------------------------------------------------------------- norm penalties
@pytest.mark.parametrize("name", NORM_NAMES)
def test_norm_value_matches_cvxpy_expression(name: str) -> None:
    cls, omega, _ = NORMS[name]
    W = structured(0)
    assert cls(alpha=0.7).value(W) == pytest.approx(0.7 * omega(cp.Constant(W)).value)


@pytest.mark.parametrize("name", NORM_NAMES)
@pytest.mark.parametrize("seed", [0, 1])
def test_norm_prox_matches_cvxpy(name: str, seed: int) -> None:
    cls, omega, _ = NORMS[name]
    W, step, alpha = structured(seed), 0.7, 0.8
    Z = cp.Variable(W.shape)
    solve(cp.Problem(cp.Minimize(cp.sum_squares(Z - W) / (2 * step) + alpha * omega(Z))))
    np.testing.assert_allclose(cls(alpha).prox(W, step), np.asarray(Z.value), atol=1e-6)


@pytest.mark.parametrize("name", NORM_NAMES)
def test_norm_prox_properties(name: str) -> None:
    cls = NORMS[name][0]
    pen = cls(alpha=0.5)
    A, B = structured(1), structured(2)
    assert np.array_equal(pen.prox(np.zeros((6, 4)), 1.0), np.zeros((6, 4)))
    assert np.linalg.norm(pen.prox(A, 0.8) - pen.prox(B, 0.8)) <= np.linalg.norm(A - B)
    np.testing.assert_allclose(cls(alpha=0.0).prox(A, 1.0), A, atol=1e-12)


@pytest.mark.parametrize("name", NORM_NAMES)
@pytest.mark.parametrize("seed", [0, 1])
def test_dual_norm_is_support_function_of_unit_ball(name: str, seed: int) -> None:
    cls, omega, _ = NORMS[name]
    G = np.random.default_rng(seed).standard_normal((6, 4))
    Z = cp.Variable(G.shape)
    sup = solve(cp.Problem(cp.Maximize(cp.sum(cp.multiply(G, Z))), [omega(Z) <= 1]))
    assert cls(alpha=3.0).dual_norm(G) == pytest.approx(sup, rel=1e-7)


@pytest.mark.parametrize("name", NORM_NAMES)
def test_alpha_max_is_the_smallest_level_giving_zero(name: str) -> None:
    cls = NORMS[name][0]
    X, Y = ls_problem()
    zero = np.zeros((6, 4))
    grad0 = ls_gradient(X, Y, zero)
    step = X.shape[0] / np.linalg.norm(X, 2) ** 2
    alpha_max = cls().alpha_max(grad0)
    at_max = cls(alpha=alpha_max)
    # W = 0 is a fixed point of the prox-gradient map, hence optimal ...
    assert np.abs(at_max.prox(zero - step * grad0, step)).max() <= 1e-12
    assert at_max.subdiff_distance(zero, grad0) <= 1e-10
    # ... and not below alpha_max.
    below = cls(alpha=0.95 * alpha_max)
    assert np.abs(below.prox(zero - step * grad0, step)).max() > 1e-4
    assert below.subdiff_distance(zero, grad0) > 1e-4


@pytest.mark.parametrize("name", NORM_NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subdiff_distance_zero_at_prox_points(name: str, seed: int) -> None:
    # Z = prox_{s pen}(Y) satisfies (Y - Z) / s in dpen(Z): grad = (Z - Y) / s is a KKT
    # gradient at Z.
    cls = NORMS[name][0]
    Y, step = 2.0 * structured(seed), 0.6
    pen = cls(alpha=1.1)
    Z = pen.prox(Y, step)
    assert pen.subdiff_distance(Z, (Z - Y) / step) <= 1e-10
    assert pen.subdiff_distance(Z, (Z - Y) / step + 0.01) > 1e-3


def subdiff_constraints(name: str, W: np.ndarray, alpha: float, Z: cp.Variable) -> list:
    """cvxpy constraints describing Z in d(alpha Omega)(W)."""
    if name in ("Lasso", "L1Linf"):
        # Any norm: {Z : Omega*(Z) <= alpha, <Z, W> = alpha Omega(W)}. For these polyhedral
        # norms the interior-point solver handles the (Slater-less) equality well.
        _, omega, dual = NORMS[name]
        return [dual(Z) <= alpha, cp.sum(cp.multiply(Z, W)) == alpha * omega(cp.Constant(W)).value]
    if name in ("L21", "L21Columns"):
        # Groups: alpha w / ||w|| on a non-zero group, the alpha-ball on a zero one.
        groups, Zg = (W, Z) if name == "L21" else (W.T, Z.T)
        cons = []
        for j, w in enumerate(groups):
            norm = np.linalg.norm(w)
            cons.append(Zg[j] == alpha * w / norm if norm > 0 else cp.norm(Zg[j]) <= alpha)
        return cons
    # Trace norm (Watson 1992): alpha (U V^T + U_perp X V_perp^T) with ||X||_2 <= 1.
    U, s, Vt = np.linalg.svd(W)
    r = int(np.sum(s > 1e-9 * s[0]))
    X = cp.Variable((W.shape[0] - r, W.shape[1] - r))
    return [
        Z == alpha * (U[:, :r] @ Vt[:r] + U[:, r:] @ X @ Vt[r:]),
        cp.sigma_max(X) <= 1,
    ]


@pytest.mark.parametrize("name", NORM_NAMES)
@pytest.mark.parametrize("seed", [0, 1])
def test_subdiff_distance_matches_cvxpy(name: str, seed: int) -> None:
    alpha = 0.9
    pen = NORMS[name][0](alpha=alpha)
    W = kink_point(name, seed)
    grad = np.random.default_rng(seed + 10).standard_normal(W.shape)
    Z = cp.Variable(W.shape)
    constraints = subdiff_constraints(name, W, alpha, Z)
    ref = solve(cp.Problem(cp.Minimize(cp.sum_squares(-grad - Z)), constraints))
    assert pen.subdiff_distance(W, grad) == pytest.approx(np.sqrt(ref), abs=1e-6)


def kink_point(name: str, seed: int) -> np.ndarray:
    """A W at the norm's kinks (zeros, ties, low rank), all non-zero parts well away from 0.

    Far from 0 the equality constraint of the cvxpy reference is well conditioned.
    """
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((6, 4))
    if name == "Lasso":
        return np.where(rng.random((6, 4)) < 0.4, 0.0, np.sign(base) * (np.abs(base) + 0.3))
    if name in ("L21", "L21Columns"):
        groups = base if name == "L21" else base.T
        groups = groups / np.linalg.norm(groups, axis=1, keepdims=True)
        groups = groups * rng.uniform(1.0, 2.0, size=(groups.shape[0], 1))
        groups[[1, -1]] = 0.0
        return groups if name == "L21" else groups.T
    if name == "L1Linf":
        W = base.copy()
        for j, row in enumerate(W):
            top = np.abs(row).max() + 0.5
            idx = np.argsort(-np.abs(row))[: 1 + j % 3]  # 1, 2 or 3 tied entries
            row[idx] = np.sign(row[idx]) * top
        W[[0, 3]] = 0.0
        return W
    U, _ = np.linalg.qr(base)
    V, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    return U[:, :2] @ np.diag([3.0, 1.5]) @ V[:, :2].T


def test_lasso_subdiff_distance_by_hand() -> None:
    W = np.array([[1.0, 0.0], [0.0, -2.0]])
    grad = np.array([[-0.5, 0.2], [3.0, 1.0]])
    # entries: |0.5 - 1|, max(0.2 - 1, 0), max(3 - 1, 0), |-1 + 1|
    assert Lasso(1.0).subdiff_distance(W, grad) == pytest.approx(np.hypot(0.5, 2.0))


CHAIN = np.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 2.0, 0.0], [0.0, 2.0, 0.0, 0.5], [0, 0, 0.5, 0]])


# ---------------------------------------------------------------- validation
ALL_PENALTIES = [
    Lasso(),
    L21(),
    L1Linf(),
    TraceNorm(),
    Ridge(),
    MeanRegularized(),
    GraphRegularized(graph=CHAIN),
    Clustered(),
    Dirty(),
    Robust(),
    SparseLowRank(),
]


@pytest.mark.parametrize("pen", ALL_PENALTIES, ids=lambda p: type(p).__name__)
def test_defaults_validate_and_repr(pen: Any) -> None:
    pen.validate()
    assert type(pen).__name__ in repr(pen)


SCALAR_ARGS = [
    (Lasso, "alpha", {}),
    (L21, "alpha", {}),
    (L1Linf, "alpha", {}),
    (TraceNorm, "alpha", {}),
    (Ridge, "alpha", {}),
    (MeanRegularized, "alpha", {}),
    (MeanRegularized, "beta", {}),
    (GraphRegularized, "alpha", {"graph": CHAIN}),
    (Clustered, "alpha", {}),
    (Clustered, "beta", {}),
    (Dirty, "alpha_shared", {}),
    (Dirty, "alpha_specific", {}),
    (Robust, "alpha_rows", {}),
    (Robust, "alpha_tasks", {}),
    (SparseLowRank, "alpha_sparse", {}),
    (SparseLowRank, "alpha_rank", {}),
]


@pytest.mark.parametrize(("cls", "arg", "extra"), SCALAR_ARGS)
@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (-1.0, ValueError),
        (np.nan, ValueError),
        (np.inf, ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
def test_scalar_hyperparameter_errors(
    cls: type, arg: str, extra: dict, bad: object, error: type
) -> None:
    pen = cls(**{arg: bad}, **extra)
    with pytest.raises(error, match=rf"{cls.__name__}: {arg} must be"):
        pen.validate()


@pytest.mark.parametrize("arg", ["alpha", "beta"])
def test_clustered_levels_must_be_positive(arg: str) -> None:
    with pytest.raises(ValueError, match=rf"Clustered: {arg} must be a finite number > 0"):
        kwargs: dict[str, Any] = {arg: 0.0}
        Clustered(**kwargs).validate()


@pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (2.0, TypeError), (True, TypeError)])
def test_clustered_n_clusters_errors(bad: Any, error: type) -> None:
    with pytest.raises(error, match="Clustered: n_clusters must be"):
        Clustered(n_clusters=bad).validate()


def test_clustered_too_many_clusters() -> None:
    with pytest.raises(ValueError, match="n_clusters=5 exceeds n_tasks=4"):
        Clustered(n_clusters=5).value(np.ones((3, 4)))


@pytest.mark.parametrize("bad", [3, 1.0, "inf", True])
def test_dirty_q_errors(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"Dirty: q must be 2 or numpy\.inf"):
        Dirty(q=bad).validate()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"graph": None}, ValueError, "graph is required"),
        ({"graph": CHAIN, "kind": "laplacian"}, ValueError, "kind must be 'adjacency' or"),
        ({"graph": np.ones(3)}, ValueError, "graph must be 2-D"),
        ({"graph": np.ones((3, 2))}, ValueError, "graph must be a square"),
        ({"graph": -CHAIN}, ValueError, "graph must have non-negative weights"),
        ({"graph": np.triu(CHAIN)}, ValueError, "graph must be symmetric"),
        ({"graph": CHAIN * np.nan}, ValueError, "graph contains NaN"),
        ({"graph": [["a"]]}, TypeError, "graph must be an array of numbers"),
    ],
)
def test_graph_errors(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=f"GraphRegularized: {match}"):
        GraphRegularized(**kwargs).validate()


def test_graph_size_must_match_tasks() -> None:
    pen = GraphRegularized(graph=CHAIN)
    with pytest.raises(ValueError, match="graph has 4 tasks but W has 3"):
        pen.gradient(np.ones((2, 3)))
    with pytest.raises(ValueError, match="graph has 4 tasks but W has 5"):
        pen.lipschitz(2, 5)


@pytest.mark.parametrize("pen", ALL_PENALTIES, ids=lambda p: type(p).__name__)
def test_shape_and_step_errors(pen: Any) -> None:
    name = type(pen).__name__
    good = np.ones((2, 3, 4)) if pen.n_blocks == 2 else np.ones((3, 4))
    with pytest.raises(ValueError, match=f"{name}: (W|V) must"):
        pen.value(np.ones(3))
    if hasattr(pen, "prox"):
        for step in (0.0, -1.0):
            with pytest.raises(ValueError, match=f"{name}: step must be a finite number > 0"):
                pen.prox(good, step)
    with pytest.raises(ValueError, match=f"{name}: .*shape"):
        pen.subdiff_distance(good, np.ones((2, 5, 5)))


def test_composite_needs_two_blocks() -> None:
    with pytest.raises(ValueError, match=r"Dirty: V must have shape \(2, n_features, n_tasks\)"):
        Dirty().prox(np.ones((3, 2, 2)), 1.0)
    with pytest.raises(ValueError, match=r"Robust: V has shape .* but grad has shape"):
        Robust().subdiff_distance(np.ones((2, 2, 2)), np.ones((2, 2, 3)))


def test_import_does_not_pull_torch() -> None:
    code = (
        "import sys, polytask.linear, polytask.linear._penalties, polytask.linear._prox; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dataclass_fields_are_stored_verbatim() -> None:
    graph = CHAIN.copy()
    pen = GraphRegularized(alpha=2, graph=graph)
    assert pen.alpha == 2 and pen.graph is graph
    assert [f.name for f in dataclasses.fields(Dirty)] == ["alpha_shared", "alpha_specific", "q"]


@pytest.mark.parametrize("pen", ALL_PENALTIES, ids=lambda p: type(p).__name__)
def test_params_round_trip_and_sklearn_clone(pen: Any) -> None:
    params = pen.get_params()
    assert list(params) == [f.name for f in dataclasses.fields(pen)]
    twin = clone(pen)
    assert type(twin) is type(pen) and twin is not pen
    assert repr(twin) == repr(pen)
    name = next(iter(params))
    if name != "graph":
        assert twin.set_params(**{name: 0.25}) is twin
        assert twin.get_params()[name] == 0.25 and pen.get_params()[name] == params[name]
    with pytest.raises(ValueError, match=f"{type(pen).__name__}: unknown hyperparameter 'nope'"):
        pen.set_params(nope=1)
