"""Sharded linear MTL: two gloo ranks must reproduce the single-process solution.

Two spawned CPU processes (gloo) solve every case on task blocks of 3 and 2 tasks
(``_distributed_worker.run``, one spawn per module); here the blocks are assembled and
compared with :class:`polytask.linear.FISTA` on all tasks, and the sharded penalty
operations with the penalties' own methods on the full matrix.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polytask.linear import FISTA, L21, L1Linf, Lasso, SquaredLoss, split_penalties
from polytask.linear._penalties import MeanRegularized, Ridge, TraceNorm
from polytask.linear._prox import _simplex_threshold

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is required", allow_module_level=True)

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location(
    "_distributed_worker", HERE / "_distributed_worker.py"
)
assert _spec is not None and _spec.loader is not None
worker = importlib.util.module_from_spec(_spec)
sys.modules["_distributed_worker"] = worker
_spec.loader.exec_module(worker)

from polytask.linear.distributed import (  # noqa: E402
    DistributedFISTA,
    DistributedResult,
    fit_distributed,
    gather_tasks,
    shard_tasks,
)

SPAWN_DEADLINE_S = 240


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What every rank of one two-process run recorded."""
    out = tmp_path_factory.mktemp("distributed")
    args = (worker.WORLD, _free_port(), str(out))
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(HERE))  # the children unpickle their entry point by name
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            mp.setenv(var, "1")
        context = torch.multiprocessing.spawn(
            worker.run_spawned, args=args, nprocs=worker.WORLD, join=False
        )
    # A bug that desynchronises the ranks deadlocks them: fail instead of hanging.
    deadline = time.monotonic() + SPAWN_DEADLINE_S
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(
                f"the ranks did not finish within {SPAWN_DEADLINE_S} s (a deadlock, or solves "
                "far slower than expected)"
            )
    ranks = []
    for r in range(worker.WORLD):
        with (out / f"rank{r}.pkl").open("rb") as fh:
            ranks.append(pickle.load(fh))
    return ranks


