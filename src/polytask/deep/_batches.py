"""Turn the data a user hands to the trainer into batches ``(x, {task: y})``.

Three kinds of input are accepted (see :func:`make_source`):

- *joint* data: one input per row and a label for every task, NaN (float) or -1
  (multiclass) where missing — a shared-form :class:`~polytask.data.MultiTaskData`, a
  map-style dataset of ``(x, {task: y})`` items, or any iterable of ready batches
  (e.g. a ``DataLoader``);
- *per-task* data: a per-task-form ``MultiTaskData`` or a mapping ``{task: Dataset of
  (x, y)}``, sampled with a :class:`~polytask.deep._sampling.TaskSampler`.

The trainer's own sources draw every global batch from one ``torch.Generator``; under
DDP every rank draws the same global batch and keeps its shard, so N ranks see exactly
the batches of one process.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset, default_collate

from polytask.tasks import TaskSet

from ._sampling import IndexStream, TaskSampler, shard

Batch = tuple[Any, dict[str, Tensor]]
Mixing = Literal["batch", "example"]


class BatchSource:
    """Base of the batch sources: an epoch of batches and tensor-only state."""

    task_names: tuple[str, ...] = ()

    def steps_per_epoch(self) -> int | None:
        """Number of batches in one epoch (``None`` when unknown)."""
        raise NotImplementedError

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        """Yield this rank's batches for one epoch."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """State that must survive a checkpoint (tensors and primitives only)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


def _gather(dataset: Any, index: Tensor) -> Any:
    """Rows ``index`` of a dataset: fast slicing for tensors, else collated items."""
    if isinstance(dataset, TensorDataset):
        return tuple(t[index] for t in dataset.tensors)
    items = [dataset[int(i)] for i in index]
    return default_collate(items)


