"""The training loop of deep multi-task learning.

:class:`Trainer` owns the loop, never the maths: the model, the method (a loss
weighting or a gradient aggregator), the optimizer and the data are passed in. It
handles joint data with missing labels and per-task data with task sampling, per-task
learning rates and update periods, auxiliary tasks, model selection on the main tasks,
atomic checkpoints with exact resume, logs, mixed precision and DDP.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import torch
from torch import nn

from polytask.tasks import Task, TaskSet, UndefinedPolicy

from ._batches import Mixing, make_source
from ._distributed import distributed_context, wrap_ddp
from ._evaluation import evaluate_model
from ._logging import History
from ._sampling import SAMPLING_STRATEGIES, Sampling
from ._setup import (
    ForwardModule,
    OptimizerArg,
    Schedule,
    amp_settings,
    as_taskset,
    build_optimizer,
    check_method,
    check_model,
    check_schedule,
    resolve_device,
    task_param_groups,
    uses_features,
)
from ._step import StepEngine, TrainingError, method_kind
from ._stl import STLResult, fit_single_tasks, train_single_task

logger = logging.getLogger(__name__)

class Trainer:
    """Train a deep multi-task model: ``fit(model, tasks, method, optimizer, train, val)``.

    Parameters
    ----------
    max_epochs : int, default=10
        Number of epochs (passes over the joint data, or ``steps_per_epoch`` steps).
    max_steps : int, optional
        Stop after this many optimizer steps (possibly inside an epoch).
    batch_size : int, default=32
        Global batch size (split across ranks under DDP).
    eval_batch_size : int, optional
        Batch size of evaluation; default ``batch_size``.
    steps_per_epoch : int, optional
        Steps per epoch for per-task data; default ``ceil(n_examples / batch_size)``.
    sampling : {"proportional", "uniform", "temperature", "round_robin"}, default="proportional"
        How per-task data choose the task of each batch (see
        :func:`~polytask.deep._sampling.task_probabilities`). Ignored for joint data.
    temperature : float, default=2.0
        ``τ`` of temperature sampling, ``p_t ∝ n_t^{1/τ}``.
    task_mixing : {"batch", "example"}, default="batch"
        Per-task data: one task per batch (the other tasks have no label that step), or
        one task drawn per example (block-missing batches; every method sees all tasks).
    mode : {"parameter", "representation"}, default="parameter"
        Where gradient methods take the per-task gradients: w.r.t. the shared parameters,
        or w.r.t. the shared representation ``model.encode(x)`` (faster, MGDA-UB style).
        In parameter mode an architecture with ``encode``/``decode``
        (``supports_representation``) is run as ``decode(encode(x), x)`` and its
        features are handed to :func:`~polytask.deep.backward.mtl_backward`, whose fast
        path then gives the same parameter-level update with one pass through the
        heads and one batched pass through the shared part (a subclass that overrides
        ``forward`` alone is run through its ``forward``, without this shortcut).
    grad_clip_norm : float, optional
        Clip the global gradient norm to this value.
    aux_schedule : {"constant", "linear", "cosine"}, callable or mapping, default="constant"
        Multiplier of the auxiliary tasks' weights over training progress ``p ∈ [0, 1)``:
        1, ``1 - p``, ``(1 + cos πp)/2``, or ``f(p) >= 0``. A mapping ``{task: schedule}``
        applies to the tasks it names (main or auxiliary) and no other.
    patience : int, optional
        Early stopping: stop after this many epochs without a better validation score.
    restore_best : bool, default=True
        With validation data, load the best epoch's weights into the model at the end.
    run_dir : path-like, optional
        Run directory for ``config.json``, ``metrics.jsonl``, ``checkpoint.pt`` and
        TensorBoard events; ``None`` writes nothing.
    checkpoint_every : int, default=1
        Write a checkpoint every this many epochs (and after the last one).
    resume : bool, default=True
        Continue from ``run_dir/checkpoint.pt`` when it exists.
    seed : int or None, default=0
        Seed of all randomness (shuffling, task sampling, dropout through a forked and
        seeded global RNG); ``None`` draws one, saved in the checkpoint.
    device : str or torch.device, optional
        Training device; default: where the model is.
    mixed_precision : bool or {"fp16", "bf16"}, default=False
        Autocast (and a ``GradScaler`` for fp16) on CUDA; a no-op on CPU.
    progress : bool, default=True
        Show a tqdm progress bar.
    tensorboard : bool, default=True
        Write TensorBoard events when ``tensorboard`` is installed (skipped otherwise).
    gradient_tracker : GradientSimilarityTracker, optional
        A :class:`~polytask.relate.GradientSimilarityTracker` (or any object with
        ``update(gramian)``, and ``task_names`` in the order of the tasks) that
        receives the ``(n_tasks, n_tasks)`` task Gramian of every optimizer step, in
        the trainer's ``mode``. Gramian methods, GradVac, Jacobian aggregators and loss
        weightings that use gradient norms (GradNorm, DB-MTL) already compute it, so
        tracking costs no extra backward pass; another loss weighting costs one
        per-task gradient pass per step. A task inactive at a step (no label, off its
        period, zero weight) has a zero gradient there, which the tracker leaves out.
        ``fit`` does not reset the tracker; its state is saved in the checkpoint and
        restored on resume. :meth:`fit_stl` does not use it.

    Attributes
    ----------
    history_ : History
        The record of the last :meth:`fit`.
    optimizer_ : torch.optim.Optimizer
        The optimizer used by the last :meth:`fit`.
    seed_ : int
        The seed used by the last :meth:`fit`.

    Notes
    -----
    Each task's gradient is multiplied by ``c_t = weight_t × schedule(p)`` (0 on the
    steps a task with ``period = k`` skips, i.e. unless ``step % k == 0``, and in
    batches without its labels) before the method combines the tasks; the method reads
    the unscaled losses. A task without labels in a batch shows the method its last
    observed loss (1.0 before its first label). Gradient methods only combine the tasks
    active at the step. Under DDP (one process per rank, ``torchrun``), every rank draws
    the same global batch and keeps its shard; per-task losses, Jacobians (parameter
    mode) or Gramians (representation mode) are summed across ranks before the method
    acts, so N ranks take the step of one process on the global batch (exactly, up to
    float rounding, for models without dropout). Loss weightings run under plain DDP.
    Iterable inputs (``DataLoader``) are used as given: shard them yourself. Every rank
    evaluates the whole validation data (so all ranks select the same model); only rank
    0 writes the run directory. Launch with ``torchrun`` and initialise the process group
    first (``torch.distributed.init_process_group``); a model with dropout draws the same
    masks on every rank.

    Examples
    --------
    >>> import functools, torch
    >>> from torch import nn
    >>> from polytask.data import mmoe_synthetic, MultiTaskData
    >>> from polytask.deep.architectures import MLP, SharedBottom
    >>> syn = mmoe_synthetic(64, n_features=4, random_state=0)
    >>> data = MultiTaskData(syn.X, syn.Y, task_names=syn.task_names)
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = SharedBottom(MLP([4, 8], activate_last=True),
    ...                      {t: nn.Linear(8, 1) for t in syn.task_names})
    >>> trainer = Trainer(max_epochs=3, batch_size=16, progress=False)
    >>> history = trainer.fit(model, syn.task_names, None,
    ...                       functools.partial(torch.optim.Adam, lr=1e-2), data, data)
    >>> history.n_epochs, history.best_epoch is not None
    (3, True)

    The task Gramians of a gradient method's steps feed a relatedness tracker at no
    extra cost:

    >>> from polytask.deep.aggregation import UPGrad
    >>> from polytask.relate import GradientSimilarityTracker
    >>> tracker = GradientSimilarityTracker(syn.task_names)
    >>> trainer = Trainer(max_epochs=1, batch_size=16, progress=False, gradient_tracker=tracker)
    >>> _ = trainer.fit(model, syn.task_names, UPGrad(),
    ...                 functools.partial(torch.optim.Adam, lr=1e-2), data)
    >>> tracker.n_steps, tracker.summary().mean_cosine.shape
    (4, (2, 2))
    """

    def __init__(
        self, *, max_epochs: int = 10, max_steps: int | None = None, batch_size: int = 32,
        eval_batch_size: int | None = None, steps_per_epoch: int | None = None,
        sampling: Sampling = "proportional", temperature: float = 2.0,
        task_mixing: Mixing = "batch",
        mode: Literal["parameter", "representation"] = "parameter",
        grad_clip_norm: float | None = None,
        aux_schedule: Schedule | Mapping[str, Schedule] = "constant",
        patience: int | None = None, restore_best: bool = True,
        run_dir: str | os.PathLike[str] | None = None, checkpoint_every: int = 1,
        resume: bool = True, seed: int | None = 0, device: str | torch.device | None = None,
        mixed_precision: bool | Literal["fp16", "bf16"] = False, progress: bool = True,
        tensorboard: bool = True, gradient_tracker: Any = None,
    ) -> None:
        self.max_epochs, self.max_steps, self.batch_size = max_epochs, max_steps, batch_size
        self.eval_batch_size, self.steps_per_epoch = eval_batch_size, steps_per_epoch
        self.sampling, self.temperature, self.task_mixing = sampling, temperature, task_mixing
        self.mode, self.grad_clip_norm, self.aux_schedule = mode, grad_clip_norm, aux_schedule
        self.patience, self.restore_best, self.run_dir = patience, restore_best, run_dir
        self.checkpoint_every, self.resume, self.seed = checkpoint_every, resume, seed
        self.device, self.mixed_precision = device, mixed_precision
        self.progress, self.tensorboard = progress, tensorboard
        self.gradient_tracker = gradient_tracker

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters, as passed to ``__init__``."""
        return {k: getattr(self, k) for k in (
            "max_epochs", "max_steps", "batch_size", "eval_batch_size", "steps_per_epoch",
            "sampling", "temperature", "task_mixing", "mode", "grad_clip_norm", "aux_schedule",
            "patience", "restore_best", "run_dir", "checkpoint_every", "resume", "seed",
            "device", "mixed_precision", "progress", "tensorboard", "gradient_tracker")}

    def _check_params(self) -> None:
        def positive_int(name: str, optional: bool = False) -> None:
            v = getattr(self, name)
            if optional and v is None:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1{' or None' * optional}, "
                                 f"got {v!r}")
        positive_int("max_epochs")
        positive_int("batch_size")
        positive_int("checkpoint_every")
        for name in ("max_steps", "eval_batch_size", "steps_per_epoch", "patience"):
            positive_int(name, optional=True)
        if self.sampling not in SAMPLING_STRATEGIES:
            raise ValueError(f"sampling must be one of {SAMPLING_STRATEGIES}, "
                             f"got {self.sampling!r}")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, int | float) or not (math.isfinite(t)
                                                                           and t > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {t!r}")
        choices = {"task_mixing": ("batch", "example"), "mode": ("parameter", "representation"),
                   "mixed_precision": (False, True, "no", "fp16", "bf16")}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if not any(value is a or (isinstance(a, str) and value == a) for a in allowed):
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        c = self.grad_clip_norm
        if c is not None and (isinstance(c, bool) or not isinstance(c, int | float)
                              or not (math.isfinite(c) and c > 0)):
            raise ValueError(f"grad_clip_norm must be a finite number > 0 or None, got {c!r}")
        s = self.seed
        if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {s!r}")
        tracker = self.gradient_tracker
        if tracker is not None and not callable(getattr(tracker, "update", None)):
            raise TypeError("gradient_tracker must have an update(gramian) method (e.g. a "
                            "polytask.relate.GradientSimilarityTracker), got "
                            f"{type(tracker).__name__}")

    # ------------------------------------------------------------------ public API
    def fit(
        self, model: nn.Module, tasks: TaskSet | Iterable[Task | str], method: Any,
        optimizer: OptimizerArg, train_loader: Any, val_loader: Any = None,
    ) -> History:
        """Train ``model`` on ``tasks`` and return the :class:`History`.

        Parameters
        ----------
        model : nn.Module
            An architecture: ``forward(x) -> {task: prediction}``, ``shared_parameters()``
            and ``task_parameters(task)`` (plus ``encode``/``decode`` for
            ``mode="representation"``).
        tasks : TaskSet or iterable of Task or str
            The tasks to train, in the order of every per-task vector.
        method : LossWeighting, Aggregator, Weighting, GradVac or None
            How task losses become one update; ``None`` is equal weighting (sum).
        optimizer : torch.optim.Optimizer or callable
            A factory ``param_groups -> Optimizer`` (e.g. ``functools.partial(
            torch.optim.Adam, lr=1e-3)``), which gets :func:`task_param_groups` and
            per-task learning rates ``lr × lr_scale``; or a ready optimizer (all
            ``lr_scale`` must then be 1).
        train_loader : MultiTaskData, Dataset, mapping or iterable
            Joint data (shared-form ``MultiTaskData``, a Dataset of ``(x, {task: y})``
            items, or an iterable of such batches, e.g. a ``DataLoader``) or per-task
            data (per-task-form ``MultiTaskData`` or ``{task: Dataset of (x, y)}``),
            sampled with ``sampling``.
        val_loader : same kinds, optional
            Validation data for per-epoch metrics, model selection and early stopping
            (main tasks only).

        Returns
        -------
        History

        Raises
        ------
        ValueError
            On an invalid hyperparameter, an unknown task name in the data or
            ``aux_schedule`` (the known tasks are listed), a model without an output for
            a task, a method or ``gradient_tracker`` built for other tasks, or a
            checkpoint from another configuration.
        TrainingError
            When a loss or gradient becomes non-finite (the message names the task and
            the step); the last checkpoint is left intact.
        TypeError
            On a model, method, optimizer or data of an unsupported type, or a
            ``gradient_tracker`` without ``update``.
        """
        from ._fit import run_fit

        self._check_params()
        task_set = as_taskset(tasks)
        representation = self.mode == "representation"
        check_model(model, task_set, representation)
        check_schedule(self.aux_schedule, task_set)
        tracked = getattr(self.gradient_tracker, "task_names", None)
        if tracked is not None and tuple(tracked) != task_set.names:
            raise ValueError(f"gradient_tracker was built for tasks {list(tracked)}; the "
                             f"trainer's tasks are {list(task_set.names)} (same order)")
        dist = distributed_context()
        device = resolve_device(self.device, model)
        model.to(device)
        if method is None:
            from polytask.deep.weighting import EqualWeighting

            method = EqualWeighting(list(task_set.names))
        kind = method_kind(method)
        check_method(method, kind, task_set, representation, dist.enabled)
        if isinstance(method, nn.Module):
            method.to(device)
        source = make_source(train_loader, task_set, what="train data",
                             batch_size=self.batch_size, shuffle=True, sampling=self.sampling,
                             temperature=self.temperature, mixing=self.task_mixing,
                             steps_per_epoch=self.steps_per_epoch, rank=dist.rank,
                             world_size=dist.world_size)
        if val_loader is not None:  # fail early on unknown task names
            make_source(val_loader, task_set, what="validation data", batch_size=1,
                        shuffle=False, sampling="uniform", temperature=1.0, mixing="batch",
                        steps_per_epoch=None)
        opt = build_optimizer(optimizer, model, task_set, method)
        amp_dtype, scaler = amp_settings(self.mixed_precision, device)
        if self.mixed_precision not in (False, "no") and device.type != "cuda":
            logger.debug("mixed_precision=%r ignored on %s (CUDA only)", self.mixed_precision,
                         device)
        tracking = self.gradient_tracker is not None
        stack = StepEngine.stacks_heads(model, kind, method, representation, tracking)
        forward: nn.Module = ForwardModule(model, uses_features(model, representation),
                                           stack_heads=stack)
        if dist.enabled:
            forward = wrap_ddp(forward, device)
        engine = StepEngine(model=model, forward=forward, tasks=task_set, method=method,
                            kind=kind, representation=representation, optimizer=opt,
                            scaler=scaler, amp_dtype=amp_dtype, device=device, dist=dist,
                            grad_clip_norm=self.grad_clip_norm,
                            want_gramian=tracking)
        history, seed = run_fit(self, model=model, tasks=task_set, method=method,
                                optimizer=opt, scaler=scaler, engine=engine, source=source,
                                val=val_loader, device=device, dist=dist)
        self.history_, self.optimizer_, self.seed_ = history, opt, seed
        return history

    def evaluate(self, model: nn.Module, tasks: TaskSet | Iterable[Task | str],
                 data: Any, *, undefined: UndefinedPolicy = "raise"
                 ) -> dict[str, dict[str, float]]:
        """Metrics of every task with labels in ``data``.

        Parameters
        ----------
        model : nn.Module
            ``forward(x) -> {task: prediction}``.
        tasks : TaskSet or iterable of Task or str
            The tasks to score (their metrics and losses).
        data : MultiTaskData, Dataset, mapping or iterable
            Any kind accepted by :meth:`fit`; every example is used once.
        undefined : {"raise", "skip"}, default "raise"
            A metric undefined on a task's labels (ROC-AUC of a part holding one
            class) raises, or is left out with a warning naming the task
            (:meth:`Task.evaluate <polytask.tasks.Task.evaluate>`). During training,
            validation always skips such metrics, and epoch selection uses the tasks
            that remain.

        Returns
        -------
        dict of str to dict of str to float
            ``{task: {metric: value}}``.

        Raises
        ------
        ValueError
            If the data name an unknown task, or a metric is undefined on a task's labels
            and ``undefined="raise"``.
        """
        self._check_params()
        task_set = as_taskset(tasks)
        device = resolve_device(self.device, model)
        metrics, _ = evaluate_model(model, task_set, data,
                                    batch_size=self.eval_batch_size or self.batch_size,
                                    device=device, undefined=undefined)
        return metrics

    def fit_stl(
        self, model_factory: Callable[[tuple[str, ...]], nn.Module],
        tasks: TaskSet | Iterable[Task | str], optimizer: Callable[..., torch.optim.Optimizer],
        train_loader: Any, val_loader: Any = None,
    ) -> STLResult:
        """Single-task baselines: one model per task, same architecture, same settings.

        Parameters
        ----------
        model_factory : callable
            ``model_factory(task_names) -> model``; called with a 1-tuple per task here
            (and with all names for the MTL model, so the architectures match).
        tasks : TaskSet or iterable of Task or str
            Every task is trained alone as a main task, with period 1 and weight 1 (its
            ``lr_scale`` is kept).
        optimizer : callable
            A factory ``param_groups -> Optimizer`` (a new optimizer per model).
        train_loader, val_loader
            As in :meth:`fit`; restricted to one task at a time.

        Returns
        -------
        STLResult
            ``histories``, ``models`` and ``metrics`` (``{task: {metric: value}}`` at each
            task's best epoch, comparable with ``History.best_metrics`` of the MTL run).

        Raises
        ------
        TypeError
            If ``optimizer`` is an optimizer instance rather than a factory.
        """
        base = self
        if self.gradient_tracker is not None:  # built for all the tasks, not one
            base = type(self)(**{**self.get_params(), "gradient_tracker": None})
        return fit_single_tasks(base, model_factory, as_taskset(tasks), optimizer,
                                train_loader, val_loader)


__all__ = ["History", "STLResult", "Trainer", "TrainingError", "as_taskset",
           "task_param_groups", "train_single_task"]
