"""PyTorch views of :class:`~polytask.data.MultiTaskData`.

This is the only data module that imports torch, and ``polytask.data`` loads it on first
use (``MultiTaskData.torch_dataset()``, ``task_datasets()``, or the first access to
``polytask.data.collate_tasks``), so ``import polytask.data`` does not import torch. The
dataset class lives at module level so that it pickles, as ``DataLoader`` worker
processes require.

Targets follow one convention everywhere: regression and binary labels are float32 with
NaN for a missing label; multiclass labels are int64 (long) class indices with -1 for a
missing label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

if TYPE_CHECKING:
    from ._containers import MultiTaskData

MISSING_CLASS = -1
"""Target value of a missing multiclass label."""


class MultiTaskTorchDataset(Dataset[tuple[Tensor, dict[str, Tensor]]]):
    """Map-style dataset of ``(x, {task: y})`` items over a shared design.

    Parameters
    ----------
    x : Tensor of shape (n_samples, n_features)
        Features.
    targets : mapping of str to Tensor of shape (n_samples,)
        One target tensor per task, in task order; missing labels are NaN (float
        targets) or -1 (long targets).

    Raises
    ------
    ValueError
        If there is no task, ``x`` is not 2-D, or a task's targets are not 1-D with one
        entry per row of ``x`` (the message names the task).

    Examples
    --------
    >>> import torch
    >>> ds = MultiTaskTorchDataset(torch.zeros(3, 2), {"a": torch.tensor([1.0, float("nan"), 0.5])})
    >>> x, y = ds[1]
    >>> len(ds), tuple(x.shape), bool(torch.isnan(y["a"]))
    (3, (2,), True)
    """

    def __init__(self, x: Tensor, targets: Mapping[str, Tensor]) -> None:
        if x.ndim != 2:
            raise ValueError(f"x must be 2-D (n_samples, n_features), got shape {tuple(x.shape)}")
        if not targets:
            raise ValueError("targets is empty: give at least one task")
        for name, y in targets.items():
            if y.ndim != 1 or y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"task {name!r}: targets must have shape ({x.shape[0]},), got {tuple(y.shape)}"
                )
        self.x = x
        self.targets = dict(targets)

    @property
    def task_names(self) -> tuple[str, ...]:
        """Task names, in order."""
        return tuple(self.targets)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        return self.x[index], {name: y[index] for name, y in self.targets.items()}


def _features(X: NDArray[np.float64]) -> Tensor:
    return torch.from_numpy(np.array(X, dtype=np.float32))


def _targets(y: NDArray[np.float64], kind: str) -> Tensor:
    if kind == "multiclass":
        labels = np.where(np.isnan(y), MISSING_CLASS, np.nan_to_num(y)).astype(np.int64)
        return torch.from_numpy(labels)
    return torch.from_numpy(np.array(y, dtype=np.float32))


def torch_dataset(data: MultiTaskData) -> MultiTaskTorchDataset:
    """A torch ``Dataset`` of ``(x, {task: y})`` items for joint (deep) training.

    Per-task data are first converted with
    :meth:`~polytask.data.MultiTaskData.to_shared` (the block-missing layout: each row
    has one observed label).

    Parameters
    ----------
    data : MultiTaskData
        Either form.

    Returns
    -------
    MultiTaskTorchDataset
        Items ``(x, targets)``: ``x`` float32 of shape (n_features,); ``targets`` maps
        each task to a scalar tensor, float32 with NaN when missing, or long with -1 when
        missing for multiclass tasks. Batch them with :func:`collate_tasks`.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.data import MultiTaskData
    >>> data = MultiTaskData(np.zeros((2, 3)), [[0.5, 2], [np.nan, np.nan]],
    ...                      task_names=["r", "c"], kinds=["regression", "multiclass"])
    >>> x, y = torch_dataset(data)[1]
    >>> x.dtype, y["r"].isnan().item(), y["c"].item()
    (torch.float32, True, -1)
    """
    shared = data.to_shared()
    X, Y = shared.feature_matrix(), shared.label_matrix()
    kinds = shared.kinds
    targets = {name: _targets(Y[:, t], kinds[name]) for t, name in enumerate(shared.task_names)}
    return MultiTaskTorchDataset(_features(X), targets)


def task_datasets(data: MultiTaskData) -> dict[str, TensorDataset]:
    """One torch ``Dataset`` of ``(x, y)`` pairs per task, observed labels only.

    For per-task sampling (tasks of different sizes, one loader per task).

    Parameters
    ----------
    data : MultiTaskData
        Either form.

    Returns
    -------
    dict of str to TensorDataset
        ``x`` float32 of shape (n_features,); ``y`` a float32 scalar (long for
        multiclass tasks).

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.data import MultiTaskData
    >>> data = MultiTaskData.from_tasks({"a": (np.zeros((4, 2)), np.ones(4)),
    ...                                  "b": (np.zeros((2, 2)), np.ones(2))})
    >>> {name: len(ds) for name, ds in task_datasets(data).items()}
    {'a': 4, 'b': 2}
    """
    kinds = data.kinds
    return {
        name: TensorDataset(_features(X_t), _targets(y_t, kinds[name]))
        for name, X_t, y_t in data.iter_tasks()
    }


def collate_tasks(
    batch: Sequence[tuple[Tensor, Mapping[str, Any]]],
) -> tuple[Tensor, dict[str, Tensor]]:
    """Batch ``(x, {task: y})`` items into ``(x (batch, n_features), {task: y (batch,)})``.

    Pass it as ``collate_fn`` to a ``torch.utils.data.DataLoader`` over
    :func:`torch_dataset`.

    Parameters
    ----------
    batch : sequence of (Tensor, mapping of str to Tensor)
        Items sharing the same tasks.

    Returns
    -------
    x : Tensor of shape (batch, n_features)
    targets : dict of str to Tensor of shape (batch,)

    Raises
    ------
    ValueError
        If the batch is empty or an item lacks a task (or has an extra one), naming it.

    Examples
    --------
    >>> import torch
    >>> items = [(torch.zeros(2), {"a": torch.tensor(1.0)}),
    ...          (torch.ones(2), {"a": torch.tensor(float("nan"))})]
    >>> x, y = collate_tasks(items)
    >>> tuple(x.shape), tuple(y["a"].shape)
    ((2, 2), (2,))
    """
    if len(batch) == 0:
        raise ValueError("batch is empty")
    names = list(batch[0][1])
    for i, (_, targets) in enumerate(batch):
        if set(targets) != set(names):
            missing = sorted(set(names) - set(targets))
            extra = sorted(set(targets) - set(names))
            raise ValueError(
                f"batch item {i} has different tasks than item 0: missing {missing}, extra {extra}"
            )
    x = torch.stack([torch.as_tensor(item[0]) for item in batch])
    targets_out = {
        name: torch.stack([torch.as_tensor(item[1][name]) for item in batch]) for name in names
    }
    return x, targets_out