@pytest.fixture
def one_rank() -> Iterator[None]:
    """A single-rank gloo group in this process, torn down afterwards."""
    tmp = tempfile.mkdtemp()
    dist.init_process_group(
        "gloo",
        init_method="file://" + os.path.join(tmp, "store"),
        rank=0,
        world_size=1,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        yield
    finally:
        dist.destroy_process_group()
        shutil.rmtree(tmp, ignore_errors=True)


def _reference(case: str) -> Any:
    X, Y, make, penalty = worker.build(case)
    prox, smooth = split_penalties(penalty)
    solver = FISTA(tol=worker.TOL, max_iter=worker.MAX_ITER)
    return solver.solve(make().initialize(X, Y), prox, smooth=smooth)


# ---------------------------------------------------------------------- solutions
@pytest.mark.parametrize("case", [*worker.CASES, "solve/shared/l21+ridge"])
def test_two_ranks_give_the_single_process_solution(ranks: list[dict[str, Any]], case: str) -> None:
    results: list[DistributedResult] = [r["solves"][case] for r in ranks]
    ref = _reference(case.removeprefix("solve/"))
    assert ref.converged
    assert [list(res.tasks) for res in results] == [[0, 1, 2], [3, 4]]
    assert all(res.task_counts == (3, 2) and res.n_tasks == 5 for res in results)
    assert all(res.converged and res.stop_crit <= worker.TOL for res in results)
    # Global scalars are identical on every rank.
    assert len({(res.objective, res.n_iter, res.stop_crit) for res in results}) == 1
    W = np.concatenate([res.W for res in results], axis=1)
    assert abs(results[0].objective - ref.objective) <= 1e-8 * abs(ref.objective)
    np.testing.assert_allclose(W, ref.W, rtol=0, atol=1e-5)
    assert np.abs(ref.W).max() > 1e-3  # a non-trivial solution
    if ref.dual_gap is None:
        assert results[0].dual_gap is None
    else:
        assert results[0].dual_gap is not None and results[0].dual_gap <= 1e-8 * ref.objective


def test_sparse_penalties_select_the_same_rows(ranks: list[dict[str, Any]]) -> None:
    for case in ("shared/l21", "per_task/l1linf", "shared/lasso"):
        W = np.concatenate([r["solves"][case].W for r in ranks], axis=1)
        ref = _reference(case)
        assert np.array_equal(W == 0, ref.W == 0), case


# ---------------------------------------------------------------------- operations
OPS_PENALTIES: dict[str, Any] = {
    "lasso": Lasso(0.7),
    "l21": L21(1.5),
    "l1linf": L1Linf(1.5),
    "trace": TraceNorm(1.5),
    "ridge": Ridge(0.8),
    "meanreg": MeanRegularized(1.2, 0.3),
}


@pytest.mark.parametrize("name", list(OPS_PENALTIES))
def test_sharded_operations_match_the_full_matrix(ranks: list[dict[str, Any]], name: str) -> None:
    pen = OPS_PENALTIES[name]
    W, G = worker.ops_matrices()
    recs = [r["ops"][name] for r in ranks]
    for rec in recs:
        assert rec["value"] == pytest.approx(pen.value(W), rel=1e-12)
        assert rec["subdiff"] == pytest.approx(pen.subdiff_distance(W, G), rel=1e-10)
        expected0 = pen.subdiff_distance(np.zeros_like(W), G)
        assert rec["subdiff_zero"] == pytest.approx(expected0, rel=1e-10)
        if name in ("lasso", "l21", "l1linf", "trace"):
            assert rec["dual_norm"] == pytest.approx(pen.dual_norm(G), rel=1e-12)
    # The same scalar on every rank, bit for bit.
    assert len({rec["value"] for rec in recs}) == 1
    assert len({rec["subdiff"] for rec in recs}) == 1
    prox = np.concatenate([rec["prox"] for rec in recs], axis=1)
    np.testing.assert_allclose(prox, pen.prox(W, 0.9), rtol=1e-12, atol=1e-13)
    if name in ("ridge", "meanreg"):
        grad = np.concatenate([rec["gradient"] for rec in recs], axis=1)
        np.testing.assert_allclose(grad, pen.gradient(W), rtol=1e-12, atol=1e-13)


def test_l1linf_prox_zeroes_small_rows_and_clips_ties(ranks: list[dict[str, Any]]) -> None:
    prox = np.concatenate([r["ops"]["l1linf"]["prox"] for r in ranks], axis=1)
    tau = 0.9 * 1.5
    W = worker.ops_matrices()[0]
    assert np.all(prox[1] == 0) and np.all(prox[2] == 0)  # zero row, row inside the ball
    # Moreau: W - prox is the projection of each row onto the l1 ball of radius tau.
    assert np.abs(W - prox).sum(axis=1) == pytest.approx(
        np.minimum(np.abs(W).sum(axis=1), tau), rel=1e-12
    )


def test_sharded_simplex_threshold_matches_the_sort_based_rule(
    ranks: list[dict[str, Any]],
) -> None:
    W, G = worker.ops_matrices()
    mask = np.abs(G) > 0.4
    expected = _simplex_threshold(G, 0.8, mask=mask)
    has_entries = mask.any(axis=1)
    for r in ranks:
        np.testing.assert_allclose(r["ops"]["simplex"][has_entries], expected[has_entries])
        absW = np.abs(W)
        inside = absW.sum(axis=1) <= 1.5
        ball = r["ops"]["ball"]
        assert np.all(ball[inside] == 0)
        # Defining property of the threshold: sum max(|w| - theta, 0) = radius.
        excess = np.maximum(absW[~inside] - ball[~inside, None], 0.0).sum(axis=1)
        np.testing.assert_allclose(excess, 1.5, rtol=1e-12)


def test_gather_tasks_assembles_rank_blocks(ranks: list[dict[str, Any]]) -> None:
    W = worker.ops_matrices()[0]
    for r in ranks:
        np.testing.assert_array_equal(r["ops"]["gather"], W)


# ---------------------------------------------------------------------- errors
ERRORS = {
    "zero_tasks": ("rank\\(s\\) \\[1\\] hold no task", "rank\\(s\\) \\[1\\] hold no task"),
    "invalid_data": ("rank\\(s\\) \\[1\\] found invalid input", "rank 1: .*infinite"),
    "settings": ("settings differ between ranks", "settings differ between ranks"),
    "features": ("different numbers of features \\[6, 5\\]", "numbers of features \\[6, 5\\]"),
    "unsupported": ("rank 0: .*Dirty is not supported", "rank 1: .*Dirty is not supported"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_input_errors_are_raised_on_every_rank(ranks: list[dict[str, Any]], name: str) -> None:
    for r, pattern in enumerate(ERRORS[name]):
        err = ranks[r]["errors"][name]
        assert err["error"] == "ValueError", err
        assert re.search(pattern, err["message"]), err["message"]


def test_error_without_process_group() -> None:
    assert not dist.is_initialized()
    X, Y = np.ones((3, 2)), np.ones((3, 2))
    with pytest.raises(RuntimeError, match=r"torch\.distributed\.init_process_group"):
        fit_distributed(X, Y, L21(1.0))
    with pytest.raises(RuntimeError, match=r"torch\.distributed\.init_process_group"):
        DistributedFISTA().solve(SquaredLoss().initialize(X, Y), L21(1.0))
    with pytest.raises(RuntimeError, match=r"torch\.distributed\.init_process_group"):
        gather_tasks(X)


BAD_RESTART: Any = "never"


@pytest.mark.usefixtures("one_rank")
class TestOneRank:
    """Input checks, on a single-rank group in this process."""

    def setup_method(self) -> None:
        rng = np.random.default_rng(1)
        self.X, self.Y = rng.normal(size=(20, 4)), rng.normal(size=(20, 3))

    def test_matches_fista_on_one_rank(self) -> None:
        res = fit_distributed(self.X, self.Y, L1Linf(2.0), solver=DistributedFISTA(tol=1e-10))
        ref = FISTA(tol=1e-10).solve(SquaredLoss().initialize(self.X, self.Y), L1Linf(2.0))
        np.testing.assert_allclose(res.W, ref.W, atol=1e-8)
        assert res.task_counts == (3,) and res.task_offset == 0

    def test_warm_start_at_the_solution_stops_at_once(self) -> None:
        res = fit_distributed(self.X, self.Y, L21(2.0), solver=DistributedFISTA(tol=1e-10))
        again = fit_distributed(
            self.X, self.Y, L21(2.0), solver=DistributedFISTA(tol=1e-8), W0=res.W
        )
        assert again.n_iter == 0 and again.converged

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"W0": np.zeros((4, 2))}, ValueError, "W0 must be this rank's block"),
            ({"solver": FISTA()}, TypeError, "solver must be a DistributedFISTA"),
            ({"solver": DistributedFISTA(restart=BAD_RESTART)}, ValueError, "restart must be"),
            ({"solver": DistributedFISTA(max_iter=0)}, ValueError, "max_iter must be"),
            ({"datafit": "squared"}, TypeError, "datafit must be a datafit object"),
            ({"penalty": [L21(1.0), Lasso(1.0)]}, ValueError, "at most one non-smooth"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, Any], error: type, match: str) -> None:
        kwargs = {"penalty": L21(1.0), **kwargs}
        with pytest.raises(error, match=match):
            fit_distributed(self.X, self.Y, **kwargs)

    def test_solve_needs_an_initialized_datafit(self) -> None:
        with pytest.raises(ValueError, match="not initialized"):
            DistributedFISTA().solve(SquaredLoss(), L21(1.0))

    def test_solve_rejects_a_non_smooth_smooth_penalty(self) -> None:
        loss = SquaredLoss().initialize(self.X, self.Y)
        with pytest.raises(ValueError, match=r"rank 0: needs smooth penalty\.gradient"):
            DistributedFISTA().solve(loss, L21(1.0), smooth=[Lasso(1.0)])

    def test_invalid_data_names_the_rank(self) -> None:
        Y = self.Y.copy()
        Y[0, 1] = np.inf
        with pytest.raises(ValueError, match=r"rank 0: .*infinite"):
            fit_distributed(self.X, Y, L21(1.0))

    def test_zero_tasks(self) -> None:
        with pytest.raises(ValueError, match="hold no task"):
            fit_distributed([], [], L21(1.0))


# ---------------------------------------------------------------------- shard_tasks
@pytest.mark.parametrize(("n_tasks", "world_size"), [(5, 2), (7, 3), (4, 4), (1, 1), (10, 4)])
def test_shard_tasks_partitions_evenly(n_tasks: int, world_size: int) -> None:
    blocks = [shard_tasks(n_tasks, world_size, r) for r in range(world_size)]
    covered = [t for b in blocks for t in range(n_tasks)[b]]
    assert covered == list(range(n_tasks))
    sizes = [b.stop - b.start for b in blocks]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((1, 2, 0), "smaller than world_size"),
        ((5, 2, 2), "rank must be < world_size"),
        ((5, 0, 0), "world_size must be an integer >= 1"),
        ((5, 2, -1), "rank must be an integer >= 0"),
        ((2.0, 1, 0), "n_tasks must be an integer >= 1"),
    ],
)
def test_shard_tasks_errors(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        shard_tasks(*args)


def test_importing_polytask_linear_does_not_import_torch() -> None:
    code = "import sys, polytask.linear, polytask.linear.distributed; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"