class JointSource(BatchSource):
    """Shuffled batches over a joint data set ``(x, {task: y})``.

    Parameters
    ----------
    x : Tensor of shape (n_samples, ...), or None
        Features; with ``targets``, the fast tensor path.
    targets : mapping of str to Tensor of shape (n_samples,), or None
        Labels per task (NaN / -1 missing).
    dataset : Dataset, optional
        A map-style dataset of ``(x, {task: y})`` items (used when ``x`` is None).
    batch_size, shuffle, rank, world_size
        Global batch size, reshuffling per epoch, and this process's shard.
    """

    def __init__(
        self,
        *,
        x: Tensor | None = None,
        targets: Mapping[str, Tensor] | None = None,
        dataset: Any = None,
        batch_size: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.x, self.targets, self.dataset = x, dict(targets or {}), dataset
        self.n = int(x.shape[0]) if x is not None else len(dataset)
        if self.n == 0:
            raise ValueError("the data set is empty: it has no rows to train or evaluate on")
        if x is not None:
            self.task_names = tuple(self.targets)
        else:
            _, first = dataset[0]
            if not isinstance(first, Mapping):
                raise TypeError(
                    "a joint dataset must yield (x, {task: y}) items; got targets of type "
                    f"{type(first).__name__}"
                )
            self.task_names = tuple(first)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.rank, self.world_size = rank, world_size

    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def _rows(self, index: Tensor) -> Batch:
        if self.x is not None:
            return self.x[index], {t: y[index] for t, y in self.targets.items()}
        x, y = _gather(self.dataset, index)
        return x, dict(y)

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        order = (torch.randperm(self.n, generator=generator) if self.shuffle
                 else torch.arange(self.n))
        for start in range(0, self.n, self.batch_size):
            yield self._rows(shard(order[start : start + self.batch_size], self.rank,
                                   self.world_size))


class PerTaskSource(BatchSource):
    """Batches drawn from per-task data sets with a task sampler.

    With ``mixing="batch"`` every step samples one task and takes a batch of its
    examples (the other tasks have no label at that step). With ``mixing="example"``
    every example of the batch samples its own task, giving a batch in the
    block-missing layout where each row is labelled for one task only.
    """

    def __init__(
        self,
        datasets: Mapping[str, Any],
        sampler: TaskSampler,
        *,
        batch_size: int,
        steps_per_epoch: int | None,
        mixing: Mixing,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.datasets = dict(datasets)
        self.task_names = tuple(self.datasets)
        self.sizes = [len(ds) for ds in self.datasets.values()]
        self.sampler, self.batch_size, self.mixing = sampler, batch_size, mixing
        self.streams = [IndexStream(n) for n in self.sizes]
        self._dtypes = {
            name: torch.as_tensor(_gather(ds, torch.zeros(1, dtype=torch.long))[1]).dtype
            for name, ds in self.datasets.items()
        }
        self._steps = steps_per_epoch or math.ceil(sum(self.sizes) / batch_size)
        self.rank, self.world_size = rank, world_size

    def steps_per_epoch(self) -> int:
        return self._steps

    def _one_task(self, generator: torch.Generator) -> Batch:
        t = int(self.sampler.sample(1, generator)[0])
        name = self.task_names[t]
        index = shard(self.streams[t].take(self.batch_size, generator), self.rank,
                      self.world_size)
        x, y = _gather(self.datasets[name], index)
        return x, {name: y}

    def _mixed(self, generator: torch.Generator) -> Batch:
        draws = self.sampler.sample(self.batch_size, generator)
        counts = torch.bincount(draws, minlength=len(self.task_names)).tolist()
        xs: list[Tensor] = []
        blocks: dict[str, tuple[int, Tensor]] = {}
        offset = 0
        for t, (name, c) in enumerate(zip(self.task_names, counts, strict=True)):
            if c == 0:
                continue
            x_t, y_t = _gather(self.datasets[name], self.streams[t].take(c, generator))
            xs.append(x_t)
            blocks[name] = (offset, y_t)
            offset += c
        rows = shard(torch.arange(offset), self.rank, self.world_size)
        targets: dict[str, Tensor] = {}
        for name in self.task_names:
            dtype = self._dtypes[name]
            missing = float("nan") if dtype.is_floating_point else -1
            col = torch.full((offset,), missing, dtype=dtype)
            if name in blocks:
                start, y_t = blocks[name]
                col[start : start + y_t.shape[0]] = y_t.to(dtype)
            targets[name] = col[rows]
        return torch.cat(xs)[rows], targets

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        for _ in range(self._steps):
            yield self._one_task(generator) if self.mixing == "batch" else self._mixed(generator)

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler.state_dict(),
            "streams": [s.state_dict() for s in self.streams],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        for stream, s in zip(self.streams, state["streams"], strict=True):
            stream.load_state_dict(s)


class LoaderSource(BatchSource):
    """Batches from any iterable of ``(x, {task: y})`` (e.g. a ``DataLoader``).

    The trainer does not shard or shuffle these batches (use a ``DistributedSampler``
    under DDP). When the loader has a ``generator`` attribute (``DataLoader(...,
    generator=g)``), its state is checkpointed so a resumed run reshuffles identically.
    """

    def __init__(self, loader: Iterable[Any]) -> None:
        self.loader = loader
        self.task_names = ()

    def steps_per_epoch(self) -> int | None:
        try:
            return len(self.loader)  # type: ignore[arg-type]
        except TypeError:
            return None

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        for i, batch in enumerate(self.loader):
            if not (isinstance(batch, Sequence) and len(batch) == 2
                    and isinstance(batch[1], Mapping)):
                raise TypeError(
                    f"batch {i} of the loader must be a pair (x, {{task: y}}), got "
                    f"{type(batch).__name__}"
                )
            yield batch[0], dict(batch[1])

    def _generator(self) -> torch.Generator | None:
        gen = getattr(self.loader, "generator", None)
        return gen if isinstance(gen, torch.Generator) else None

    def state_dict(self) -> dict[str, Any]:
        gen = self._generator()
        return {} if gen is None else {"generator": gen.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        gen = self._generator()
        if gen is not None and "generator" in state:
            gen.set_state(state["generator"])


def _is_mapping_of_datasets(data: object) -> bool:
    return isinstance(data, Mapping) and all(
        hasattr(v, "__getitem__") and hasattr(v, "__len__") for v in data.values()
    )


def _check_tasks(names: Sequence[str], tasks: TaskSet, what: str, *, every: bool) -> None:
    tasks.check_names(names, what)
    if every:
        absent = [t for t in tasks.names if t not in set(names)]
        if absent:
            raise ValueError(
                f"task(s) {absent} have no labels in {what}; it holds tasks {list(names)}"
            )


def make_source(
    data: Any,
    tasks: TaskSet,
    *,
    what: str,
    batch_size: int,
    shuffle: bool,
    sampling: str,
    temperature: float,
    mixing: Mixing,
    steps_per_epoch: int | None,
    rank: int = 0,
    world_size: int = 1,
) -> BatchSource:
    """Wrap training or evaluation data as a :class:`BatchSource`.

    Raises
    ------
    ValueError
        If the data name a task that ``tasks`` does not know (the known ones are listed),
        or a task of ``tasks`` has no data (training data only).
    TypeError
        If ``data`` is none of the accepted kinds.
    """
    from polytask.data import MultiTaskData
    from polytask.data._torch_views import MultiTaskTorchDataset

    every = what.startswith("train")
    if isinstance(data, MultiTaskData):
        _check_tasks(data.task_names, tasks, what, every=every)
        if data.form == "shared":
            ds = data.torch_dataset()
            return JointSource(x=ds.x, targets=ds.targets, batch_size=batch_size,
                               shuffle=shuffle, rank=rank, world_size=world_size)
        data = data.task_datasets()
    if isinstance(data, MultiTaskTorchDataset):
        _check_tasks(data.task_names, tasks, what, every=every)
        return JointSource(x=data.x, targets=data.targets, batch_size=batch_size,
                           shuffle=shuffle, rank=rank, world_size=world_size)
    if _is_mapping_of_datasets(data) and not isinstance(data, Dataset):
        names = tuple(data)
        _check_tasks(names, tasks, what, every=every)
        sizes = [len(ds) for ds in data.values()]
        empty = [n for n, s in zip(names, sizes, strict=True) if s == 0]
        if empty:
            raise ValueError(f"task(s) {empty} have an empty data set in {what}")
        sampler = TaskSampler(sizes, sampling, temperature)
        return PerTaskSource(data, sampler, batch_size=batch_size,
                             steps_per_epoch=steps_per_epoch, mixing=mixing, rank=rank,
                             world_size=world_size)
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        source = JointSource(dataset=data, batch_size=batch_size, shuffle=shuffle, rank=rank,
                             world_size=world_size)
        _check_tasks(source.task_names, tasks, what, every=every)
        return source
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, Mapping)):
        return LoaderSource(data)
    raise TypeError(
        f"{what} must be a MultiTaskData, a Dataset of (x, {{task: y}}) items, a mapping "
        f"{{task: Dataset of (x, y)}} or an iterable of (x, {{task: y}}) batches, got "
        f"{type(data).__name__}"
    )


def eval_batches(data: Any, tasks: TaskSet, batch_size: int, what: str) -> Iterator[Batch]:
    """Every example of ``data`` once, in order, as ``(x, {task: y})`` batches.

    Per-task data yield each task's examples with that task's labels only.
    """
    source = make_source(data, tasks, what=what, batch_size=batch_size, shuffle=False,
                         sampling="proportional", temperature=1.0, mixing="batch",
                         steps_per_epoch=None)
    gen = torch.Generator().manual_seed(0)  # unused: nothing is shuffled or sampled
    if isinstance(source, PerTaskSource):
        for name, ds in source.datasets.items():
            for start in range(0, len(ds), batch_size):
                x, y = _gather(ds, torch.arange(start, min(start + batch_size, len(ds))))
                yield x, {name: y}
        return
    yield from source.epoch(gen)


__all__ = [
    "Batch",
    "BatchSource",
    "JointSource",
    "LoaderSource",
    "Mixing",
    "PerTaskSource",
    "eval_batches",
    "make_source",
]
