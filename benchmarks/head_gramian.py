"""Time a Gramian-method training step in representation mode: linear heads' structured
Gramian against the explicit Jacobian, with many tasks.

A shared MLP ``--in``→512→256 (ReLU) reads the input; ``T`` linear heads 256→1 each
predict one binary task (ToxCast's shape at ``T = 617``, 1024 fingerprint bits); batch
``--batch``; SGD; one torch thread. Each variant trains the same model from the same
weights on the same batches through :class:`polytask.deep.Trainer`
(``mode="representation"``):

- ``structured``: the Gramian from the heads' output cotangents, ``(AᵀA) ∘ (W Wᵀ)``
  (:mod:`polytask.deep._head_gramian`);
- ``explicit``: per-task gradients at the representation, then ``J Jᵀ`` (the path
  every other architecture takes).

Both give the same run (tests/deep/test_head_gramian.py checks it). Timed: one epoch of
``--steps`` steps, minus nothing (data loading and logging are the same for both);
after one untimed warm-up epoch each, variants alternate, ``--repeats`` times, median
reported. The table goes into
``docs/benchmarks.md`` between ``<!-- head_gramian:start -->`` and ``:end -->``.

Run::

    python benchmarks/head_gramian.py               # T = 16, 128, 617; ~4 min
    python benchmarks/head_gramian.py --quick --no-write
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _school_common import machine_line, write_section

from polytask.data import MultiTaskTorchDataset
from polytask.deep._step import StepEngine
from polytask.deep.aggregation import CAGradWeighting, MGDAWeighting
from polytask.deep.architectures import MLP, SharedBottom
from polytask.deep.trainer import Trainer
from polytask.tasks import Task, TaskSet

METHODS = {"MGDA": MGDAWeighting, "CAGrad": lambda: CAGradWeighting(c=0.4)}


def _problem(n_tasks: int, n: int, d_in: int) -> tuple[TaskSet, MultiTaskTorchDataset]:
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, d_in, generator=g) < 0.05).float()
    names = [f"t{i}" for i in range(n_tasks)]
    proj = torch.randn(d_in, n_tasks, generator=g)
    labels = (x @ proj + torch.randn(n, n_tasks, generator=g) > 1.0).float()
    labels[torch.rand(n, n_tasks, generator=g) < 0.3] = float("nan")  # missing labels
    targets = {t: labels[:, i] for i, t in enumerate(names)}
    return TaskSet([Task(t, kind="binary") for t in names]), MultiTaskTorchDataset(x, targets)


def _epoch(
    structured: bool,
    method: str,
    tasks: TaskSet,
    data: MultiTaskTorchDataset,
    batch: int,
    d_in: int,
) -> float:
    StepEngine._structured_heads = structured
    torch.manual_seed(0)
    model = SharedBottom(
        MLP([d_in, 512, 256], activate_last=True), {t: nn.Linear(256, 1) for t in tasks.names}
    )
    trainer = Trainer(
        max_epochs=1, batch_size=batch, mode="representation", progress=False, tensorboard=False
    )
    start = time.perf_counter()
    trainer.fit(model, tasks, METHODS[method](), functools.partial(torch.optim.SGD, lr=0.05), data)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[16, 128, 617])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--in", dest="d_in", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="T = 16, 64; 2 steps, 1 repeat")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.steps, args.repeats = [16, 64], 2, 1
    torch.set_num_threads(1)
    machine = machine_line()
    rows = []
    for n_tasks in args.tasks:
        tasks, data = _problem(n_tasks, args.batch * args.steps, args.d_in)
        for method in METHODS:
            times: dict[bool, list[float]] = {True: [], False: []}
            for structured in (True, False):  # untimed warm-up
                _epoch(structured, method, tasks, data, args.batch, args.d_in)
            for _ in range(args.repeats):
                for structured in (True, False):
                    times[structured].append(
                        _epoch(structured, method, tasks, data, args.batch, args.d_in)
                    )
            s, e = (float(np.median(times[k])) / args.steps for k in (True, False))
            rows.append((n_tasks, method, s, e))
            print(
                f"T={n_tasks:4d} {method:7s} structured {s:.3f} s/step  explicit {e:.3f} "
                f"s/step  x{e / s:.1f}",
                flush=True,
            )
    cmd = " ".join(["python", "benchmarks/head_gramian.py", *sys.argv[1:]])
    lines = [
        "## Gramian methods with many linear heads: structured Gramian vs explicit Jacobian",
        "",
        "Representation mode, a shared MLP "
        f"{args.d_in}→512→256 and T linear heads 256→1 (binary tasks, 30 % labels missing), "
        f"batch {args.batch}, SGD, one torch thread; seconds per training step (one epoch "
        f"of {args.steps} steps through `Trainer`, after a warm-up epoch, median of "
        f"{args.repeats} alternating repeats). *structured*: the Gramian from the heads' "
        "output cotangents, (AᵀA) ∘ (W Wᵀ); *explicit*: per-task gradients at the "
        "representation, then J Jᵀ. "
        "Both train identically (tests/deep/test_head_gramian.py).",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {machine}.",
        "",
        "| tasks | weighting | structured (s / step) | explicit (s / step) | speed-up |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {t} | {m} | {s:.3f} | {e:.3f} | ×{e / s:.1f} |" for t, m, s, e in rows]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("head_gramian", text)


if __name__ == "__main__":
    main()
