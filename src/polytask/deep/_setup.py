"""Pieces the trainer assembles before its first step.

Parameter groups with per-task learning rates, the optimizer, auxiliary-weight
schedules, model checks, device and mixed-precision settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from polytask.tasks import Task, TaskSet

from ._architectures._mmoe import MMoE
from ._architectures._shared_bottom import SharedBottom
from ._architectures._stacked_heads import linear_heads, stacked_linear, stacked_mmoe

Schedule = Literal["constant", "linear", "cosine"] | Callable[[float], float]
OptimizerArg = torch.optim.Optimizer | Callable[[list[dict[str, Any]]], torch.optim.Optimizer]
_SCHEDULES = ("constant", "linear", "cosine")


def task_param_groups(
    model: nn.Module, tasks: TaskSet, method: nn.Module | None = None
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: shared, one per task, and the method's parameters.

    Every group carries a ``name`` (``"shared"``, ``"task:<name>"``, ``"other"`` for
    parameters of model tasks outside ``tasks``, ``"method"``) and an ``lr_scale``: 1 for
    the shared, other and method groups, :attr:`Task.lr_scale <polytask.tasks.Task>`
    for a task's own parameters. Empty groups are left out.

    Parameters
    ----------
    model : nn.Module
        An architecture with ``shared_parameters()`` and ``task_parameters(task)``.
    tasks : TaskSet
        The tasks being trained.
    method : nn.Module, optional
        A loss weighting with learnable parameters (e.g. uncertainty weighting).

    Returns
    -------
    list of dict
        ``[{"params": [...], "name": str, "lr_scale": float}, ...]``; pass them to an
        optimizer and multiply each group's ``lr`` by its ``lr_scale``.

    Examples
    --------
    >>> from torch import nn
    >>> from polytask.deep.architectures import SharedBottom
    >>> from polytask.tasks import Task, TaskSet
    >>> model = SharedBottom(nn.Linear(3, 4), {"a": nn.Linear(4, 1), "b": nn.Linear(4, 1)})
    >>> groups = task_param_groups(model, TaskSet([Task("a"), Task("b", lr_scale=10.0)]))
    >>> [(g["name"], g["lr_scale"]) for g in groups]
    [('shared', 1.0), ('task:a', 1.0), ('task:b', 10.0)]
    """
    arch: Any = model
    seen: set[int] = set()

    def fresh(params: Any) -> list[nn.Parameter]:
        out = []
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    groups = [{"params": fresh(arch.shared_parameters()), "name": "shared", "lr_scale": 1.0}]
    for task in tasks:
        groups.append({"params": fresh(arch.task_parameters(task.name)),
                       "name": f"task:{task.name}", "lr_scale": float(task.lr_scale)})
    groups.append({"params": fresh(model.parameters()), "name": "other", "lr_scale": 1.0})
    if method is not None:
        params = [p for p in method.parameters() if p.requires_grad]
        groups.append({"params": fresh(params), "name": "method", "lr_scale": 1.0})
    return [g for g in groups if g["params"]]


