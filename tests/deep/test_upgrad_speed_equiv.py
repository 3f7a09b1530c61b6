"""UPGrad's batched dual-cone solver: the same answer as Lawson–Hanson and cvxpy, faster.

The batched primal-dual active-set solver (``aggregation._dual_cone``) must return the
weights of the reference solver (``_linalg.dual_cone_weights``: one Lawson–Hanson NNLS
per task), satisfy the optimality conditions of every projection, agree with an
independent QP solve (cvxpy), and hand what it cannot certify to the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from polytask.deep.aggregation import AggregationWarning, UPGrad, UPGradWeighting, _linalg
from polytask.deep.aggregation import _dual_cone as dc

Array = NDArray[np.float64]
KINDS = ("gaussian", "conflicting", "scaled", "square", "aligned", "near_orthogonal")


def _jacobian(kind: str, m: int, seed: int) -> Array:
    """A Jacobian ``(m, n)`` of one of several shapes of conflict."""
    rng = np.random.default_rng(seed)
    n = m if kind == "square" else 3 * m
    jac = rng.standard_normal((m, n))
    if kind == "conflicting":  # two camps pulling in opposite directions
        jac[: m // 2] *= -1.0
        jac += rng.uniform(0.0, 2.0) * rng.standard_normal(n)
    elif kind == "scaled":  # gradient norms over three orders of magnitude
        jac *= np.exp(rng.uniform(-3.0, 3.0, (m, 1)))
    elif kind == "aligned":  # all aligned but one
        jac += 3.0 * rng.standard_normal(n)
        jac[0] *= -1.0
    elif kind == "near_orthogonal":  # the benchmark's regime: weak, frequent conflicts
        jac = rng.standard_normal((m, 50 * m))
    return jac


def _projection(jac: Array, g: Array) -> Array:
    """Euclidean projection of ``g`` onto ``{x : J x ≥ 0}`` by cvxpy (independent)."""
    x = cp.Variable(jac.shape[1])
    problem = cp.Problem(cp.Minimize(cp.sum_squares(x - g)), [jac @ x >= 0])
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    assert problem.status == cp.OPTIMAL
    return np.asarray(x.value)


def _rel_err(a: Array, b: Array) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1.0))


# ------------------------------------------------------------------ same answer
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", [2, 5, 8, 16])
def test_same_weights_as_lawson_hanson(kind: str, m: int) -> None:
    for seed in range(4):
        jac = _jacobian(kind, m, seed)
        gram = jac @ jac.T
        got = dc.dual_cone_weights_batched(gram)
        want = _linalg.dual_cone_weights(gram)
        # Lawson–Hanson on the eigen-factor loses about cond(G)·eps; the two agree to it
        assert _rel_err(got, want) < 1e-8, (kind, m, seed)
        # and the projections Jᵀv_i, the quantities UPGrad averages, agree closely
        assert _rel_err(got @ jac, want @ jac) < 1e-10 * max(1.0, np.abs(jac).max())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", [3, 8, 16, 24])
def test_optimality_conditions_of_every_projection(kind: str, m: int) -> None:
    jac = _jacobian(kind, m, 7)
    gram = jac @ jac.T
    weights = dc.dual_cone_weights_batched(gram)
    lam = weights - np.eye(m)
    slack = weights @ gram / np.diag(gram).max()  # row i = (G v_i)ᵀ, rescaled
    assert np.all(lam >= 0.0)  # v_i ≥ e_i, exactly
    assert slack.min() >= -1e-12  # J (Jᵀ v_i) ≥ 0: in the dual cone
    assert np.abs(lam * slack).max() <= 1e-12  # complementarity


@pytest.mark.parametrize(("kind", "m"), [("gaussian", 4), ("conflicting", 6),
                                         ("scaled", 5), ("square", 5)])
def test_projections_match_cvxpy(kind: str, m: int) -> None:
    jac = _jacobian(kind, m, 3)
    weights = dc.dual_cone_weights_batched(jac @ jac.T)
    expected = np.stack([_projection(jac, g) for g in jac])
    scale = float(np.abs(jac).max())
    np.testing.assert_allclose(weights @ jac, expected, atol=1e-6 * scale)
    d = UPGrad()(torch.from_numpy(jac)).numpy()
    np.testing.assert_allclose(d, expected.mean(axis=0), atol=1e-6 * scale)


def test_float32_gramian_gives_float32_weights_close_to_cvxpy() -> None:
    jac = _jacobian("conflicting", 6, 11)
    gram = torch.from_numpy(jac @ jac.T).float()
    weights = UPGradWeighting()(gram)
    assert weights.dtype == torch.float32 and weights.shape == (6,)
    expected = np.mean([_projection(jac, g) for g in jac], axis=0)
    scale = float(np.abs(jac).max())
    np.testing.assert_allclose(weights.double().numpy() @ jac, expected, atol=1e-4 * scale)


# ------------------------------------------------------------------ properties
@pytest.mark.parametrize("kind", ["gaussian", "conflicting", "scaled"])
def test_permuting_the_tasks_permutes_the_weights(kind: str) -> None:
    jac = _jacobian(kind, 7, 5)
    perm = np.random.default_rng(0).permutation(7)
    weights = dc.dual_cone_weights_batched(jac @ jac.T)
    permuted = dc.dual_cone_weights_batched(jac[perm] @ jac[perm].T)
    np.testing.assert_allclose(permuted, weights[np.ix_(perm, perm)], atol=1e-10)


@pytest.mark.parametrize("factor", [1e-6, 0.5, 1e4])
def test_weights_do_not_depend_on_the_scale_of_the_gramian(factor: float) -> None:
    jac = _jacobian("conflicting", 6, 2)
    gram = jac @ jac.T
    np.testing.assert_allclose(dc.dual_cone_weights_batched(factor * gram),
                               dc.dual_cone_weights_batched(gram), atol=1e-10)


def test_non_conflicting_gradients_are_kept() -> None:
    jac = np.abs(_jacobian("gaussian", 5, 0))  # all pairwise inner products positive
    np.testing.assert_array_equal(dc.dual_cone_weights_batched(jac @ jac.T), np.eye(5))


def test_zero_gramian_gives_identity_and_mean_weights() -> None:
    np.testing.assert_array_equal(dc.dual_cone_weights_batched(np.zeros((3, 3))), np.eye(3))
    weights = UPGradWeighting()(torch.zeros(3, 3))
    assert weights.dtype == torch.float32
    np.testing.assert_allclose(weights.numpy(), np.full(3, 1.0 / 3.0), rtol=1e-6)


def test_one_task_is_its_own_projection() -> None:
    np.testing.assert_array_equal(dc.dual_cone_weights_batched(np.array([[2.5]])),
                                  np.ones((1, 1)))


def test_stopped_problems_satisfy_their_conditions_at_any_budget() -> None:
    """A problem flagged as stopped solves its complementarity conditions exactly."""
    jac = _jacobian("gaussian", 16, 4)
    gram = jac @ jac.T
    gram /= np.diag(gram).max()
    flags = []
    for budget in (1, 2, 3, 40):
        lam, slack, stopped = dc.primal_dual_active_set(gram, budget)
        flags.append(stopped.copy())
        np.testing.assert_allclose(slack, (np.eye(16) + lam) @ gram, atol=1e-14)
        assert np.all(dc.kkt_violation(lam[stopped], slack[stopped]) <= 1e-12)
    assert not flags[0].all() and flags[-1].all()  # the budget matters, and suffices


# ------------------------------------------------------------------ no per-task work
def test_fast_path_makes_no_per_task_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a positive definite Gramian, no Lawson–Hanson solve runs, and few batched ones."""
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the reference solver was called")

    monkeypatch.setattr(_linalg, "solve_nnls", forbidden)
    calls = [0]
    real_solve = np.linalg.solve

    def counted(a: Array, b: Array) -> Any:
        calls[0] += 1
        # one batched system per iteration for the projections still running, as wide
        # as their largest free set
        assert a.ndim == 3 and a.shape[0] <= 16 and a.shape[1] == a.shape[2] <= 16
        return real_solve(a, b)

    monkeypatch.setattr(dc.np.linalg, "solve", counted)
    jac = _jacobian("near_orthogonal", 16, 0)
    weights = UPGradWeighting()(torch.from_numpy(jac @ jac.T))
    assert weights.shape == (16,)
    assert 1 <= calls[0] <= 4


