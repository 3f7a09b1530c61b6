"""Input checks of :mod:`polytask.deep.backward` (private)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor


def check_choice(value: object, choices: Sequence[object], name: str) -> None:
    """Raise ``ValueError`` if ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")


def _task(i: int, names: Sequence[str] | None) -> str:
    return f"task {i}" if names is None else f"task {i} ({names[i]!r})"


def check_losses(losses: object, names: Sequence[str] | None) -> Tensor:
    """A finite 1-D floating tensor of task losses attached to the graph.

    Raises
    ------
    TypeError
        If ``losses`` is not a floating-point tensor.
    ValueError
        If it is not 1-D and non-empty, does not match ``names``, has a non-finite entry
        (the message names the first such task) or does not require grad.
    """
    if not isinstance(losses, Tensor):
        raise TypeError(f"losses must be a torch.Tensor of shape (n_tasks,), got "
                        f"{type(losses).__name__}.")
    if not losses.is_floating_point():
        raise TypeError(f"losses must be a floating-point tensor, got dtype {losses.dtype}.")
    if losses.ndim != 1 or losses.shape[0] == 0:
        raise ValueError(f"losses must be a non-empty 1-D tensor (n_tasks,), one loss per task, "
                         f"got shape {tuple(losses.shape)}; stack the task losses.")
    if names is not None and len(names) != losses.shape[0]:
        raise ValueError(f"task_names has {len(names)} names but losses has "
                         f"{losses.shape[0]} entries.")
    finite = torch.isfinite(losses.detach())
    if not bool(finite.all()):
        i = int((~finite).nonzero()[0, 0])
        raise ValueError(f"losses[{i}] for {_task(i, names)} is {float(losses.detach()[i])}; "
                         "every task loss must be finite.")
    if not losses.requires_grad:
        raise ValueError("losses does not require grad: compute it from the model's outputs "
                         "without torch.no_grad() or detach().")
    return losses


def check_params(params: object, name: str, *, required: bool) -> list[Tensor]:
    """Materialise an iterable of tensors, keeping those that require grad."""
    if isinstance(params, Tensor) or not isinstance(params, Iterable):
        raise TypeError(f"{name} must be an iterable of tensors (e.g. module.parameters()), "
                        f"got {type(params).__name__}.")
    out: list[Tensor] = []
    seen: set[int] = set()
    for k, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}[{k}] must be a torch.Tensor, got {type(p).__name__}.")
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    if required and not out:
        raise ValueError(f"{name} must contain at least one tensor that requires grad.")
    return out


def flatten_task_params(task_params: object, shared: Sequence[Tensor]) -> list[Tensor]:
    """One list of task-specific parameters from a flat or per-task iterable."""
    if isinstance(task_params, Tensor) or not isinstance(task_params, Iterable):
        raise TypeError("task_params must be an iterable of tensors or a sequence of such "
                        f"iterables (one per task), got {type(task_params).__name__}.")
    flat: list[object] = []
    for item in task_params:
        if isinstance(item, Tensor):
            flat.append(item)
        elif isinstance(item, Iterable):
            flat.extend(item)
        else:
            flat.append(item)
    params = check_params(flat, "task_params", required=False)
    shared_ids = {id(p) for p in shared}
    both = [k for k, p in enumerate(params) if id(p) in shared_ids]
    if both:
        raise ValueError(f"task_params[{both[0]}] is also in shared_params; a parameter is "
                         "either shared or task-specific.")
    return params


def check_features(features: object) -> list[Tensor]:
    """Representation-mode features: tensors attached to the shared part of the graph."""
    if features is None:
        raise ValueError("features is required when mode='representation': pass "
                         "model.encode(x), the tensor(s) the task heads read (not detached).")
    items = [features] if isinstance(features, Tensor) else features
    if not isinstance(items, Sequence) or len(items) == 0:
        raise TypeError("features must be a tensor or a non-empty sequence of tensors, got "
                        f"{type(features).__name__}.")
    out: list[Tensor] = []
    for k, f in enumerate(items):
        if not isinstance(f, Tensor):
            raise TypeError(f"features[{k}] must be a torch.Tensor, got {type(f).__name__}.")
        if f.grad_fn is None:
            raise ValueError(f"features[{k}] is not attached to the graph of the shared "
                             "parameters (it is a leaf or detached); pass model.encode(x) "
                             "itself.")
        out.append(f)
    return out