def build_optimizer(
    optimizer: OptimizerArg, model: nn.Module, tasks: TaskSet, method: Any
) -> torch.optim.Optimizer:
    """The optimizer to train with: built from a factory, or a checked instance.

    A factory (e.g. ``functools.partial(torch.optim.Adam, lr=1e-3)``) receives
    :func:`task_param_groups`; every group's learning rate is then multiplied by its
    ``lr_scale``. An instance is used as is, which requires every ``lr_scale`` to be 1
    and the instance to hold every trainable model (and method) parameter.

    Raises
    ------
    TypeError
        If ``optimizer`` is neither an optimizer nor a callable returning one.
    ValueError
        If an instance is given while a task has ``lr_scale != 1``, or it misses
        parameters.
    """
    weighting = method if isinstance(method, nn.Module) else None
    if isinstance(optimizer, torch.optim.Optimizer):
        scaled = [t.name for t in tasks if t.lr_scale != 1.0]
        if scaled:
            raise ValueError(
                f"tasks {scaled} have lr_scale != 1, which needs per-task parameter groups: "
                "pass a factory as optimizer, e.g. functools.partial(torch.optim.Adam, "
                "lr=1e-3), and the trainer builds them"
            )
        held = {id(p) for g in optimizer.param_groups for p in g["params"]}
        wanted = [p for p in model.parameters() if p.requires_grad]
        if weighting is not None:
            wanted += [p for p in weighting.parameters() if p.requires_grad]
        missing = [p for p in wanted if id(p) not in held]
        if missing:
            raise ValueError(
                f"optimizer does not hold {len(missing)} trainable parameter tensor(s) of the "
                "model or method (a method with learnable parameters, such as uncertainty "
                "weighting, must be optimised too); pass a factory instead"
            )
        return optimizer
    if not callable(optimizer):
        raise TypeError("optimizer must be a torch.optim.Optimizer or a callable building one "
                        f"from parameter groups, got {type(optimizer).__name__}")
    opt = optimizer(task_param_groups(model, tasks, weighting))
    if not isinstance(opt, torch.optim.Optimizer):
        raise TypeError(f"the optimizer factory returned a {type(opt).__name__}, not a "
                        "torch.optim.Optimizer")
    for group in opt.param_groups:
        group["lr"] = group["lr"] * group.get("lr_scale", 1.0)
    return opt


def _schedule_value(schedule: Any, progress: float, where: str) -> float:
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    value = schedule(progress)
    if isinstance(value, Tensor):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0:
        raise ValueError(f"{where} returned {value!r} at progress {progress:.4g}; expected a "
                         "finite number >= 0")
    return float(value)


def check_schedule(schedule: object, tasks: TaskSet) -> None:
    """Validate ``aux_schedule``: a name, a callable, or a mapping ``{task: schedule}``."""
    items = schedule.items() if isinstance(schedule, Mapping) else [("*", schedule)]
    if isinstance(schedule, Mapping):
        tasks.check_names(list(schedule), "aux_schedule")
    for name, s in items:
        if not (callable(s) or s in _SCHEDULES):
            where = "aux_schedule" if name == "*" else f"aux_schedule[{name!r}]"
            raise ValueError(f"{where} must be one of {_SCHEDULES} or a callable "
                             f"progress -> weight, got {s!r}")


def task_scales(tasks: TaskSet, schedule: Any, progress: float, step: int) -> Tensor:
    """``c_t`` of every task at a step: weight × schedule, 0 when off its period.

    The schedule multiplies auxiliary tasks only, unless it is a mapping, which names
    the tasks it applies to. ``progress`` runs from 0 (first step) towards 1 (end).
    """
    out = []
    for task in tasks:
        if isinstance(schedule, Mapping):
            factor = _schedule_value(schedule[task.name], progress,
                                     f"aux_schedule[{task.name!r}]") \
                if task.name in schedule else 1.0
        else:
            factor = 1.0 if task.is_main else _schedule_value(schedule, progress, "aux_schedule")
        on = step % task.period == 0
        out.append(task.weight * factor if on else 0.0)
    return torch.tensor(out, dtype=torch.float64)


