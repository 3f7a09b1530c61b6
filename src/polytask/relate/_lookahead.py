"""The lookahead affinity of one batch (see :mod:`polytask.relate.affinity`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, overload

import numpy as np

from polytask._typing import FloatArray
from polytask.relate._checks import check_float, to_numpy

if TYPE_CHECKING:
    from torch import Tensor, nn

    from polytask.tasks import Task, TaskSet


@overload
def lookahead_affinity(
    model: nn.Module,
    tasks: TaskSet | Iterable[Task | str],
    x: Tensor,
    targets: Mapping[str, Tensor],
    lr: float,
    params: Iterable[Tensor] | None = ...,
    *,
    return_mask: Literal[False] = ...,
) -> FloatArray: ...


@overload
def lookahead_affinity(
    model: nn.Module,
    tasks: TaskSet | Iterable[Task | str],
    x: Tensor,
    targets: Mapping[str, Tensor],
    lr: float,
    params: Iterable[Tensor] | None = ...,
    *,
    return_mask: Literal[True],
) -> tuple[FloatArray, np.ndarray]: ...


def lookahead_affinity(
    model: nn.Module,
    tasks: TaskSet | Iterable[Task | str],
    x: Tensor,
    targets: Mapping[str, Tensor],
    lr: float,
    params: Iterable[Tensor] | None = None,
    *,
    return_mask: bool = False,
) -> FloatArray | tuple[FloatArray, np.ndarray]:
    """Lookahead inter-task affinity on one batch: ``A[i, j] = Z_{j→i}``.

    ``A[i, j] = 1 − L_i(θ_s − lr · ∇_{θ_s} L_j) / L_i(θ_s)``, all losses on the batch
    ``(x, targets)``, only the shared parameters stepped (task parameters fixed). The
    per-task gradients come from one batched backward pass; the ``n_tasks`` lookahead
    losses from ``torch.func.functional_call`` with the stepped parameters, so the
    model — parameters, buffers (e.g. batch-norm statistics) and ``.grad`` — is left
    unchanged. Every forward pass reuses the same random state, so dropout masks are
    identical before and after the step, and the global RNG is not advanced.

    A task whose loss on the batch is 0 (no label in it, or fitted exactly) has an
    undefined ratio: its row is set to 0 and flagged in the mask.

    Parameters
    ----------
    model : torch.nn.Module
        ``model(x)`` returns ``{task: prediction}``.
    tasks : TaskSet or iterable of Task or str
        The tasks, in the order of the matrix.
    x : Tensor
        The input batch.
    targets : mapping of str to Tensor
        ``{task: target}``, as for :meth:`polytask.TaskSet.losses`.
    lr : float
        Learning rate ``η`` of the lookahead SGD step (``> 0``), usually the
        training learning rate.
    params : iterable of Tensor, optional
        The shared parameters ``θ_s`` to step; defaults to ``model.shared_parameters()``.
        They must be parameters of ``model``.
    return_mask : bool, default=False
        Also return the mask of tasks with zero loss.

    Returns
    -------
    affinity : ndarray of shape (n_tasks, n_tasks)
        ``A[i, j]``: effect of a step on task ``j`` on the loss of task ``i``.
    zero_loss : ndarray of bool, shape (n_tasks,)
        Only when ``return_mask``: True for tasks whose row is undefined (set to 0).

    Raises
    ------
    ValueError
        If ``lr <= 0``, a loss is negative or not finite (the task is named), a
        lookahead loss is not finite (lower ``lr``), ``params`` is empty or holds a
        tensor that is not a parameter of ``model``.
    TypeError
        If ``params`` is omitted and the model has no ``shared_parameters()``.

    References
    ----------
    C. Fifty, E. Amid, Z. Zhao, T. Yu, R. Anil and C. Finn, "Efficiently identifying
    task groupings for multi-task learning", NeurIPS 2021.

    Examples
    --------
    Two tasks with opposite targets hurt each other; each helps itself:

    >>> import torch
    >>> from torch import nn
    >>> from polytask.deep.architectures import SharedBottom
    >>> _ = torch.manual_seed(0)
    >>> model = SharedBottom(nn.Linear(3, 1, bias=False), {"a": nn.Identity(), "b": nn.Identity()})
    >>> x = torch.randn(32, 3)
    >>> y = x @ torch.tensor([[1.0], [-1.0], [2.0]])
    >>> A = lookahead_affinity(model, ["a", "b"], x, {"a": y, "b": -y}, lr=0.05)
    >>> bool(A[0, 0] > 0), bool(A[0, 1] < 0), bool(A[1, 0] < 0)
    (True, True, True)
    """
    import torch
    from torch.func import functional_call

    from polytask.tasks import TaskSet

    step = check_float(lr, "lr", low=0.0, low_open=True)
    task_set = tasks if isinstance(tasks, TaskSet) else TaskSet(tasks)
    names = task_set.names
    shared = _shared_parameters(model, params)
    param_names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
    unknown = [i for i, p in enumerate(shared) if id(p) not in param_names]
    if unknown:
        raise ValueError(
            f"params[{unknown[0]}] is not a parameter of model; pass tensors from "
            "model.parameters() (e.g. model.shared_parameters())"
        )
    buffers = dict(model.named_buffers(remove_duplicate=False))
    device = shared[0].device
    devices = [device] if device.type == "cuda" else []

    with torch.random.fork_rng(devices=devices):
        cpu_state = torch.get_rng_state()
        cuda_state = torch.cuda.get_rng_state(device) if devices else None

        def losses_with(overrides: dict[str, Tensor]) -> Tensor:
            torch.set_rng_state(cpu_state)
            if cuda_state is not None:
                torch.cuda.set_rng_state(cuda_state, device)
            fresh = {n: b.clone() for n, b in buffers.items()}
            preds = functional_call(model, {**fresh, **overrides}, (x,))
            out = task_set.losses(preds, targets)
            assert isinstance(out, torch.Tensor)
            return out

        with torch.enable_grad():
            before = losses_with({})
            m = before.shape[0]
            eye = torch.eye(m, dtype=before.dtype, device=before.device)
            grads = torch.autograd.grad(
                before, shared, grad_outputs=eye, allow_unused=True, is_grads_batched=True
            )
        base = before.detach()
        _check_losses(base, names, "loss")
        columns = []
        with torch.no_grad():
            for j in range(m):
                stepped = {
                    param_names[id(p)]: p.detach() - step * g[j]
                    for p, g in zip(shared, grads, strict=True)
                    if g is not None
                }
                after = losses_with(stepped).detach()
                _check_losses(after, names, f"lookahead loss after a step on {names[j]!r}")
                columns.append(after)
    after_all = np.stack([to_numpy(c) for c in columns], axis=1)  # (i, j) = L_i after j
    base_np = to_numpy(base)
    zero = base_np == 0.0
    ratio = after_all / np.where(zero, 1.0, base_np)[:, None]
    affinity = np.where(zero[:, None], 0.0, 1.0 - ratio)
    return (affinity, zero) if return_mask else affinity


def _shared_parameters(model: nn.Module, params: Iterable[Tensor] | None) -> list[Tensor]:
    if params is None:
        shared = getattr(model, "shared_parameters", None)
        if shared is None:
            raise TypeError(
                "params is required: model has no shared_parameters() method; pass the "
                "shared parameters to step"
            )
        params = shared()
    out = [p for p in params if p.requires_grad]
    if not out:
        raise ValueError("params must contain at least one tensor that requires grad")
    return out


def _check_losses(losses: Tensor, names: Sequence[str], what: str) -> None:
    values = to_numpy(losses)
    for i, v in enumerate(values):
        if not np.isfinite(v):
            hint = " (lower lr)" if what.startswith("lookahead") else ""
            raise ValueError(f"task {names[i]!r}: {what} is {v}; expected a finite value{hint}")
        if v < 0:
            raise ValueError(
                f"task {names[i]!r}: {what} is {v}; lookahead affinity is a ratio of losses "
                "and needs non-negative losses"
            )
