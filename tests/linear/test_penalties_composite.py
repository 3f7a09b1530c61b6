"""Tests of the composite (two-block) penalties of polytask.linear.

References: cvxpy (Clarabel) on the joint two-block problems, and the prox-gradient fixed
point of a least-squares datafit written here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cvxpy as cp
import numpy as np
import pytest

from polytask.linear._penalties import (
    Dirty,
    Robust,
    SparseLowRank,
)

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


# ---------------------------------------------------------------- composite penalties
def cvx_dirty(q: float) -> tuple[Callable, Callable]:
    inner = (lambda Z: cp.norm(Z, 2, axis=1)) if q == 2 else (lambda Z: cp.max(cp.abs(Z), axis=1))
    return (lambda Z: cp.sum(inner(Z))), (lambda Z: cp.sum(cp.abs(Z)))


# name -> (class, kwargs, (block-0 expression, block-1 expression) with the levels applied)
COMPOSITES: dict[str, tuple[type, dict[str, Any], tuple[Callable, Callable]]] = {
    "Dirty2": (Dirty, {"alpha_shared": 0.8, "alpha_specific": 0.3, "q": 2}, cvx_dirty(2)),
    "DirtyInf": (
        Dirty,
        {"alpha_shared": 0.8, "alpha_specific": 0.3, "q": np.inf},
        cvx_dirty(np.inf),
    ),
    "Robust": (
        Robust,
        {"alpha_rows": 0.7, "alpha_tasks": 0.9},
        (lambda Z: cp.sum(cp.norm(Z, 2, axis=1)), lambda Z: cp.sum(cp.norm(Z, 2, axis=0))),
    ),
    "SparseLowRank": (
        SparseLowRank,
        {"alpha_sparse": 0.3, "alpha_rank": 1.0},
        (lambda Z: cp.sum(cp.abs(Z)), cp.normNuc),
    ),
}
COMPOSITE_NAMES = sorted(COMPOSITES)


def levels(kwargs: dict[str, Any]) -> tuple[float, float]:
    values = [v for k, v in kwargs.items() if k != "q"]
    return float(values[0]), float(values[1])


def scaled(cls: type, kwargs: dict[str, Any], factor: float) -> Any:
    return cls(**{k: (v if k == "q" else v * factor) for k, v in kwargs.items()})


def cvx_composite(kwargs: dict[str, Any], exprs: tuple[Callable, Callable]) -> Callable:
    a0, a1 = levels(kwargs)
    return lambda B, S: a0 * exprs[0](B) + a1 * exprs[1](S)


@pytest.mark.parametrize("name", COMPOSITE_NAMES)
def test_composite_value_and_attributes(name: str) -> None:
    cls, kwargs, exprs = COMPOSITES[name]
    pen = cls(**kwargs)
    pen.validate()
    assert (pen.n_blocks, pen.smooth, pen.is_norm) == (2, False, False)
    V = np.stack([structured(0), structured(1)])
    ref = cvx_composite(kwargs, exprs)(cp.Constant(V[0]), cp.Constant(V[1])).value
    assert pen.value(V) == pytest.approx(ref)


@pytest.mark.parametrize("name", COMPOSITE_NAMES)
def test_composite_prox_matches_cvxpy(name: str) -> None:
    cls, kwargs, exprs = COMPOSITES[name]
    V, step = 2.0 * np.stack([structured(3), structured(4)]), 0.6
    B, S = cp.Variable(V.shape[1:]), cp.Variable(V.shape[1:])
    fit = (cp.sum_squares(B - V[0]) + cp.sum_squares(S - V[1])) / (2 * step)
    solve(cp.Problem(cp.Minimize(fit + cvx_composite(kwargs, exprs)(B, S))))
    out = cls(**kwargs).prox(V, step)
    assert out.shape == V.shape
    np.testing.assert_allclose(out, np.stack([np.asarray(B.value), np.asarray(S.value)]), atol=1e-6)


@pytest.mark.parametrize("name", COMPOSITE_NAMES)
def test_composite_subdiff_distance(name: str) -> None:
    cls, kwargs, _ = COMPOSITES[name]
    pen = cls(**kwargs)
    Y, step = 2.0 * np.stack([structured(5), structured(6)]), 0.5
    V = pen.prox(Y, step)
    assert pen.subdiff_distance(V, (V - Y) / step) <= 1e-10
    # Max over blocks of the components' distances; a shared (d, T) gradient broadcasts.
    g = np.random.default_rng(0).standard_normal(V.shape[1:])
    parts = [comp.subdiff_distance(V[b], g) for b, comp in enumerate(pen._components())]
    assert pen.subdiff_distance(V, g) == pytest.approx(max(parts))
    assert pen.subdiff_distance(V, np.stack([g, g])) == pytest.approx(max(parts))


@pytest.mark.parametrize("name", COMPOSITE_NAMES)
def test_weight_dual_norm_matches_cvxpy_and_gives_zero_threshold(name: str) -> None:
    cls, kwargs, exprs = COMPOSITES[name]
    pen = cls(**kwargs)
    G = np.random.default_rng(1).standard_normal((6, 4))
    B, S = cp.Variable(G.shape), cp.Variable(G.shape)
    sup = solve(
        cp.Problem(
            cp.Maximize(cp.sum(cp.multiply(G, B + S))),
            [cvx_composite(kwargs, exprs)(B, S) <= 1],
        )
    )
    assert pen.weight_dual_norm(G) == pytest.approx(sup, rel=1e-6)
    # Scaling both levels by c = N*(grad0) makes V = 0 optimal, and no smaller c does.
    X, Y = ls_problem(1)
    zero = np.zeros((2, 6, 4))
    grad0 = ls_gradient(X, Y, zero[0])
    step = X.shape[0] / (2 * np.linalg.norm(X, 2) ** 2)  # W = V0 + V1 doubles L
    c = pen.weight_dual_norm(grad0)
    start = zero - step * np.stack([grad0, grad0])
    assert np.abs(scaled(cls, kwargs, c).prox(start, step)).max() <= 1e-12
    assert scaled(cls, kwargs, c).subdiff_distance(zero, grad0) <= 1e-10
    assert np.abs(scaled(cls, kwargs, 0.95 * c).prox(start, step)).max() > 1e-4


def test_weight_dual_norm_with_a_zero_level() -> None:
    G = np.ones((3, 2))
    assert Dirty(alpha_shared=0.0, alpha_specific=1.0).weight_dual_norm(G) == np.inf
    assert Dirty(alpha_shared=0.0, alpha_specific=1.0).weight_dual_norm(0 * G) == 0.0
