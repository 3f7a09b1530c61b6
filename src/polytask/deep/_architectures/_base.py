"""The architecture contract shared by every deep multi-task model, and input checks."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TypeAlias

import torch
from torch import Tensor, nn

Features: TypeAlias = Tensor | tuple[Tensor, ...]
"""What :meth:`Architecture.encode` returns: one tensor or a tuple of tensors."""


class Architecture(nn.Module, ABC):
    """Base class of the deep multi-task architectures.

    An architecture is an :class:`torch.nn.Module` whose ``forward(x)`` returns one
    prediction per task, ``{task_name: prediction}``, and which splits its parameters
    into a *shared* part and one *task-specific* part per task. The split is by
    ownership: every parameter belongs to exactly one part, and the union of the parts
    is ``set(model.parameters())``.

    Architectures whose shared part ends in a representation (``supports_representation
    = True``) also split the forward pass in two, for per-task gradients taken with
    respect to the shared representation (MGDA-UB style):

    - ``encode(x)`` computes everything that depends on the shared parameters and
      returns the *features*, a tensor or a tuple of tensors;
    - ``decode(features, x)`` computes the predictions from the features and ``x``
      using task-specific parameters only;

    and ``forward(x) == decode(encode(x), x)`` exactly.

    Subclasses implement ``forward``, ``_shared_modules`` and ``_task_modules`` (and
    ``encode``/``decode`` when they support the representation split), and call
    ``_check_parameter_partition()`` at the end of ``__init__``.

    Parameters
    ----------
    task_names : sequence of str
        The task names, in the order of the outputs.

    Attributes
    ----------
    supports_representation : bool
        Whether :meth:`encode` and :meth:`decode` are available.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from polytask.deep.architectures import Architecture, SharedBottom
    >>> model = SharedBottom(nn.Linear(4, 8), {"a": nn.Linear(8, 1), "b": nn.Linear(8, 2)})
    >>> isinstance(model, Architecture), model.task_names
    (True, ('a', 'b'))
    >>> n_shared = sum(p.numel() for p in model.shared_parameters())
    >>> n_task = sum(p.numel() for t in model.task_names for p in model.task_parameters(t))
    >>> n_shared + n_task == sum(p.numel() for p in model.parameters())
    True
    """

    supports_representation: bool = False

    def __init__(self, task_names: Sequence[str]) -> None:
        super().__init__()
        self._task_names: tuple[str, ...] = tuple(task_names)

    @property
    def task_names(self) -> tuple[str, ...]:
        """tuple of str: The task names, in output order."""
        return self._task_names

    @abstractmethod
    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Predict every task.

        Parameters
        ----------
        x : Tensor
            A batch of inputs, ``(batch, ...)``.

        Returns
        -------
        dict of str to Tensor
            One prediction per task, keyed and ordered by :attr:`task_names`.
        """

    def encode(self, x: Tensor) -> Features:
        """Compute the shared representation (everything that uses shared parameters).

        Parameters
        ----------
        x : Tensor
            A batch of inputs, ``(batch, ...)``.

        Returns
        -------
        Tensor or tuple of Tensor
            The features consumed by :meth:`decode`.

        Raises
        ------
        NotImplementedError
            If the architecture has no shared representation.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no shared representation "
            "(supports_representation is False): use forward(x)"
        )

    def decode(self, features: Features, x: Tensor) -> dict[str, Tensor]:
        """Predict every task from the shared representation, with task parameters only.

        Parameters
        ----------
        features : Tensor or tuple of Tensor
            The output of :meth:`encode`.
        x : Tensor
            The same batch of inputs that was encoded, ``(batch, ...)``.

        Returns
        -------
        dict of str to Tensor
            One prediction per task; equal to ``forward(x)``.

        Raises
        ------
        NotImplementedError
            If the architecture has no shared representation.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no shared representation "
            "(supports_representation is False): use forward(x)"
        )

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Iterate over the parameters shared by all tasks (each parameter once).

        Returns
        -------
        iterator of Parameter
            The shared parameters; empty when nothing is shared.
        """
        return _unique_parameters(self._shared_modules())

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """Iterate over the parameters owned by one task (each parameter once).

        Parameters
        ----------
        task : str
            A task name from :attr:`task_names`.

        Returns
        -------
        iterator of Parameter
            The parameters that belong to ``task`` only.

        Raises
        ------
        ValueError
            If ``task`` is not one of :attr:`task_names`.
        """
        return _unique_parameters(self._task_modules(self._task_index(task)))

    def regularizer(self) -> Tensor:
        """Return the architecture's penalty to add to the training loss.

        Returns
        -------
        Tensor
            A scalar; zero unless the architecture defines a penalty (see
            :class:`SoftSharing`).
        """
        first = next(self.parameters(), None)
        if first is None:
            return torch.zeros(())
        return first.new_zeros(())

    def extra_repr(self) -> str:
        return f"tasks={list(self._task_names)}"

    @abstractmethod
    def _shared_modules(self) -> Iterable[nn.Module]:
        """The modules holding the shared parameters."""

    @abstractmethod
    def _task_modules(self, index: int) -> Iterable[nn.Module]:
        """The modules holding the parameters of task number ``index``."""

    def _task_index(self, task: str) -> int:
        try:
            return self._task_names.index(task)
        except ValueError:
            raise ValueError(
                f"unknown task {task!r}; known tasks: {list(self._task_names)}"
            ) from None

    def _check_parameter_partition(self) -> None:
        """Raise if a parameter belongs to two parts (a module passed twice)."""
        names = {id(p): n for n, p in self.named_parameters(remove_duplicate=False)}
        owner: dict[int, str] = {}
        parts = [("the shared part", self._shared_modules())]
        parts += [(f"task {t!r}", self._task_modules(i)) for i, t in enumerate(self._task_names)]
        for label, modules in parts:
            for param in _unique_parameters(modules):
                other = owner.setdefault(id(param), label)
                if other != label:
                    raise ValueError(
                        f"parameter {names.get(id(param), '?')!r} is used by both {other} and "
                        f"{label}: pass a distinct module to each part"
                    )


def _unique_parameters(modules: Iterable[nn.Module]) -> Iterator[nn.Parameter]:
    seen: set[int] = set()
    for module in modules:
        for param in module.parameters():
            if id(param) not in seen:
                seen.add(id(param))
                yield param


def check_module(obj: object, arg: str) -> nn.Module:
    """Return ``obj`` if it is an ``nn.Module``, else raise a TypeError naming ``arg``."""
    if not isinstance(obj, nn.Module):
        raise TypeError(f"{arg} must be a torch.nn.Module, got {type(obj).__name__}")
    return obj


def check_task_names(keys: Iterable[object], arg: str) -> tuple[str, ...]:
    """Validate the task names (non-empty strings, at least one) of a mapping argument."""
    names = tuple(keys)
    if not names:
        raise ValueError(f"{arg} must name at least one task, got an empty mapping")
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{arg}: task names must be non-empty strings, got {name!r}")
    return names  # type: ignore[return-value]


def check_module_mapping(obj: object, arg: str) -> tuple[str, ...]:
    """Validate a ``{task: nn.Module}`` mapping and return its task names in order."""
    if not isinstance(obj, Mapping):
        raise TypeError(
            f"{arg} must be a mapping from task name to torch.nn.Module, got {type(obj).__name__}"
        )
    names = check_task_names(obj.keys(), arg)
    for name in names:
        check_module(obj[name], f"{arg}[{name!r}]")
    return names


def check_same_tasks(expected: Sequence[str], got: Iterable[object], arg: str) -> None:
    """Raise a ValueError if ``got`` does not name exactly the tasks in ``expected``."""
    got_set = set(got)
    missing = [t for t in expected if t not in got_set]
    extra = sorted(repr(t) for t in got_set if t not in set(expected))
    if missing or extra:
        raise ValueError(
            f"{arg} must name exactly the tasks {list(expected)}; "
            f"missing {missing}, unexpected [{', '.join(extra)}]"
        )


def check_module_sequence(obj: object, arg: str, min_length: int = 1) -> tuple[nn.Module, ...]:
    """Validate a sequence of modules of at least ``min_length`` items."""
    if not isinstance(obj, Sequence) or isinstance(obj, str):
        raise TypeError(f"{arg} must be a sequence of torch.nn.Module, got {type(obj).__name__}")
    if len(obj) < min_length:
        raise ValueError(f"{arg} must hold at least {min_length} module(s), got {len(obj)}")
    return tuple(check_module(m, f"{arg}[{i}]") for i, m in enumerate(obj))


def check_positive_int(value: object, arg: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise naming ``arg``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{arg} must be >= 1, got {value}")
    return value


def check_nonnegative_float(value: object, arg: str) -> float:
    """Return ``value`` as a float if it is a finite real >= 0, else raise naming ``arg``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{arg} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{arg} must be a finite number >= 0, got {value}")
    return float(value)
