"""Communicators of the penalty kernels and FISTA (no torch needed).

``_WholeRows`` claims two processes but reduces as one process holding every column:
the kernels then take their split-row code paths (Michelot's thresholds) on full rows,
which must reproduce the single-process results (the sort-based rule of Duchi et al.).
The two-rank torch.distributed runs are in ``test_distributed.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from polytask.linear import (
    FISTA,
    L21,
    L1Linf,
    Lasso,
    MeanRegularized,
    Ridge,
    SquaredLoss,
    TraceNorm,
    split_penalties,
)
from polytask.linear._comm import (
    LocalComm,
    ball_threshold,
    frobenius,
    row_norms,
    simplex_threshold,
)
from polytask.linear._distributed_penalties import ShardedPenalty, sharded_objective
from polytask.linear._prox import project_l1_ball


class _WholeRows(LocalComm):
    """Identity reductions, but a world size of 2 (split-row algorithms), and the
    objective of the sharded solver (penalties bound to this communicator)."""

    world_size = 2

    def objective(self, datafit: Any, penalty: Any, smooth: Any) -> Any:
        return sharded_objective(self, datafit, penalty, smooth, "test")


def _matrices(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(7, 5))
    W[0] = [2.0, -2.0, 1.0, 2.0, 0.5]  # ties of |w|
    W[1] = 0.0
    W[2] = [0.05, -0.02, 0.01, 0.03, -0.04]  # inside the l1 balls used below
    return W, rng.normal(size=(7, 5))


def test_local_comm_reduces_nothing() -> None:
    comm = LocalComm()
    A = np.arange(6.0).reshape(2, 3)
    assert comm.total(2.5) == 2.5 and comm.agree(1.5) == 1.5
    assert comm.totals(1.0, 2.0) == (1.0, 2.0)
    assert comm.sum(3.0).tolist() == [3.0] and comm.max([1, 2]).tolist() == [1.0, 2.0]
    assert comm.gather_tasks(A) is not None and np.array_equal(comm.gather_tasks(A), A)
    assert comm.own_tasks(A) is A and comm.global_tasks(3) == 3
    assert frobenius(A, comm) == pytest.approx(np.linalg.norm(A))
    np.testing.assert_allclose(row_norms(A, comm), np.linalg.norm(A, axis=1))


@pytest.mark.parametrize("comm", [LocalComm(), _WholeRows()], ids=["sort", "michelot"])
def test_ball_threshold_defines_the_l1_projection(comm: Any) -> None:
    W, _ = _matrices()
    theta = ball_threshold(W, 1.5, comm)
    proj = W - np.clip(W, -theta[:, None], theta[:, None])
    np.testing.assert_allclose(proj, project_l1_ball(W, 1.5), atol=1e-12)
    inside = np.abs(W).sum(axis=1) <= 1.5
    assert np.all(theta[inside] == 0)


@pytest.mark.parametrize("comm", [LocalComm(), _WholeRows()], ids=["sort", "michelot"])
def test_simplex_threshold_with_a_mask(comm: Any) -> None:
    _, G = _matrices()
    mask = np.abs(G) > 0.6
    mask[3] = False  # a row without entries gets 0
    theta = simplex_threshold(G, 0.8, comm, mask=mask)
    assert theta[3] == 0.0
    rows = mask.any(axis=1)
    assert rows.sum() >= 5
    # Defining property: sum over the masked entries of max(g - theta, 0) = radius.
    excess = np.where(mask, np.maximum(G - theta[:, None], 0.0), 0.0).sum(axis=1)
    np.testing.assert_allclose(excess[rows], 0.8, rtol=1e-12)


PENALTIES = {
    "lasso": Lasso(0.7),
    "l21": L21(1.5),
    "l1linf": L1Linf(1.5),
    "trace": TraceNorm(1.5),
    "ridge": Ridge(0.8),
    "meanreg": MeanRegularized(1.2, 0.3),
}


@pytest.mark.parametrize("name", list(PENALTIES))
def test_kernels_on_split_rows_match_the_public_methods(name: str) -> None:
    pen, comm = PENALTIES[name], _WholeRows()
    W, G = _matrices(1)
    assert pen._value_comm(W, comm) == pytest.approx(pen.value(W), rel=1e-12)
    np.testing.assert_allclose(pen._prox_comm(W, 0.9, comm), pen.prox(W, 0.9), atol=1e-13)
    for Wx in (W, np.zeros_like(W)):
        got = pen._subdiff_comm(Wx, G, comm)
        assert got == pytest.approx(pen.subdiff_distance(Wx, G), rel=1e-10)
    if pen.is_norm:
        assert pen._dual_norm_comm(G, comm) == pytest.approx(pen.dual_norm(G), rel=1e-12)
    else:
        np.testing.assert_allclose(pen._gradient_comm(W, comm), pen.gradient(W), atol=1e-13)


@pytest.mark.parametrize(
    "penalty", [L21(0.3), L1Linf(0.5), [Lasso(0.2), MeanRegularized(1.0)]], ids=repr
)
def test_fista_takes_a_communicator(penalty: Any) -> None:
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(30, 6)), rng.normal(size=(30, 4))
    prox, smooth = split_penalties(penalty)
    loss = SquaredLoss("mean").initialize(X, Y)
    plain = FISTA(tol=1e-10).solve(loss, prox, smooth=smooth)
    local = FISTA(tol=1e-10).solve(loss, prox, smooth=smooth, comm=LocalComm())
    comm = _WholeRows()
    assert isinstance(comm.objective(loss, prox, smooth).penalty, ShardedPenalty)
    split = FISTA(tol=1e-10).solve(loss, prox, smooth=smooth, comm=comm)
    assert plain.converged and local.n_iter == plain.n_iter
    np.testing.assert_array_equal(local.W, plain.W)  # the default is exactly LocalComm
    np.testing.assert_allclose(split.W, plain.W, atol=1e-8)
    assert split.objective == pytest.approx(plain.objective, rel=1e-12)
