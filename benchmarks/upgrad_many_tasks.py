"""UPGrad's weighting with hundreds of tasks: free-set systems against full systems.

UPGrad solves one dual-cone projection per task, all at once, by a primal-dual
active-set method (``polytask.deep.aggregation._dual_cone``). Each iteration solves one
linear system per problem. This script times the weighting on task Gramians of a real
step: ToxCast's fingerprints (the first 2,000 molecules, 1,024 Morgan bits), a freshly
initialised shared MLP 1024→512→256 with one linear head per assay, a batch of 128, the
binary cross-entropy of every assay with its missing labels masked, and the Gramian of the
representation gradients (from the heads' cotangents). ``m`` assays are taken at random.

- ``polytask``: the library's solver (systems restricted to each problem's free set,
  gathered to the largest one; problems whose free set repeated are left alone);
- ``full systems``: the same method with every system ``m × m`` (the rows and columns
  outside the free set replaced by the identity) and every problem solved in every
  iteration, i.e. polytask's solver before 8 Dec 2026, written out here as the baseline.

Both must give the same weights (checked, to 1e-8). Median of ``--repeats`` runs, one
thread. Needs the ToxCast file (``POLYTASK_DATA``) and RDKit.

Run::

    python benchmarks/upgrad_many_tasks.py            # m = 64, 256, 617; ~4 min
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _school_common import machine_line, write_section

from polytask.data import load_dataset, morgan_fingerprints
from polytask.deep._head_gramian import linear_head_gramian
from polytask.deep.aggregation._dual_cone import dual_cone_weights_batched, kkt_violation
from polytask.deep.architectures import MLP, SharedBottom
from polytask.tasks import Task, TaskSet


def toxcast_gramian(n_tasks: int, seed: int) -> np.ndarray:
    """The representation Gramian of ``n_tasks`` random assays on one batch of 128."""
    data = load_dataset("toxcast", data_home=os.environ.get("POLYTASK_DATA"))
    X = morgan_fingerprints(data.smiles[:2000], radius=2, n_bits=1024)[0].astype(np.float32)
    Y = np.asarray(data.Y[:2000], dtype=np.float32)
    rng = np.random.default_rng(seed)
    cols = np.sort(rng.choice(Y.shape[1], n_tasks, replace=False))
    names = [data.task_names[c] for c in cols]
    torch.manual_seed(seed)
    model = SharedBottom(
        MLP([1024, 512, 256], activate_last=True), {t: nn.Linear(256, 1) for t in names}
    )
    rows = rng.choice(len(X), 128, replace=False)
    x = torch.from_numpy(X[rows])
    preds = model(x)
    targets = {t: torch.from_numpy(Y[rows, c]) for t, c in zip(names, cols, strict=True)}
    out = TaskSet([Task(t, kind="binary") for t in names]).losses(
        preds, targets, return_counts=True
    )
    assert isinstance(out, tuple)
    losses = out[0]
    cots = torch.autograd.grad(losses.sum(), [preds[t] for t in names], allow_unused=True)
    weights = [head.weight for head in model.heads if isinstance(head, nn.Linear)]
    gram = linear_head_gramian(cots, weights).double().numpy()
    keep = np.diagonal(gram) > 0  # assays without a label in the batch have no gradient
    return gram[keep][:, keep]


def full_systems(gramian: np.ndarray) -> np.ndarray:
    """The baseline: every problem re-solved on ``m × m`` identity-padded systems."""
    scaled = gramian / np.max(np.diagonal(gramian))
    m = scaled.shape[0]
    eye, free = np.eye(m), scaled < 0.0
    for _ in range(2 * m + 4):
        systems = np.where(free[:, :, None] & free[:, None, :], scaled, eye)
        lam = np.linalg.solve(systems, np.where(free, -scaled, 0.0)[:, :, None])[:, :, 0]
        slack = lam @ scaled + scaled
        new_free = lam > np.where(free, 0.0, slack)
        if (new_free == free).all():
            break
        free = new_free
    if kkt_violation(lam, slack).max() > 1e-8:
        raise AssertionError("the baseline did not converge")
    return np.eye(m) + lam


def _median_time(
    fn: Callable[[np.ndarray], np.ndarray], arg: np.ndarray, repeats: int
) -> tuple[float, np.ndarray]:
    times, out = [], np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(arg)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[64, 256, 617])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    torch.set_num_threads(1)
    machine = machine_line()
    rows = []
    for n_tasks in args.tasks:
        gram = toxcast_gramian(n_tasks, seed=0)
        with threadpool_limits(limits=1, user_api="blas"):
            ours, w_ours = _median_time(dual_cone_weights_batched, gram, args.repeats)
            base, w_base = _median_time(full_systems, gram, args.repeats)
        if not np.allclose(w_ours, w_base, atol=1e-8):
            raise AssertionError(f"m={n_tasks}: the two solvers disagree")
        conflict = float((gram < 0).mean())
        rows.append((n_tasks, gram.shape[0], conflict, ours, base))
        print(
            f"m={n_tasks} (active {gram.shape[0]}): polytask {ours:.2f} s, full systems "
            f"{base:.2f} s, x{base / ours:.1f}",
            flush=True,
        )
    cmd = " ".join(["python", "benchmarks/upgrad_many_tasks.py", *sys.argv[1:]])
    lines = [
        "## UPGrad's weighting with hundreds of tasks",
        "",
        "Task Gramians of one real step: ToxCast fingerprints (first 2,000 molecules), a "
        "freshly initialised shared MLP 1024→512→256, one linear head per assay, a batch "
        "of 128, binary cross-entropy with missing labels masked; m assays drawn at "
        "random (those without a label in the batch drop out: *active*). *polytask*: "
        "the primal-dual active-set solver on each problem's free set, gathered to the "
        "largest, stopped problems left alone; *full systems*: the same method on m × m "
        "identity-padded systems, every problem every iteration (polytask before "
        f"8 Dec 2026). Same weights (checked to 1e-8); median of {args.repeats} runs, one "
        "thread.",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {machine}.",
        "",
        "| tasks | active | conflicting pairs | polytask (s) | full systems (s) | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {t} | {a} | {100 * c:.0f} % | {o:.2f} | {b:.2f} | ×{b / o:.1f} |"
        for t, a, c, o, b in rows
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("upgrad_many_tasks", text)


if __name__ == "__main__":
    main()