# ------------------------------------------------------------------ fallbacks
def _spy(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[Any]:
    calls: list[Any] = []
    real: Callable[..., Any] = getattr(module, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


@pytest.mark.parametrize("case", ["duplicate", "rank_deficient", "zero_task"])
def test_singular_gramian_is_solved_by_the_reference(monkeypatch: pytest.MonkeyPatch,
                                                     case: str) -> None:
    rng = np.random.default_rng(1)
    if case == "duplicate":
        jac = rng.standard_normal((4, 6))
        jac[3] = jac[1]
    elif case == "rank_deficient":  # more tasks than parameters
        jac = rng.standard_normal((6, 3))
    else:
        jac = rng.standard_normal((4, 6))
        jac[2] = 0.0
    calls = _spy(monkeypatch, _linalg, "dual_cone_weights")
    weights = dc.dual_cone_weights_batched(jac @ jac.T)
    assert len(calls) == 1
    expected = np.stack([_projection(jac, g) for g in jac])
    np.testing.assert_allclose(weights @ jac, expected, atol=1e-5 * np.abs(jac).max())
    assert np.all(jac @ (weights @ jac).T >= -1e-12)  # in the dual cone (cvxpy is not exact)


def test_uncertified_problems_are_solved_by_the_reference(
        monkeypatch: pytest.MonkeyPatch) -> None:
    jac = _jacobian("conflicting", 6, 9)
    gram = jac @ jac.T
    real = dc.primal_dual_active_set

    def two_unstopped(g: Array, max_iter: int) -> tuple[Array, Array, Any]:
        lam, slack, stopped = real(g, max_iter)
        stopped[[1, 4]] = False
        lam[[1, 4]] = 0.0  # garbage that must not leak into the result
        return lam, slack, stopped

    monkeypatch.setattr(dc, "primal_dual_active_set", two_unstopped)
    calls = _spy(monkeypatch, _linalg, "dual_cone_projection")
    weights = dc.dual_cone_weights_batched(gram)
    assert len(calls) == 2
    np.testing.assert_array_equal([np.argmax(c[1]) for c in calls], [1, 4])
    assert _rel_err(weights, _linalg.dual_cone_weights(gram)) < 1e-8


def test_failed_certificate_is_solved_by_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    jac = _jacobian("conflicting", 5, 3)
    gram = jac @ jac.T
    real = dc.primal_dual_active_set

    def wrong(g: Array, max_iter: int) -> tuple[Array, Array, Any]:
        lam, _, stopped = real(g, max_iter)
        lam = np.zeros_like(lam)  # claims to have stopped, but violates G v ≥ 0
        return lam, (np.eye(len(g)) + lam) @ g, stopped

    monkeypatch.setattr(dc, "primal_dual_active_set", wrong)
    calls = _spy(monkeypatch, _linalg, "dual_cone_projection")
    weights = dc.dual_cone_weights_batched(gram)
    assert len(calls) == int(((gram < 0).any(axis=1)).sum()) > 0
    assert _rel_err(weights, _linalg.dual_cone_weights(gram)) < 1e-8


def test_failure_of_both_solvers_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    real = dc.primal_dual_active_set

    def unstopped(g: Array, max_iter: int) -> tuple[Array, Array, Any]:
        lam, slack, stopped = real(g, max_iter)
        return lam, slack, np.zeros_like(stopped)

    monkeypatch.setattr(dc, "primal_dual_active_set", unstopped)
    monkeypatch.setattr(_linalg, "solve_nnls", lambda a, b, what: np.zeros(a.shape[1]))
    with pytest.warns(AggregationWarning, match="UPGrad: a projection onto the dual cone "
                                                "violates its optimality conditions"):
        UPGradWeighting()(torch.tensor([[1.0, -0.5], [-0.5, 1.0]]))


@pytest.mark.parametrize("density", [0.0, 0.2, 0.6, 1.0])
def test_free_set_solve_equals_the_full_identity_padded_systems(density: float) -> None:
    """The (m, k, k) gathered systems give the λ of the (m, m, m) systems whose rows and
    columns outside each free set are the identity (the plain formulation)."""
    rng = np.random.default_rng(3)
    m = 12
    a = rng.normal(size=(m, m + 3))
    gram = a @ a.T / m
    free = rng.random((m, m)) < density
    free[0] = False  # one problem with an empty free set
    full = np.where(free[:, :, None] & free[:, None, :], gram, np.eye(m))
    ref = np.linalg.solve(full, np.where(free, -gram, 0.0)[:, :, None])[:, :, 0]
    np.testing.assert_allclose(dc._free_set_solve(gram, free), ref, atol=1e-10)
