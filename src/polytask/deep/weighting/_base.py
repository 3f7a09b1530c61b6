"""The loss-weighting contract shared by every method, and its input checks.

A *loss weighting* turns the vector of task losses ``(n_tasks,)`` into the scalar
objective whose backward pass gives the model gradient. Its state (previous losses,
moving averages, logits, step counters) lives in registered buffers or parameters, so
``state_dict()`` captures it for checkpoint and resume.

One training step with a weighting ``method`` (the trainer owns this loop)::

    losses = task_set.losses(preds, targets)                 # (n_tasks,)
    gramian = task_gramian(losses, shared) if method.requires_grad_norms else None
    total = method(losses, gramian=gramian)                  # pure: no state change
    optimizer.zero_grad(); total.backward(); optimizer.step()
    after = ... if method.requires_losses_after else None    # same batch, no_grad
    method.update(losses.detach(), gramian=gramian, losses_after=after)
    ...
    method.update_epoch()                                    # once, at the end of an epoch

``forward`` and ``weights`` never change the state; ``update`` (once per optimizer
step, after it), ``update_epoch`` (once per epoch) and ``reset`` are the only methods
that do. A method with learnable parameters (``UncertaintyWeighting``) must have
``method.parameters()`` passed to the model's optimizer; every other method updates its
own state inside ``update``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from polytask.deep.backward import task_gramian as _engine_task_gramian

__all__ = ["LossWeighting", "task_gramian"]


def _parse_tasks(tasks: int | Sequence[str]) -> tuple[int, tuple[str, ...] | None]:
    """Return ``(n_tasks, task_names)`` from an int or a sequence of task names."""
    if isinstance(tasks, bool):
        raise TypeError(f"tasks must be an int >= 1 or a sequence of task names, got {tasks!r}")
    if isinstance(tasks, int):
        if tasks < 1:
            raise ValueError(f"tasks must be >= 1 (the number of tasks), got {tasks}")
        return tasks, None
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise TypeError(
            f"tasks must be an int >= 1 or a sequence of task names, got {type(tasks).__name__}"
        )
    names = tuple(tasks)
    if len(names) == 0:
        raise ValueError("tasks must name at least one task, got an empty sequence")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise TypeError(f"tasks[{i}] must be a non-empty task name (str), got {name!r}")
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"tasks must have unique names, got duplicates {duplicates}")
    return len(names), names


def _check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Validate a finite real hyperparameter in an interval and return it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    x = float(value)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    bad = not math.isfinite(x)
    if low is not None:
        bad = bad or x < low or (low_open and x == low)
    if high is not None:
        bad = bad or x > high or (high_open and x == high)
    if bad:
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return x


class LossWeighting(nn.Module, ABC):
    """Base class of the loss weightings: task losses ``(n_tasks,)`` to one scalar.

    Subclasses implement ``_weights`` (and, when the objective is not the weighted sum
    ``Σ_i w_i L_i``, ``_objective``), plus ``_update``/``reset`` when they have state.
    ``weights(losses)`` always returns the coefficients ``w`` of the task-loss gradients
    in the model gradient, ``∇ forward(losses) = Σ_i w_i ∇L_i``, so the weights of all
    methods read the same way in logs.

    Parameters
    ----------
    tasks : int or sequence of str
        The number of tasks ``n_tasks``, or the task names in the order of the loss
        vector (the names are then used in error messages).

    Attributes
    ----------
    requires_grad_norms : bool
        Class attribute. ``True`` when the method needs the ``(n_tasks, n_tasks)``
        Gramian ``G[i, j] = <∇L_i, ∇L_j>`` of the task-loss gradients with respect to
        the shared parameters (see :func:`task_gramian`); it is passed as ``gramian=``.
    requires_losses_after : bool
        Class attribute. ``True`` when ``update`` needs ``losses_after``, the task
        losses recomputed on the same batch after the optimizer step.
    n_tasks : int
        The number of tasks.
    task_names : tuple of str or None
        The task names, when ``tasks`` named them.

    Examples
    --------
    A new method only says how it weighs the (detached) losses:

    >>> import torch
    >>> class InverseLoss(LossWeighting):
    ...     def _weights(self, losses, gramian):
    ...         return 1.0 / losses
    >>> method = InverseLoss(["a", "b"])
    >>> losses = torch.tensor([2.0, 4.0], requires_grad=True)
    >>> method(losses).backward()            # weights held constant in the backward
    >>> losses.grad.tolist()
    [0.5, 0.25]
    """

    requires_grad_norms: ClassVar[bool] = False
    requires_losses_after: ClassVar[bool] = False

    def __init__(self, tasks: int | Sequence[str]) -> None:
        super().__init__()
        self.n_tasks, self.task_names = _parse_tasks(tasks)

    # ------------------------------------------------------------------ checks
    def _task(self, i: int) -> str:
        """Name task ``i`` for an error message."""
        if self.task_names is None:
            return f"task {i}"
        return f"task {i} ({self.task_names[i]!r})"

    def _check_losses(self, losses: object, name: str = "losses") -> Tensor:
        """Check a ``(n_tasks,)`` floating tensor of finite losses and return it."""
        if not isinstance(losses, Tensor):
            raise TypeError(
                f"{name} must be a torch.Tensor of shape ({self.n_tasks},), "
                f"got {type(losses).__name__}"
            )
        if not losses.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {losses.dtype}")
        if losses.shape != (self.n_tasks,):
            raise ValueError(
                f"{name} must have shape ({self.n_tasks},), one loss per task, "
                f"got shape {tuple(losses.shape)}"
            )
        finite = torch.isfinite(losses.detach())
        if not bool(finite.all()):
            i = int((~finite).nonzero()[0, 0])
            raise ValueError(
                f"{name}[{i}] for {self._task(i)} is {float(losses[i])}; expected a finite loss"
            )
        return losses

    def _check_positive_losses(self, losses: Tensor, name: str = "losses", *,
                               allow_zero: bool = False) -> None:
        """Raise if a (checked) loss is not strictly positive (negative: ``allow_zero``)."""
        ok = losses.detach() >= 0 if allow_zero else losses.detach() > 0
        if not bool(ok.all()):
            i = int((~ok).nonzero()[0, 0])
            raise ValueError(
                f"{name}[{i}] for {self._task(i)} is {float(losses[i])}; "
                f"{type(self).__name__} takes ratios or logarithms of the losses, "
                f"so every loss must be {'>=' if allow_zero else '>'} 0"
            )

    def _check_gramian(self, gramian: object, *, required: bool) -> Tensor | None:
        """Check an optional ``(n_tasks, n_tasks)`` finite Gramian."""
        if gramian is None:
            if required:
                raise ValueError(
                    f"gramian is required by {type(self).__name__} "
                    "(requires_grad_norms=True): pass the (n_tasks, n_tasks) Gramian of "
                    "the task-loss gradients w.r.t. the shared parameters, e.g. "
                    "task_gramian(losses, shared_parameters)"
                )
            return None
        if not isinstance(gramian, Tensor):
            raise TypeError(f"gramian must be a torch.Tensor, got {type(gramian).__name__}")
        m = self.n_tasks
        if gramian.shape != (m, m):
            raise ValueError(
                f"gramian must have shape ({m}, {m}), got shape {tuple(gramian.shape)}"
            )
        diag = gramian.detach().diagonal()
        if not bool(torch.isfinite(gramian.detach()).all()):
            raise ValueError("gramian must contain only finite values")
        bad = diag < 0
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"gramian[{i}, {i}] for {self._task(i)} is {float(diag[i])}; a Gramian "
                "has a non-negative diagonal (squared gradient norms)"
            )
        return gramian.detach()

    # ------------------------------------------------------------- interface
    def forward(self, losses: Tensor, *, gramian: Tensor | None = None) -> Tensor:
        """Return the scalar objective to backpropagate; never changes the state.

        Parameters
        ----------
        losses : Tensor of shape (n_tasks,)
            The task losses of the current step, still attached to the graph.
        gramian : Tensor of shape (n_tasks, n_tasks), optional
            Gramian of the task-loss gradients w.r.t. the shared parameters; required
            when ``requires_grad_norms`` is ``True``, ignored otherwise.

        Returns
        -------
        Tensor
            A 0-dim tensor whose gradient is ``Σ_i w_i ∇L_i`` with ``w = weights(losses)``.

        Raises
        ------
        TypeError
            If ``losses`` is not a floating-point tensor.
        ValueError
            If ``losses`` has the wrong shape or a non-finite entry (the message names
            the task), or a required ``gramian`` is missing or malformed.
        """
        losses = self._check_losses(losses)
        gram = self._check_gramian(gramian, required=self.requires_grad_norms)
        return self._objective(losses, gram)

    def weights(self, losses: Tensor, *, gramian: Tensor | None = None) -> Tensor:
        """Return the current task weights, detached, for logging.

        Parameters
        ----------
        losses : Tensor of shape (n_tasks,)
            The task losses of the current step.
        gramian : Tensor of shape (n_tasks, n_tasks), optional
            As in :meth:`forward`.

        Returns
        -------
        Tensor of shape (n_tasks,)
            ``w`` such that ``∇ forward(losses) = Σ_i w_i ∇L_i``.
        """
        losses = self._check_losses(losses)
        gram = self._check_gramian(gramian, required=self.requires_grad_norms)
        with torch.no_grad():
            return self._weights(losses.detach(), gram).detach().to(losses).clone()

    def update(
        self, losses: Tensor, *, gramian: Tensor | None = None, losses_after: Tensor | None = None
    ) -> None:
        """Advance the state by one optimizer step; call it after ``optimizer.step()``.

        Parameters
        ----------
        losses : Tensor of shape (n_tasks,)
            The task losses that were passed to :meth:`forward` at this step.
        gramian : Tensor of shape (n_tasks, n_tasks), optional
            The Gramian passed to :meth:`forward`; required when
            ``requires_grad_norms`` is ``True``.
        losses_after : Tensor of shape (n_tasks,), optional
            The task losses on the same batch after the optimizer step; required when
            ``requires_losses_after`` is ``True``, ignored otherwise.

        Raises
        ------
        ValueError
            On malformed inputs, naming the task.
        """
        losses = self._check_losses(losses)
        gram = self._check_gramian(gramian, required=self.requires_grad_norms)
        after: Tensor | None = None
        if self.requires_losses_after:
            if losses_after is None:
                raise ValueError(
                    f"losses_after is required by {type(self).__name__}.update "
                    "(requires_losses_after=True): pass the task losses recomputed on the "
                    "same batch after the optimizer step"
                )
            after = self._check_losses(losses_after, "losses_after").detach()
        with torch.no_grad():
            self._update(losses.detach(), gram, after)

    def update_epoch(self, mean_losses: Tensor | None = None) -> None:
        """Close an epoch; call it once at the end of every epoch.

        Only epoch-level methods (``DWA``) use it; for the others it checks its input
        and does nothing.

        Parameters
        ----------
        mean_losses : Tensor of shape (n_tasks,), optional
            The epoch's mean task losses. ``None`` uses the mean of the losses passed to
            :meth:`update` since the last call, for the methods that record them.
        """
        if mean_losses is not None:
            self._check_losses(mean_losses, "mean_losses")

    def reset(self) -> None:
        """Restore the initial state (stateless methods: nothing to do)."""

    # ------------------------------------------------------- implementation
    @abstractmethod
    def _weights(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        """Return the ``(n_tasks,)`` weights for checked, detached ``losses``."""

    def _objective(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        """Return ``Σ_i w_i L_i`` with the weights held constant."""
        w = self._weights(losses.detach(), gramian).detach().to(losses)
        return (w * losses).sum()

    def _update(self, losses: Tensor, gramian: Tensor | None, losses_after: Tensor | None) -> None:
        """Advance the state (inputs checked and detached; no autograd)."""

    def extra_repr(self) -> str:
        return f"n_tasks={self.n_tasks}"


def task_gramian(losses: Tensor, parameters: Iterable[Tensor]) -> Tensor:
    """Gramian of the task-loss gradients with respect to some (shared) parameters.

    ``G[i, j] = <∇_θ L_i, ∇_θ L_j>`` where ``θ`` concatenates ``parameters``. This is
    :func:`polytask.deep.backward.task_gramian` (blockwise, without forming the
    Jacobian) with the graph kept (``retain_graph=True``), so the objective can be
    backpropagated afterwards.

    Parameters
    ----------
    losses : Tensor of shape (n_tasks,)
        The task losses, attached to the graph.
    parameters : iterable of Tensor
        The parameters to differentiate, e.g. the last shared layer for GradNorm. A
        parameter that a task does not use contributes zeros.

    Returns
    -------
    Tensor of shape (n_tasks, n_tasks)
        The symmetric positive semi-definite Gramian (detached).

    Raises
    ------
    ValueError
        If ``losses`` is not 1-dimensional, not finite or not attached to the graph, or
        no parameter requires a gradient.
    TypeError
        If ``losses`` is not a floating-point tensor or ``parameters`` holds a
        non-tensor.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> losses = torch.stack([w.sum(), (w ** 2).sum()])   # gradients (1, 1), (2, 4)
    >>> task_gramian(losses, [w]).tolist()
    [[2.0, 6.0], [6.0, 20.0]]
    """
    if not isinstance(losses, Tensor) or losses.ndim != 1 or losses.numel() == 0:
        raise ValueError("losses must be a non-empty 1-dimensional tensor of task losses")
    return _engine_task_gramian(losses, parameters, retain_graph=True)
