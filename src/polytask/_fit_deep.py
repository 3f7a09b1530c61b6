"""Train and score one deep unit of an experiment: an architecture × method on one split.

The model is built from the registry with its initial weights drawn from a forked,
seeded torch RNG (the caller's global RNG is left as it was), trained by
:class:`~polytask.deep.trainer.Trainer` on ``split.train`` with epoch selection on
``split.val``, and scored on ``split.test``.  The trainer's run directory (its
``metrics.jsonl`` feeds the report's learning curves) is ``log_dir``.  A single-task
model (``stl: true``) trains one model per main task with the same settings
(:meth:`Trainer.fit_stl <polytask.deep.trainer.Trainer.fit_stl>`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from polytask import _registry as reg
from polytask._config_models import DeepModelConfig
from polytask._experiment_data import SplitData
from polytask.tasks import TaskSet

Row = dict[str, Any]


def build_model(spec: DeepModelConfig, tasks: TaskSet, in_features: int, seed: int) -> Any:
    """The architecture of ``spec`` for ``tasks``, initialised from ``seed``.

    Parameters
    ----------
    spec : DeepModelConfig
    tasks : TaskSet
        One output per regression or binary task, ``n_outputs`` otherwise.
    in_features : int
        Input dimension.
    seed : int
        Seed of the initial weights.

    Returns
    -------
    torch.nn.Module
    """
    import torch

    outputs = {t.name: int(t.n_outputs or 1) for t in tasks}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return reg.architectures()[spec.architecture].fn(in_features, outputs,
                                                          **spec.arch_params)


def optimizer_factory(spec: DeepModelConfig) -> Any:
    """``param_groups -> Optimizer`` with the configured learning rate and options.

    Adam and AdamW use PyTorch's fused kernel unless ``optimizer_params`` choose
    (``fused`` or ``foreach``): the default per-tensor loop costs more than the model's
    own step with hundreds of task heads (57 ms against 8.6 ms per step on the 1,234 head
    tensors of ToxCast).  Since the fused kernel runs once per parameter group, groups
    with the same settings (every task at the same ``lr_scale``) are merged.  A device or
    dtype without a fused kernel falls back to the default implementation.
    """
    fn = reg.optimizers()[spec.optimizer].fn
    params = dict(spec.optimizer_params)
    if spec.optimizer in ("adam", "adamw") and not {"fused", "foreach"} & set(params):
        return functools.partial(_fused_or_default, fn, lr=spec.lr, **params)
    return functools.partial(fn, lr=spec.lr, **params)


def _fused_or_default(fn: Any, param_groups: Any, **kwargs: Any) -> Any:
    import torch

    groups: list[Any] = []
    tensors: list[Any] = []
    for group in param_groups:
        if isinstance(group, dict):
            params = group["params"]
            params = [params] if isinstance(params, torch.Tensor) else list(params)
            groups.append({**group, "params": params})
            tensors += params
        else:
            groups.append(group)
            tensors.append(group)
    # PyTorch checks this only at the first step: floating point on CPU or CUDA
    fusable = all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in tensors)
    if not fusable:
        return fn(groups, **kwargs)
    return fn(_merged(groups), fused=True, **kwargs)


def _merged(groups: list[Any]) -> list[Any]:
    """Parameter groups with the same settings merged (names aside), in first-seen order.

    The fused kernel runs once per group: 618 per-task groups (ToxCast) cost 618 launches
    per step, one group with the same hyperparameters one launch.  A merged group is
    named after its first group and the number of others.
    """
    if not all(isinstance(g, dict) for g in groups):
        return groups
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    names: dict[tuple[Any, ...], list[str]] = {}
    for group in groups:
        key = tuple(sorted(((k, v) for k, v in group.items() if k not in ("params", "name")),
                           key=lambda item: item[0]))
        try:
            hash(key)
        except TypeError:  # a setting that cannot be compared cheaply: keep the groups
            return groups
        if key in merged:
            merged[key]["params"] = merged[key]["params"] + group["params"]
        else:
            merged[key] = dict(group)
        names.setdefault(key, []).append(str(group.get("name", "group")))
    for key, group in merged.items():
        if len(names[key]) > 1:
            group["name"] = f"{names[key][0]} and {len(names[key]) - 1} more"
    return list(merged.values())


def make_trainer(spec: DeepModelConfig, seed: int, log_dir: Path | None) -> Any:
    """The trainer of ``spec``: quiet, seeded, logging to ``log_dir`` (resumable)."""
    from polytask.deep.trainer import Trainer

    return Trainer(max_epochs=spec.epochs, batch_size=spec.batch_size,
                   mode=spec.mode,  # type: ignore[arg-type]
                   patience=spec.patience, run_dir=log_dir, seed=int(seed), progress=False,
                   tensorboard=False)


def _rows(metrics: dict[str, dict[str, float]]) -> list[Row]:
    return [{"task": t, "metric": k, "value": v} for t, ms in metrics.items()
            for k, v in ms.items()]


def fit_deep_unit(spec: DeepModelConfig, split: SplitData, seed: int, log_dir: Path | None
                  ) -> tuple[list[Row], dict[str, Any]]:
    """Train ``spec`` on ``split`` and score every trained task on the test part.

    Parameters
    ----------
    spec : DeepModelConfig
    split : SplitData
    seed : int
        Seeds the initial weights, the data order and the method's random draws.
    log_dir : Path or None
        The trainer's run directory.

    Returns
    -------
    rows : list of dict
        ``{task, metric, value}`` on the test part (main tasks only for STL).
    info : dict
        ``best_epoch`` per model and ``logs``, the trainer run directories.

    Raises
    ------
    ValueError
        If training fails (non-finite loss, method incompatible with the model).
    """
    tasks = split.tasks
    trainer = make_trainer(spec, seed, log_dir)
    opt = optimizer_factory(spec)
    if spec.stl:
        main = TaskSet([t for t in tasks if t.is_main])

        def factory(names: tuple[str, ...]) -> Any:
            return build_model(spec, TaskSet([tasks[n] for n in names]), split.n_features,
                               seed)

        result = trainer.fit_stl(factory, main, opt, split.train, split.val)
        rows: list[Row] = []
        for task in main:
            one = TaskSet([task])
            rows += _rows(trainer.evaluate(result.models[task.name], one,
                                           split.test.subset([task.name]),
                                           undefined="skip"))
        logs = [] if log_dir is None else [str(log_dir / f"stl-{t}") for t in main.names]
        best = {t: h.best_epoch for t, h in result.histories.items()}
        return rows, {"best_epoch": best, "logs": logs}
    method = reg.methods()[spec.method].build(tasks.names, spec.method_params, seed)
    model = build_model(spec, tasks, split.n_features, seed)
    history = trainer.fit(model, tasks, method, opt, split.train, split.val)
    rows = _rows(trainer.evaluate(model, tasks, split.test, undefined="skip"))
    logs = [] if log_dir is None else [str(log_dir)]
    return rows, {"best_epoch": {"all": history.best_epoch}, "logs": logs}


__all__ = ["build_model", "fit_deep_unit", "make_trainer", "optimizer_factory"]