def check_model(model: object, tasks: TaskSet, representation: bool) -> nn.Module:
    """Check the architecture interface the trainer needs; return the model."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for attr in ("shared_parameters", "task_parameters"):
        if not callable(getattr(model, attr, None)):
            raise TypeError(f"model must provide {attr}() (see polytask.deep.architectures."
                            f"Architecture); {type(model).__name__} does not")
    names = getattr(model, "task_names", None)
    if names is not None:
        absent = [t for t in tasks.names if t not in tuple(names)]
        if absent:
            raise ValueError(f"task(s) {absent} are not outputs of the model; the model "
                             f"predicts {list(names)}")
    if representation and not getattr(model, "supports_representation", False):
        raise ValueError(f"mode='representation' needs a model with encode()/decode() "
                         f"(supports_representation=True); {type(model).__name__} has none: "
                         "use mode='parameter'")
    return model


class ForwardModule(nn.Module):
    """``x -> (features, {task: prediction}, regularizer)``: the module DDP wraps.

    With ``encode=True`` ``features`` is the tuple of tensors returned by
    ``model.encode(x)`` and the predictions are ``model.decode(features, x)`` (equal to
    ``model(x)`` by the architecture contract); otherwise ``features`` is empty and the
    predictions are ``model(x)``.  With ``stack_heads=True`` (set by the trainer for
    loss weightings only) a :class:`SharedBottom` whose heads are all plain linear
    layers computes them as one matrix product (:func:`stacked_linear`), and an
    :class:`MMoE` with linear gates and towers its gates, mixtures and towers at once
    (:func:`stacked_mmoe`).
    """

    def __init__(self, model: nn.Module, encode: bool, stack_heads: bool = False) -> None:
        super().__init__()
        self.model = model
        self.encode = encode
        self.stack_heads = stack_heads and encode and type(model) in (SharedBottom, MMoE)

    def _stacked(self, feats: Any, x: Any) -> dict[str, Tensor] | None:
        model: Any = self.model
        if type(model) is MMoE:
            return stacked_mmoe(model, feats, x)
        layers = linear_heads(list(model.heads))
        if layers is None or not isinstance(feats, Tensor) \
                or feats.shape[-1] != layers[0].in_features:
            return None
        return dict(zip(model.task_names, stacked_linear(layers, feats), strict=True))

    def forward(self, x: Any) -> tuple[tuple[Tensor, ...], dict[str, Tensor], Tensor]:
        model: Any = self.model
        if self.encode:
            feats = model.encode(x)
            preds = self._stacked(feats, x) if self.stack_heads else None
            if preds is None:
                preds = model.decode(feats, x)
            flat = feats if isinstance(feats, tuple) else (feats,)
        else:
            preds = model(x)
            flat = ()
        reg = model.regularizer() if hasattr(model, "regularizer") else None
        if reg is None:
            reg = torch.zeros(())
        return flat, preds, reg


def one_objective(kind: str, method: Any, want_gramian: bool) -> bool:
    """Whether a step only backpropagates one objective (no per-task gradient).

    True for a loss weighting that needs no gradient norms, when no Gramian is tracked:
    the task losses may then be computed in vectorised groups and linear heads stacked,
    since nothing differentiates the tasks one by one.

    Examples
    --------
    >>> from polytask.deep.weighting import EqualWeighting, GradNorm
    >>> one_objective("loss", EqualWeighting(["a", "b"]), False)
    True
    >>> one_objective("loss", EqualWeighting(["a", "b"]), True)
    False
    """
    return kind == "loss" and not getattr(method, "requires_grad_norms", False) \
        and not want_gramian


def structured_heads(model: nn.Module, kind: str, method: Any, representation: bool,
                     want_gramian: bool) -> list[nn.Linear] | None:
    """The heads' linear layers when the step may take the representation Gramian from
    their output cotangents (:func:`polytask.deep._head_gramian.linear_head_gramian`).

    That needs representation mode, a plain :class:`SharedBottom` whose heads are all
    plain linear layers on its features, and a method that reads the Gramian (a
    Gramian weighting, GradVac, or a loss weighting that needs gradient norms or a
    tracked Gramian), not the Jacobian itself. The heads may then also be stacked into
    one matrix product: the cotangents are taken at each task's slice of the output.

    Examples
    --------
    >>> from torch import nn
    >>> from polytask.deep.aggregation import UPGrad
    >>> from polytask.deep.architectures import SharedBottom
    >>> model = SharedBottom(nn.Linear(3, 4), {"a": nn.Linear(4, 1), "b": nn.Linear(4, 1)})
    >>> len(structured_heads(model, "gramian", UPGrad(), True, False))
    2
    >>> structured_heads(model, "gramian", UPGrad(), False, False) is None  # parameter mode
    True
    """
    needs_gramian = kind in ("gramian", "gradvac") or (
        kind == "loss" and (getattr(method, "requires_grad_norms", False) or want_gramian))
    if not (representation and needs_gramian and type(model) is SharedBottom):
        return None
    return linear_heads(list(model.heads))


def uses_features(model: nn.Module, representation: bool) -> bool:
    """Whether the step hands ``model.encode(x)`` to the backward engine.

    Always in representation mode. In parameter mode when the architecture splits its
    forward pass (``supports_representation``, with ``forward`` written in the same
    class as ``encode`` and ``decode``, so that ``forward(x) == decode(encode(x), x)``
    holds) and has trainable shared parameters: the engine's fast path (per-task
    cotangents at the representation, then one batched pass through the shared part)
    then gives the same update, since by the architecture contract the shared
    parameters reach the losses only through the features. A subclass that overrides
    ``forward`` alone keeps its ``forward`` (and the per-task passes).

    Examples
    --------
    >>> from torch import nn
    >>> from polytask.deep.architectures import SharedBottom, SoftSharing
    >>> uses_features(SharedBottom(nn.Linear(3, 4), {"a": nn.Linear(4, 1)}), False)
    True
    >>> towers = {"a": nn.Linear(3, 1), "b": nn.Linear(3, 1)}
    >>> uses_features(SoftSharing(towers, strength=0.1), False)   # nothing shared
    False
    """
    if representation:
        return True
    if not getattr(model, "supports_representation", False):
        return False
    owner = next((c for c in type(model).__mro__ if "forward" in vars(c)), None)
    if owner is None or not {"encode", "decode"} <= set(vars(owner)):
        return False
    arch: Any = model
    return any(p.requires_grad for p in arch.shared_parameters())


def as_taskset(tasks: TaskSet | Iterable[Task | str]) -> TaskSet:
    """``tasks`` as a :class:`~polytask.tasks.TaskSet` (a TaskSet is returned as is).

    Parameters
    ----------
    tasks : TaskSet or iterable of Task or str
        A plain string is a regression task of that name.

    Returns
    -------
    TaskSet

    Examples
    --------
    >>> from polytask.tasks import Task
    >>> as_taskset(["a", Task("b", kind="binary")]).names
    ('a', 'b')
    """
    return tasks if isinstance(tasks, TaskSet) else TaskSet(tasks)


def check_method(method: Any, kind: str, tasks: TaskSet, representation: bool,
                  distributed: bool) -> None:
    """Check that a method fits the task set and the run (mode, DDP)."""
    if kind == "loss":
        if method.n_tasks != len(tasks):
            raise ValueError(f"method {type(method).__name__} was built for {method.n_tasks} "
                             f"task(s) but there are {len(tasks)}: {list(tasks.names)}")
        names = method.task_names
        if names is not None and tuple(names) != tasks.names:
            raise ValueError(f"method {type(method).__name__} was built for tasks {list(names)}"
                             f"; the trainer's tasks are {list(tasks.names)} (same order)")
    if kind == "jacobian" and representation and distributed:
        raise ValueError(f"{type(method).__name__} needs the representation Jacobian, which "
                         "cannot be reduced across DDP ranks: use mode='parameter' or a "
                         "Gramian-based aggregator")


def resolve_device(device: str | torch.device | None, model: nn.Module) -> torch.device:
    """The training device: the given one, else the model's (CPU for a model without
    parameters)."""
    if device is not None:
        return torch.device(device)
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def amp_settings(mixed_precision: bool | str, device: torch.device) -> tuple[torch.dtype | None,
                                                                               Any]:
    """Autocast dtype and ``GradScaler`` for the device (``(None, None)`` off CUDA)."""
    if mixed_precision is False or mixed_precision == "no" or device.type != "cuda":
        return None, None
    if mixed_precision == "bf16":
        return torch.bfloat16, None
    return torch.float16, torch.amp.GradScaler("cuda")


def move(obj: Any, device: torch.device) -> Any:
    """Move tensors (inside tuples, lists and dicts too) to ``device``."""
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: move(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(move(v, device) for v in obj)
    return obj


__all__ = ["ForwardModule", "OptimizerArg", "Schedule", "amp_settings", "as_taskset",
           "build_optimizer", "check_method", "check_model", "check_schedule", "move",
           "resolve_device", "task_param_groups", "task_scales", "uses_features"]
