"""Train a few steps with several methods; run alone, or by ``torchrun`` on 2 ranks.

``python _ddp_worker.py OUT_DIR`` writes ``OUT_DIR/<config>.pt`` (the final model
state) from rank 0. ``test_ddp.py`` compares a 2-rank run with a single-process run.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from polytask.data import MultiTaskData
from polytask.deep.aggregation import MGDA, Aggregator, GradVac, PCGrad, UPGrad
from polytask.deep.architectures import MLP, SharedBottom
from polytask.deep.trainer import Trainer
from polytask.deep.weighting import FAMO, EqualWeighting, UncertaintyWeighting
from polytask.tasks import Task

NAMES = ("a", "b", "c")


class JacobianMean(Aggregator):
    """The mean task gradient, from the explicit Jacobian (not Gramian-based)."""

    def __call__(self, jacobian: torch.Tensor) -> torch.Tensor:
        return jacobian.mean(dim=0)


CONFIGS: dict[str, tuple[Any, Literal["parameter", "representation"]]] = {
    "ew": (lambda: EqualWeighting(list(NAMES)), "parameter"),
    "uw": (lambda: UncertaintyWeighting(list(NAMES)), "parameter"),
    "famo": (lambda: FAMO(list(NAMES)), "parameter"),
    "mgda": (lambda: MGDA(), "parameter"),
    "pcgrad_rep": (lambda: PCGrad(), "representation"),
    "upgrad_rep": (lambda: UPGrad(), "representation"),
    "gradvac": (lambda: GradVac(beta=0.5), "parameter"),
    "jacobian_mean": (lambda: JacobianMean(), "parameter"),
}


def make_data() -> MultiTaskData:
    """Joint data whose missing labels fall unevenly on the two ranks' shards."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 5))
    Y = X @ rng.normal(size=(5, 3)) + 0.1 * rng.normal(size=(48, 3))
    Y[rng.random((48, 3)) < 0.3] = np.nan
    Y[:12, 1] = np.nan  # task b: no label at all in the first rank's part of batch 0
    return MultiTaskData(X, Y, task_names=list(NAMES))


def make_model() -> SharedBottom:
    torch.manual_seed(0)
    return SharedBottom(MLP([5, 8], activate_last=True), {t: nn.Linear(8, 1) for t in NAMES})


def run(out_dir: Path, batch_size: int = 24, configs: tuple[str, ...] = tuple(CONFIGS)) -> None:
    """Train every config and save rank 0's final model to ``out_dir/<config>.pt``."""
    from polytask.deep._distributed import init_distributed

    ctx = init_distributed("gloo")
    data = make_data()
    tasks = [Task("a"), Task("b", lr_scale=2.0), Task("c", role="auxiliary")]
    for name in configs:
        make_method, mode = CONFIGS[name]
        model = make_model()
        trainer = Trainer(max_epochs=2, batch_size=batch_size, mode=mode, progress=False, seed=3,
                          tensorboard=False)
        trainer.fit(model, tasks, make_method(), functools.partial(torch.optim.SGD, lr=0.05),
                    data)
        if ctx.is_main:
            torch.save(model.state_dict(), out_dir / f"{name}.pt")
    if ctx.enabled:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    run(Path(sys.argv[1]))
