"""One optimizer step of multi-task training: task losses to one parameter update.

The step is written once for every kind of *method*:

- a loss weighting (:class:`~polytask.deep.weighting.LossWeighting`) turns the task
  losses into one objective, backpropagated as is;
- a Gramian weighting (:class:`~polytask.deep.aggregation.Weighting`, or a
  :class:`~polytask.deep.aggregation.GramianAggregator`, or GradVac) turns the task
  Gramian ``G = J Jᵀ`` into weights ``w`` and the step backpropagates ``Σ_t w_t L_t``,
  whose gradient with respect to the shared parameters is exactly the aggregated
  update ``Jᵀ w`` (and, in representation mode, ``(∂z/∂θ)ᵀ J_zᵀ w``);
- any other :class:`~polytask.deep.aggregation.Aggregator` gets the Jacobian itself and
  its output is written into the shared parameters' ``.grad``.

In representation mode, when a plain shared-bottom model reads its features with linear
heads only, the Gramian comes from the heads' output cotangents
(:func:`~polytask.deep._head_gramian.linear_head_gramian`), with the heads stacked and the
losses vectorised, instead of from the per-task gradients at the representation.

With a gradient method (the last two kinds) the task-specific parameters get the
gradient of the unweighted sum of the task losses (each task's own parameters follow
its own loss), as in MGDA, PCGrad and the other aggregators' papers; a loss weighting
weights them like everything else.

Every task loss enters through a *surrogate* ``s_t = c_t ℓ_t − c_t ℓ_t.detach() + v_t``:
its value ``v_t`` is the task's loss over the global batch (what the method reads), and
its gradient is ``c_t`` times the gradient of this rank's share ``ℓ_t`` of that loss
(``c_t`` is the task weight times the auxiliary schedule, 0 for a task that is off its
period or has no label in the batch). This one construction handles missing labels,
periods, auxiliary weights and DDP at once.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from polytask.tasks import TaskSet

from ._backward_impl import grad_like
from ._distributed import DistContext
from ._head_gramian import linear_head_gramian
from ._setup import one_objective, structured_heads, uses_features
from .aggregation import Aggregator
from .backward import per_task_gradients

MethodKind = Literal["loss", "gramian", "gradvac", "jacobian"]


class TrainingError(ValueError):
    """Training cannot go on: a loss or gradient is not finite.

    The message names the task and the step. The last checkpoint written before the
    failure is left intact. A subclass of ``ValueError``.

    Examples
    --------
    >>> try:
    ...     raise TrainingError("non-finite loss nan for task 'b' at step 5")
    ... except ValueError as exc:
    ...     print(exc)
    non-finite loss nan for task 'b' at step 5
    """


def method_kind(method: object) -> MethodKind:
    """Classify a training method; raise a TypeError for anything else."""
    from polytask.deep.aggregation import Aggregator, GradVac, GramianAggregator, Weighting
    from polytask.deep.aggregation._gradvac import GradVacWeighting
    from polytask.deep.weighting import LossWeighting

    if isinstance(method, LossWeighting):
        return "loss"
    if isinstance(method, GradVac | GradVacWeighting):
        return "gradvac"
    if isinstance(method, GramianAggregator | Weighting):
        return "gramian"
    if isinstance(method, Aggregator):
        return "jacobian"
    raise TypeError(
        "method must be a loss weighting (polytask.deep.weighting), an aggregator or a "
        f"Gramian weighting (polytask.deep.aggregation), or None; got {type(method).__name__}"
    )


class _GramianRecorder(Aggregator):
    """A Jacobian aggregator that also keeps ``J Jᵀ`` of the Jacobian it receives.

    ``mtl_backward`` returns no Gramian for a Jacobian aggregator; this wrapper gives a
    gradient-similarity tracker the Gramian of the Jacobian the engine built anyway.
    """

    def __init__(self, inner: Any, sink: list[Tensor]) -> None:
        self._inner, self._sink = inner, sink
        self._freeze()

    def __call__(self, jacobian: Tensor) -> Tensor:
        flat = jacobian.detach()
        self._sink.append(flat @ flat.T)
        out: Tensor = self._inner(jacobian)
        return out


@dataclass
class StepResult:
    """What one step reports.

    ``losses`` and ``counts`` are the global task losses and label counts, ``weights``
    the method's task weights (``None`` for a Jacobian aggregator), ``gramian`` the
    task Gramian when the step computed one (e.g. for a gradient-similarity tracker),
    and ``skipped`` whether no task was active (no update).
    """

    losses: Tensor
    counts: Tensor
    weights: Tensor | None
    skipped: bool
    gramian: Tensor | None = None


class StepEngine:
    """Run training steps for one model, task set, method and optimizer.

    In one process (without a ``GradScaler``) the backward pass is
    :func:`polytask.deep.backward.mtl_backward`. Under DDP, or with fp16 autocast, the
    step assembles the same update from :func:`~polytask.deep.backward.per_task_gradients`
    itself, because the per-task Jacobian (parameter mode) or Gramian (representation
    mode) must be summed across ranks before the method acts, and the objective scaled
    by the ``GradScaler``.

    With ``use_features`` (an architecture with ``encode``/``decode`` and trainable
    shared parameters) the features are passed to ``mtl_backward`` in parameter mode
    too: the per-task cotangents at the representation are then recorded in one pass
    through the heads and the shared part runs one batched vector-Jacobian product (the
    engine's fast path), instead of one backward pass per task from its loss through
    the shared part.
    With ``want_gramian`` (a gradient-similarity tracker is attached) every step also
    reports the task Gramian: free for Gramian methods and Jacobian aggregators, one
    per-task gradient pass for a loss weighting that does not need it.

    State that must survive a checkpoint: the last observed loss of every task (a task
    with no label in a batch shows its last observed loss to the method, so stateful
    weightings see a continuous signal; 1.0 before its first label) and GradVac's
    similarity targets.
    """

    _force_explicit = False  # tests compare the two paths in one process
    _structured_heads = True  # tests compare the structured Gramian with J Jᵀ

    def __init__(
        self,
        *,
        model: nn.Module,
        forward: nn.Module,
        tasks: TaskSet,
        method: Any,
        kind: MethodKind,
        representation: bool,
        optimizer: torch.optim.Optimizer,
        scaler: Any,
        amp_dtype: torch.dtype | None,
        device: torch.device,
        dist: DistContext,
        grad_clip_norm: float | None,
        want_gramian: bool = False,
    ) -> None:
        self.model, self.forward, self.tasks = model, forward, tasks
        self.method, self.kind, self.representation = method, kind, representation
        self.optimizer, self.scaler, self.amp_dtype = optimizer, scaler, amp_dtype
        self.device, self.dist, self.grad_clip_norm = device, dist, grad_clip_norm
        self.want_gramian = want_gramian
        arch: Any = model
        trainable = [p for p in model.parameters() if p.requires_grad]
        shared = [p for p in arch.shared_parameters() if p.requires_grad]
        # Without shared parameters (soft sharing), methods combine all the gradients.
        self.shared = shared or trainable
        shared_ids = {id(p) for p in self.shared}
        # Everything else is task-specific: heads, towers, experts of one task.
        self.heads = [p for p in trainable if id(p) not in shared_ids]
        self.use_features = uses_features(model, representation)
        self.weighting = getattr(method, "weighting", method)
        params = inspect.signature(self.weighting.__call__).parameters if kind != "loss" else {}
        self._pass_losses = "losses" in params
        layers = self._head_layers(model, kind, method, representation, want_gramian)
        arch_names: Any = getattr(model, "task_names", ())
        self.head_weights = None if layers is None else {
            t: layer.weight for t, layer in zip(arch_names, layers, strict=True)}
        self.grouped = self.stacks_heads(model, kind, method, representation, want_gramian)
        self.explicit = dist.enabled or scaler is not None or self._force_explicit \
            or self.head_weights is not None
        m = len(tasks)
        self.last_losses = torch.ones(m, dtype=torch.float64)
        self.gradvac_targets = torch.zeros(m, m, dtype=torch.float64)

    @classmethod
    def _head_layers(cls, model: nn.Module, kind: MethodKind, method: Any,
                     representation: bool, want_gramian: bool) -> list[nn.Linear] | None:
        """The heads' layers when the Gramian comes from their output cotangents."""
        if not cls._structured_heads:
            return None
        return structured_heads(model, kind, method, representation, want_gramian)

    @classmethod
    def stacks_heads(cls, model: nn.Module, kind: MethodKind, method: Any,
                     representation: bool, want_gramian: bool) -> bool:
        """Whether the step may stack the heads and compute the losses in vectorised
        groups: it backpropagates one objective, or takes the Gramian from the heads'
        output cotangents, so nothing differentiates the task losses one by one."""
        return one_objective(kind, method, want_gramian) or cls._head_layers(
            model, kind, method, representation, want_gramian) is not None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Tensor]:
        return {"last_losses": self.last_losses.clone(),
                "gradvac_targets": self.gradvac_targets.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.last_losses = state["last_losses"].clone().to(torch.float64)
        self.gradvac_targets = state["gradvac_targets"].clone().to(torch.float64)

    # ------------------------------------------------------------------ helpers
    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _task_losses(self, preds: dict[str, Tensor], targets: dict[str, Tensor]
                     ) -> tuple[Tensor, Tensor]:
        missing = [t for t in self.tasks.names if t not in preds]
        if missing:
            raise ValueError(f"the model has no output for task(s) {missing}; its outputs "
                             f"are {list(preds)}")
        chosen = {t: preds[t].float() for t in self.tasks.names}
        out = self.tasks.losses(chosen, targets, return_counts=True, grouped=self.grouped)
        assert isinstance(out, tuple)
        losses, counts = out
        return losses, counts.to(losses.dtype)

    def _global(self, losses: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Local share of the global mean losses, global values and global counts."""
        counts_g = self.dist.all_reduce_sum(counts)
        share = losses * counts / counts_g.clamp(min=1.0)
        return share, self.dist.all_reduce_sum(share.detach()), counts_g

    def _gradvac_state(self) -> Any:
        from polytask.deep.aggregation import GradVacState

        return GradVacState(self.gradvac_targets.clone())

    # ------------------------------------------------------------------ step
    def step(self, x: Any, targets: dict[str, Tensor], step: int, scales: Tensor) -> StepResult:
        """One optimizer step on this rank's batch; ``scales`` are the tasks' ``c_t``."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            feats, preds, reg = self.forward(x)
        losses, counts = self._task_losses(preds, targets)
        share, values, counts_g = self._global(losses, counts)
        self._check_finite(values, step)
        observed = counts_g > 0
        self.last_losses = torch.where(observed.cpu(), values.detach().cpu().double(),
                                       self.last_losses)
        shown = self.last_losses.to(values)
        scales = scales.to(values) * observed.to(values)
        if not bool((scales > 0).any()):
            return StepResult(values.detach(), counts_g, None, skipped=True)
        part = share * scales  # this rank's share of c_t L_t
        surrogate = part * self.dist.world_size
        surrogate = surrogate - surrogate.detach() + shown
        reg = reg.float()
        if self.explicit:
            weights, gram = self._explicit_backward(part, surrogate, reg, feats, preds)
        else:
            if reg.requires_grad:
                reg.backward()
            weights, gram = self._engine_backward(surrogate, feats)
        self._optimizer_step(step)
        if self.kind == "loss":
            after = self._losses_after(x, targets, counts, counts_g, shown) \
                if self.method.requires_losses_after else None
            self.method.update(shown, gramian=gram, losses_after=after)
        return StepResult(values.detach(), counts_g, weights, skipped=False, gramian=gram)

    def _engine_backward(self, surrogate: Tensor, feats: tuple[Tensor, ...]
                         ) -> tuple[Tensor | None, Tensor | None]:
        """One process: the library's backward engine does the whole pass."""
        from polytask.deep.backward import mtl_backward

        seen: list[Tensor] = []  # the Gramian of a Jacobian aggregator's input
        method = self.method
        if self.want_gramian and self.kind == "jacobian":
            method = _GramianRecorder(self.method, seen)
        result = mtl_backward(
            surrogate, self.shared, self.heads, method=method,
            mode="representation" if self.representation else "parameter",
            features=list(feats) if self.use_features else None,
            state=self._gradvac_state() if self.kind == "gradvac" else None,
            skip_zero_gradient_tasks=self.kind == "gramian",
            return_gramian=self.want_gramian,
            task_names=self.tasks.names)
        if self.kind == "gradvac":
            self.gradvac_targets = result.state.targets.detach().cpu().double()
        return result.weights, seen[0] if seen else result.gramian

    # ------------------------------------------------------------------ explicit path
    def _gramian(self, part: Tensor, feats: tuple[Tensor, ...], preds: dict[str, Tensor]
                 ) -> Tensor:
        """Global task Gramian: of the summed Jacobian, or the summed feature Gramians
        (from the heads' output cotangents when the heads are linear)."""
        heads = self.head_weights
        if self.representation and heads is not None and len(feats) == 1 \
                and feats[0].shape[-1] == next(iter(heads.values())).shape[1]:
            outs = [preds[t] for t in self.tasks.names]
            cots = torch.autograd.grad(part.sum(), outs, retain_graph=True, allow_unused=True)
            gram = linear_head_gramian(cots, [heads[t] for t in self.tasks.names])
            return self.dist.all_reduce_sum(gram)
        if self.representation:
            jac = per_task_gradients(part, feats, retain_graph=True, strategy="auto")
            return self.dist.all_reduce_sum(jac @ jac.T)
        jac = self._shared_jacobian(part)
        return jac @ jac.T

    def _shared_jacobian(self, part: Tensor) -> Tensor:
        """Per-task gradients of the shared parameters, summed across ranks, (m, P).

        Each task runs its backward pass from its own loss (``strategy="auto"``: one pass
        per task through its own head, since the losses are stacked); the sum over
        ranks comes before any aggregation, so N ranks see the global Jacobian.
        """
        return self.dist.all_reduce_sum(
            per_task_gradients(part, self.shared, retain_graph=True, strategy="auto"))

    def _weights(self, gram: Tensor, shown: Tensor) -> Tensor:
        if self.kind == "gradvac":
            w, new = self.weighting(gram, self._gradvac_state())
            self.gradvac_targets = new.targets.detach().cpu().double()
            return w.detach()
        # tasks with an exactly zero gradient (off their period, no label) are left out
        idx = (gram.diagonal() > 0).nonzero().flatten()
        w = torch.zeros(len(self.tasks), dtype=gram.dtype, device=gram.device)
        if idx.numel() == 0:
            return w
        sub = gram[idx][:, idx]
        w_sub = (self.weighting(sub, losses=shown[idx].to(sub)) if self._pass_losses
                 else self.weighting(sub))
        w[idx] = w_sub.detach().to(w)
        return w

    def _explicit_backward(self, part: Tensor, surrogate: Tensor, reg: Tensor,
                           feats: tuple[Tensor, ...], preds: dict[str, Tensor]
                           ) -> tuple[Tensor | None, Tensor | None]:
        gram: Tensor | None = None
        if self.kind == "loss":
            if self.method.requires_grad_norms or self.want_gramian:
                gram = self._gramian(part, feats, preds)
            weights = self.method.weights(surrogate.detach(), gramian=gram)
            self._backward(self.method(surrogate, gramian=gram) + reg)
            return weights, gram
        head_grads = self._head_grads(surrogate.sum() + reg)
        if self.kind == "jacobian":
            jac = self._jacobian_backward(part, reg, feats)
            self._set_head_grads(head_grads)
            return None, (jac @ jac.T if self.want_gramian else None)
        gram = self._gramian(part, feats, preds)
        weights = self._weights(gram, surrogate.detach())
        self._backward((weights.to(surrogate) * surrogate).sum() + reg)
        self._set_head_grads(head_grads)  # replaces the weighted head gradients
        return weights, gram

    def _head_grads(self, objective: Tensor) -> list[Tensor | None]:
        """Task-specific parameters follow the unweighted sum of the task losses."""
        if not self.heads:
            return []
        grads = torch.autograd.grad(objective, self.heads, retain_graph=True,
                                    allow_unused=True)
        world = self.dist.world_size
        return [None if g is None else self.dist.all_reduce_sum(g) / world for g in grads]

    def _set_head_grads(self, grads: list[Tensor | None]) -> None:
        scale = self._scale()
        for p, g in zip(self.heads, grads, strict=True):
            p.grad = None if g is None else grad_like(p, g * scale)

    def _jacobian_backward(self, part: Tensor, reg: Tensor, feats: tuple[Tensor, ...]
                           ) -> Tensor:
        """A Jacobian aggregator: its update is written into the shared ``.grad``.

        Returns the (global) Jacobian the aggregator received.
        """
        scale = self._scale()
        if self.representation:  # single process only (checked by the trainer)
            jac = per_task_gradients(part, feats, retain_graph=True, strategy="auto")
            d = self.method(jac) * scale
            cotangents, offset = [], 0
            for f in feats:
                cotangents.append(d[offset: offset + f.numel()].reshape(f.shape).to(f.dtype))
                offset += f.numel()
            torch.autograd.backward(list(feats), cotangents, retain_graph=True)
        else:
            jac = self._shared_jacobian(part)
            d = self.method(jac) * scale
            offset = 0
            for p in self.shared:
                g = d[offset: offset + p.numel()]
                offset += p.numel()
                p.grad = grad_like(p, g) if p.grad is None else p.grad + g.reshape(p.shape)
        if reg.requires_grad:  # the same on every rank: no reduction needed
            grads = torch.autograd.grad(reg * scale, self.shared, allow_unused=True)
            for p, g in zip(self.shared, grads, strict=True):
                if g is not None:
                    p.grad = grad_like(p, g) if p.grad is None else p.grad + g
        return jac

    # ------------------------------------------------------------------ update
    def _scale(self) -> float:
        """The ``GradScaler``'s current factor (1 without one) for gradients written
        directly into ``.grad``; scaling a unit tensor also initialises the scaler."""
        if self.scaler is None:
            return 1.0
        return float(self.scaler.scale(torch.ones((), device=self.device)))

    def _backward(self, objective: Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(objective).backward()
        else:
            objective.backward()

    def _optimizer_step(self, step: int) -> None:
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.grad_clip_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip_norm)
            if not torch.isfinite(norm) and self.scaler is None:
                raise TrainingError(f"non-finite gradient norm {float(norm)} at step {step}; "
                                    "lower the learning rate or check the data")
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    @torch.no_grad()
    def _losses_after(self, x: Any, targets: dict[str, Tensor], counts: Tensor,
                      counts_g: Tensor, shown: Tensor) -> Tensor:
        forward = getattr(self.forward, "module", self.forward)  # not through DDP's hooks
        with self._autocast():
            _, preds, _ = forward(x)  # the step's own forward: stacked heads where it has them
        losses, _ = self._task_losses(preds, targets)
        after = self.dist.all_reduce_sum(losses * counts / counts_g.clamp(min=1.0))
        return torch.where(counts_g > 0, after, shown)

    def _check_finite(self, values: Tensor, step: int) -> None:
        bad = ~torch.isfinite(values)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise TrainingError(
                f"non-finite loss {float(values[i])} for task {self.tasks.names[i]!r} at step "
                f"{step}; training stopped (the last checkpoint is intact). Lower the "
                "learning rate, enable gradient clipping, or check the task's labels."
            )


__all__ = ["MethodKind", "StepEngine", "StepResult", "TrainingError", "method_kind"]
