"""The deep half of ``polytask demo``: the MMoE paper's synthetic experiment.

Two regression tasks from :func:`polytask.data.mmoe_synthetic` (Ma et al., KDD 2018,
section 4) share one input; their correlation ρ is varied.  The same small MLP trained on
one task at a time (STL) is compared with a shared-bottom network and an MMoE, all
trained by :class:`polytask.deep.Trainer` with early model selection on a validation
split and scored on a held-out test split.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DeepSetup:
    """Sizes of the deep demo problem."""

    n_features: int = 16
    n_train: int = 400
    n_val: int = 400
    n_test: int = 2000
    hidden: int = 32
    n_experts: int = 3
    max_epochs: int = 30
    batch_size: int = 64
    lr: float = 5e-3
    noise: float = 0.5


def _models(setup: DeepSetup, names: tuple[str, ...]) -> dict[str, Any]:
    from torch import nn

    from polytask.deep.architectures import MLP, MMoE, SharedBottom

    d, h = setup.n_features, setup.hidden

    def shared_bottom(tasks: tuple[str, ...]) -> nn.Module:
        return SharedBottom(MLP([d, h, h], activate_last=True),
                            {t: MLP([h, h // 2, 1]) for t in tasks})

    def mmoe(tasks: tuple[str, ...]) -> nn.Module:
        experts = [MLP([d, h, h], activate_last=True) for _ in range(setup.n_experts)]
        return MMoE(experts, {t: MLP([h, h // 2, 1]) for t in tasks}, gate_input_dim=d)

    return {"shared-bottom": shared_bottom, "MMoE": mmoe}


def deep_rows(seed: int, rho: float, setup: DeepSetup) -> list[dict[str, Any]]:
    """Train STL, shared-bottom and MMoE on one draw; return tidy result rows."""
    return deep_run(seed, rho, setup)[0]


def deep_run(seed: int, rho: float, setup: DeepSetup, *, gradient_batches: int = 0
             ) -> tuple[list[dict[str, Any]], float | None]:
    """:func:`deep_rows` and the trained shared-bottom model's task-gradient cosine.

    With ``gradient_batches > 0`` the cosine of the two tasks' gradients on the shared
    layers is averaged over that many training batches after training
    (:func:`polytask.relate.measure_gradient_similarity`); otherwise it is None.
    """
    import torch

    from polytask.data import MultiTaskData, mmoe_synthetic
    from polytask.deep.trainer import Trainer

    n = setup.n_train + setup.n_val + setup.n_test
    synth = mmoe_synthetic(n_samples=n, n_features=setup.n_features, n_tasks=2,
                           correlation=rho, noise=setup.noise, random_state=seed)
    X, Y = np.asarray(synth.X), np.asarray(synth.Y)
    Y = (Y - Y[: setup.n_train].mean(0)) / Y[: setup.n_train].std(0)
    cut = np.cumsum([setup.n_train, setup.n_val])
    parts = [MultiTaskData(X[s], Y[s], task_names=synth.task_names)
             for s in (slice(0, cut[0]), slice(cut[0], cut[1]), slice(cut[1], None))]
    train, val, test = parts
    names = tuple(synth.task_names)
    optimizer = functools.partial(torch.optim.Adam, lr=setup.lr)
    trainer = Trainer(max_epochs=setup.max_epochs, batch_size=setup.batch_size,
                      progress=False, seed=seed, tensorboard=False)
    factories = _models(setup, names)
    rows: list[dict[str, Any]] = []
    setting = f"deep, rho={rho:g}"

    def record(method: str, metrics: dict[str, dict[str, float]]) -> None:
        for task, scores in metrics.items():
            rows.append({"setting": setting, "task": task, "method": method,
                         "seed": seed, "metric": "mse", "value": scores["mse"]})

    torch.manual_seed(seed)
    stl = trainer.fit_stl(factories["shared-bottom"], names, optimizer, train, val)
    record("STL MLP", {t: trainer.evaluate(stl.models[t], [t], test.subset([t]))[t]
                       for t in names})
    cosine: float | None = None
    for method, factory in factories.items():
        torch.manual_seed(seed)
        model = factory(names)
        trainer.fit(model, names, None, optimizer, train, val)
        record(method, trainer.evaluate(model, names, test))
        if method == "shared-bottom" and gradient_batches > 0:
            cosine = _gradient_cosine(model, names, train, setup.batch_size,
                                      gradient_batches)
    return rows, cosine


def _gradient_cosine(model: Any, names: tuple[str, ...], train: Any, batch_size: int,
                     n_batches: int) -> float:
    """Mean cosine of the two tasks' shared-layer gradients over the first batches."""
    from polytask.relate import measure_gradient_similarity

    ds = train.torch_dataset()
    batches = [(ds.x[i:i + batch_size], {t: y[i:i + batch_size] for t, y in ds.targets.items()})
               for i in range(0, min(len(ds), n_batches * batch_size), batch_size)]
    model.eval()
    summary = measure_gradient_similarity(model, list(names), batches)
    return float(summary.mean_cosine[0, 1])


__all__ = ["DeepSetup", "deep_rows", "deep_run"]
