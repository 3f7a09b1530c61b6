"""Single-task learning (STL) baselines trained by the same trainer."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from polytask.tasks import Task, TaskSet

from ._logging import History

if TYPE_CHECKING:
    from .trainer import Trainer


@dataclass
class STLResult:
    """The single-task baselines of a task set.

    Attributes
    ----------
    histories : dict of str to History
        ``{task: History}`` of each single-task run.
    models : dict of str to nn.Module
        ``{task: trained model}`` (best epoch restored when validation data were given).

    Examples
    --------
    >>> from polytask.deep._logging import History
    >>> h = History()
    >>> h.add(1, 5, "val", "a", "mse", 0.3)
    >>> h.scores.append(-0.3)
    >>> h.best_epoch = 1
    >>> STLResult(histories={"a": h}, models={}).metrics
    {'a': {'mse': 0.3}}
    """

    histories: dict[str, History]
    models: dict[str, nn.Module]

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """``{task: {metric: value}}`` at each task's best epoch (validation metrics, or
        the training loss without validation data), comparable with
        ``History.best_metrics`` of a multi-task run."""
        return {t: h.best_metrics.get(t, {}) for t, h in self.histories.items()}


class _OneTaskDataset(Dataset[tuple[Any, dict[str, Tensor]]]):
    """A joint dataset reduced to one task's labels."""

    def __init__(self, dataset: Any, task: str) -> None:
        self.dataset, self.task = dataset, task

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Tensor]]:
        x, y = self.dataset[index]
        return x, {self.task: y[self.task]}


class _OneTaskLoader:
    """An iterable of joint batches reduced to one task's labels."""

    def __init__(self, loader: Any, task: str) -> None:
        self.loader, self.task = loader, task

    @property
    def generator(self) -> torch.Generator | None:
        """The wrapped loader's generator (checkpointed by the trainer)."""
        return getattr(self.loader, "generator", None)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Any, dict[str, Tensor]]]:
        for x, y in self.loader:
            yield x, {self.task: y[self.task]}


def restrict(data: Any, task: str) -> Any:
    """``data`` with the labels of ``task`` only (same rows)."""
    from polytask.data import MultiTaskData
    from polytask.data._torch_views import MultiTaskTorchDataset

    if data is None:
        return None
    if isinstance(data, MultiTaskData):
        return data.subset([task])
    if isinstance(data, MultiTaskTorchDataset):
        return MultiTaskTorchDataset(data.x, {task: data.targets[task]})
    if isinstance(data, Mapping):
        return {task: data[task]}
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        return _OneTaskDataset(data, task)
    return _OneTaskLoader(data, task)


def fit_single_tasks(
    trainer: Trainer, model_factory: Callable[[tuple[str, ...]], nn.Module], tasks: TaskSet,
    optimizer: Callable[..., torch.optim.Optimizer], train: Any, val: Any,
) -> STLResult:
    """Train one model per task with ``trainer``'s settings (see ``Trainer.fit_stl``)."""
    if isinstance(optimizer, torch.optim.Optimizer) or not callable(optimizer):
        raise TypeError("fit_stl needs an optimizer factory (e.g. functools.partial("
                        "torch.optim.Adam, lr=1e-3)), since every task gets a new model; got "
                        f"{type(optimizer).__name__}")
    if not callable(model_factory):
        raise TypeError(f"model_factory must be callable, got {type(model_factory).__name__}")
    histories: dict[str, History] = {}
    models: dict[str, nn.Module] = {}
    for task in tasks:
        single = TaskSet([dataclasses.replace(task, role="main", weight=1.0, period=1)])
        params = trainer.get_params()
        params["aux_schedule"] = "constant"
        if trainer.run_dir is not None:
            params["run_dir"] = Path(trainer.run_dir) / f"stl-{task.name}"
        model = model_factory((task.name,))
        histories[task.name] = type(trainer)(**params).fit(
            model, single, None, optimizer, restrict(train, task.name), restrict(val, task.name))
        models[task.name] = model
    return STLResult(histories=histories, models=models)


def train_single_task(
    model_factory: Callable[[tuple[str, ...]], nn.Module],
    tasks: TaskSet | Iterable[Task | str], optimizer: Callable[..., torch.optim.Optimizer],
    train: Any, val: Any = None, trainer: Trainer | None = None,
) -> STLResult:
    """Train the single-task baselines with ``trainer`` (default ``Trainer()``).

    One model per task, built by ``model_factory((task,))``, trained alone with the
    same settings as the multi-task run; see :meth:`Trainer.fit_stl`.

    Parameters
    ----------
    model_factory : callable
        ``model_factory(task_names) -> model``.
    tasks : TaskSet or iterable of Task or str
        The tasks.
    optimizer : callable
        A factory ``param_groups -> Optimizer``.
    train, val
        As in :meth:`Trainer.fit`.
    trainer : Trainer, optional
        The settings; default ``Trainer()``.

    Returns
    -------
    STLResult
        Per-task histories, models and best-epoch metrics.

    Examples
    --------
    >>> import functools, torch
    >>> from torch import nn
    >>> from polytask.data import mmoe_synthetic, MultiTaskData
    >>> from polytask.deep.architectures import SharedBottom
    >>> from polytask.deep.trainer import Trainer
    >>> syn = mmoe_synthetic(40, n_features=3, random_state=0)
    >>> data = MultiTaskData(syn.X, syn.Y, task_names=syn.task_names)
    >>> def factory(names):
    ...     return SharedBottom(nn.Linear(3, 4), {t: nn.Linear(4, 1) for t in names})
    >>> result = train_single_task(factory, syn.task_names,
    ...                            functools.partial(torch.optim.SGD, lr=0.01), data, data,
    ...                            trainer=Trainer(max_epochs=2, progress=False))
    >>> sorted(result.metrics), "mse" in result.metrics["task_0"]
    (['task_0', 'task_1'], True)
    """
    from .trainer import Trainer

    return (trainer if trainer is not None else Trainer()).fit_stl(
        model_factory, tasks, optimizer, train, val)


__all__ = ["STLResult", "fit_single_tasks", "restrict", "train_single_task"]
