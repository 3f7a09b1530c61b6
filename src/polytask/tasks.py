"""Tasks and task sets: the one task abstraction shared by the linear and deep halves.

A :class:`Task` names a prediction problem and fixes, through its *kind*, the default
loss and metrics.  A :class:`TaskSet` fixes the order of the tasks, validates them once,
and turns ``{task: prediction}`` and ``{task: target}`` into one loss per task with
missing labels masked.

This module does not import torch at import time, so ``polytask.linear`` stays
torch-free; only :meth:`TaskSet.losses` needs it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from polytask._typing import TASK_KINDS, TaskKind, TaskRole

if TYPE_CHECKING:
    from torch import Tensor

UndefinedPolicy = Literal["raise", "skip"]
"""What :meth:`Task.evaluate` does with a metric undefined on the labels it is given."""


def _default_metric_names(kind: TaskKind) -> tuple[str, ...]:
    from polytask.metrics import DEFAULT_METRICS

    return tuple(DEFAULT_METRICS[kind])


@dataclass(frozen=True)
class Task:
    """One task of a multi-task problem.

    Parameters
    ----------
    name : str
        Unique, non-empty name of the task.
    kind : {"regression", "binary", "multiclass", "multilabel"}, default="regression"
        Fixes the default loss (squared error, binary cross-entropy on logits,
        cross-entropy, per-label binary cross-entropy) and metrics.
    loss : callable, optional
        ``(prediction, target) -> per-element losses`` (``reduction='none'``) on the
        observed labels only; overrides the kind's default.
    metrics : sequence of str, optional
        Names of metrics from :data:`polytask.metrics.METRICS`; defaults to
        :data:`polytask.metrics.DEFAULT_METRICS` for the kind.  The first one is the
        task's *primary* metric (model selection, Δm).
    role : {"main", "auxiliary"}, default="main"
        Auxiliary tasks help training but are ignored by model selection and early
        stopping.
    weight : float, default=1.0
        Static weight of the task's loss (>= 0).
    lr_scale : float, default=1.0
        Multiplier of the learning rate of the task's own parameters (> 0).
    period : int, default=1
        The task contributes a gradient every ``period``-th step (asynchronous tasks).
    n_outputs : int, optional
        Number of classes (multiclass) or labels (multilabel).

    Raises
    ------
    ValueError
        If any field is out of its domain; the message names the task and the field.

    Examples
    --------
    >>> t = Task("income", kind="binary", role="main")
    >>> t.primary_metric
    'roc_auc'
    >>> Task("pos", kind="multiclass", n_outputs=44).metric_names
    ('accuracy', 'f1_macro')
    """

    name: str
    kind: TaskKind = "regression"
    loss: Callable[..., Any] | None = None
    metrics: Sequence[str] | None = None
    role: TaskRole = "main"
    weight: float = 1.0
    lr_scale: float = 1.0
    period: int = 1
    n_outputs: int | None = None
    _metric_names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Task name must be a non-empty string, got {self.name!r}.")
        where = f"Task {self.name!r}"
        if self.kind not in TASK_KINDS:
            raise ValueError(f"{where}: kind must be one of {TASK_KINDS}, got {self.kind!r}.")
        if self.role not in ("main", "auxiliary"):
            raise ValueError(f"{where}: role must be 'main' or 'auxiliary', got {self.role!r}.")
        for attr, positive in (("weight", False), ("lr_scale", True)):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{where}: {attr} must be a number, got {value!r}.")
            if not math.isfinite(value) or value < 0 or (positive and value == 0):
                bound = "> 0" if positive else ">= 0"
                raise ValueError(f"{where}: {attr} must be finite and {bound}, got {value!r}.")
        if isinstance(self.period, bool) or not isinstance(self.period, int) or self.period < 1:
            raise ValueError(f"{where}: period must be an integer >= 1, got {self.period!r}.")
        if self.n_outputs is not None and (
            isinstance(self.n_outputs, bool)
            or not isinstance(self.n_outputs, int)
            or self.n_outputs < 1
        ):
            raise ValueError(
                f"{where}: n_outputs must be a positive integer, got {self.n_outputs!r}."
            )
        if self.loss is not None and not callable(self.loss):
            raise ValueError(f"{where}: loss must be callable, got {type(self.loss).__name__}.")
        if self.metrics is None:
            names = _default_metric_names(self.kind)
        else:
            if isinstance(self.metrics, str):
                raise ValueError(
                    f"{where}: metrics must be a sequence of metric names, got the string "
                    f"{self.metrics!r} (wrap it in a list)."
                )
            names = tuple(self.metrics)
            if not names:
                raise ValueError(f"{where}: metrics must name at least one metric.")
            from polytask.metrics import METRICS

            unknown = [m for m in names if m not in METRICS]
            if unknown:
                raise ValueError(
                    f"{where}: unknown metric(s) {unknown}; known: {sorted(METRICS)}."
                )
        object.__setattr__(self, "_metric_names", names)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Names of the task's metrics, primary first."""
        return self._metric_names

    @property
    def primary_metric(self) -> str:
        """The metric used for model selection and Δm."""
        return self._metric_names[0]

    @property
    def is_main(self) -> bool:
        """Whether the task is a main task."""
        return self.role == "main"

    def loss_fn(self) -> Callable[[Tensor, Tensor], Tensor]:
        """The per-element loss: the user's, or the kind's default."""
        if self.loss is not None:
            return self.loss
        from polytask import _losses

        defaults: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
            "regression": _losses.squared_error,
            "binary": _losses.binary_cross_entropy_logits,
            "multiclass": _losses.cross_entropy,
            "multilabel": _losses.binary_cross_entropy_logits,
        }
        return defaults[self.kind]

    def evaluate(self, y_true: Any, y_pred: Any, *,
                 undefined: UndefinedPolicy = "raise") -> dict[str, float]:
        """Score predictions of this task with each of its metrics.

        Each metric receives what its registry entry asks for
        (:attr:`MetricSpec.prediction <polytask.metrics.MetricSpec>`): hard labels for
        label metrics, and real scores (probabilities for binary and multilabel tasks)
        otherwise.

        Parameters
        ----------
        y_true : array-like
            Targets, shape (n_samples,) or (n_samples, n_labels) for multilabel; NaN
            (or a negative class for multiclass) marks a missing label, which is dropped.
        y_pred : array-like
            Raw model outputs: values (regression), logits (binary, multilabel), or
            class logits (n_samples, n_classes) for multiclass.
        undefined : {"raise", "skip"}, default "raise"
            What to do with a metric that is undefined on these labels (ROC-AUC when
            they hold one class, explained variance of a constant target): raise
            :class:`~polytask.metrics.UndefinedMetricError`, or leave the metric out
            of the result and warn with :class:`~polytask.metrics.UndefinedMetricWarning`
            (naming the task). "skip" is MoleculeNet's convention for a rare task whose
            small validation or test part holds one class; malformed input still raises.

        Returns
        -------
        dict of str to float
            ``{metric name: value}``; with ``undefined="skip"``, without the metrics
            that are undefined.

        Raises
        ------
        ValueError
            If the predictions do not match the targets, no label is observed, or a
            metric is undefined and ``undefined="raise"`` (the message names the task).

        Examples
        --------
        >>> t = Task("y", kind="regression", metrics=["mse"])
        >>> t.evaluate([1.0, 2.0, float("nan")], [1.0, 4.0, 0.0])
        {'mse': 2.0}
        """
        from polytask.metrics import UndefinedMetricError, UndefinedMetricWarning, get_metric

        if undefined not in ("raise", "skip"):
            raise ValueError(f"Task {self.name!r}: undefined must be 'raise' or 'skip'; "
                             f"got {undefined!r}")
        yt = np.asarray(y_true, dtype=float)
        yp = np.asarray(y_pred, dtype=float)
        if self.kind == "multiclass":
            if yp.ndim != 2 or yp.shape[0] != yt.shape[0]:
                raise ValueError(
                    f"Task {self.name!r}: multiclass predictions must be (n_samples, "
                    f"n_classes) logits with {yt.shape[0]} rows, got shape {yp.shape}."
                )
            keep = np.isfinite(yt) & (yt >= 0)
            scores, labels, yt = yp[keep], yp[keep].argmax(axis=1), yt[keep].astype(int)
        else:
            yp = yp.reshape(yt.shape) if yp.size == yt.size else yp
            if yp.shape != yt.shape:
                raise ValueError(
                    f"Task {self.name!r}: predictions of shape {yp.shape} do not match "
                    f"targets of shape {yt.shape}."
                )
            if self.kind == "multilabel":
                scores = 1.0 / (1.0 + np.exp(-yp))
                labels = (yp > 0).astype(float)
                if np.isnan(yt).any():
                    raise ValueError(
                        f"Task {self.name!r}: multilabel metrics need complete label rows; "
                        "split the labels into binary tasks to score rows with gaps."
                    )
            else:
                keep = ~np.isnan(yt)
                yt, yp = yt[keep], yp[keep]
                scores = 1.0 / (1.0 + np.exp(-yp)) if self.kind == "binary" else yp
                labels = (yp > 0).astype(float) if self.kind == "binary" else yp
        if yt.size == 0:
            raise ValueError(f"Task {self.name!r}: no observed labels to evaluate.")
        out: dict[str, float] = {}
        for name in self._metric_names:
            spec = get_metric(name)
            pred = labels if spec.prediction == "label" else scores
            try:
                out[name] = float(spec.fn(yt, pred))
            except UndefinedMetricError as exc:
                if undefined == "raise":
                    raise UndefinedMetricError(f"Task {self.name!r}: {exc}") from exc
                warnings.warn(f"Task {self.name!r}: {name} left out: {exc}",
                              UndefinedMetricWarning, stacklevel=2)
        return out


class TaskSet(Sequence[Task]):
    """An ordered, validated collection of tasks.

    Parameters
    ----------
    tasks : iterable of Task or str
        The tasks, in the order every per-task vector (losses, weights, gradients)
        follows.  A plain string makes a regression task of that name.

    Raises
    ------
    ValueError
        If the set is empty, a name is empty or repeated, or an item is not a Task.

    Examples
    --------
    >>> import torch
    >>> ts = TaskSet([Task("a"), Task("b", kind="binary")])
    >>> ts.names
    ('a', 'b')
    >>> preds = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0, 0.0])}
    >>> targets = {"a": torch.tensor([1.0, float("nan")]), "b": torch.tensor([1.0, 0.0])}
    >>> [round(v, 4) for v in ts.losses(preds, targets).tolist()]
    [0.0, 0.6931]
    """

    def __init__(self, tasks: Iterable[Task | str]) -> None:
        items: list[Task] = []
        for i, t in enumerate(tasks):
            if isinstance(t, str):
                t = Task(t)
            if not isinstance(t, Task):
                raise ValueError(
                    f"TaskSet: item {i} must be a Task or a task name, got {type(t).__name__}."
                )
            items.append(t)
        if not items:
            raise ValueError("TaskSet: at least one task is required.")
        names = [t.name for t in items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"TaskSet: duplicate task names {dupes}; names must be unique.")
        self._tasks = tuple(items)
        self._index = {t.name: i for i, t in enumerate(items)}

    @overload
    def __getitem__(self, key: int | str) -> Task: ...

    @overload
    def __getitem__(self, key: slice) -> Sequence[Task]: ...

    def __getitem__(self, key: int | str | slice) -> Task | Sequence[Task]:
        if isinstance(key, str):
            return self._tasks[self.index(key)]
        return self._tasks[key]

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks)

    def __repr__(self) -> str:
        inner = ", ".join(f"{t.name}:{t.kind}" + ("(aux)" if not t.is_main else "")
                          for t in self._tasks)
        return f"TaskSet([{inner}])"

    @property
    def names(self) -> tuple[str, ...]:
        """Task names in order."""
        return tuple(self._index)

    @property
    def main_names(self) -> tuple[str, ...]:
        """Names of the main tasks, in order."""
        return tuple(t.name for t in self._tasks if t.is_main)

    def index(self, name: str, *args: Any) -> int:  # type: ignore[override]
        """Position of task ``name``; an unknown name raises listing the known ones."""
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"Unknown task {name!r}; known tasks: {list(self._index)}."
            ) from None

    def check_names(self, names: Iterable[str], what: str) -> None:
        """Raise if ``names`` holds a task this set does not know.

        Parameters
        ----------
        names : iterable of str
            Task names found in user data or configuration.
        what : str
            What the names came from, for the message (e.g. ``"targets"``).
        """
        unknown = [n for n in names if n not in self._index]
        if unknown:
            raise ValueError(
                f"Unknown task(s) {unknown} in {what}; known tasks: {list(self._index)}."
            )

    def weights(self) -> np.ndarray:
        """Static task weights, shape (n_tasks,)."""
        return np.array([t.weight for t in self._tasks], dtype=float)

    def losses(
        self,
        preds: Mapping[str, Tensor],
        targets: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None = None,
        *,
        return_counts: bool = False,
        grouped: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """One loss per task, each the mean over that task's observed labels.

        Parameters
        ----------
        preds : mapping of str to Tensor
            ``{task: prediction}`` for every task in the set.
        targets : mapping of str to Tensor
            ``{task: target}``; NaN (float) or a negative class index marks a missing
            label.  A task absent from ``targets`` has no labels in this batch.
        masks : mapping of str to Tensor, optional
            Extra boolean masks (True = observed), combined with the NaN mask.
        return_counts : bool, default=False
            Also return the number of observed labels per task.
        grouped : bool, default=False
            Compute the regression and binary tasks that use their kind's default loss
            in one vectorised pass per prediction shape (same values up to rounding;
            much faster with hundreds of tasks).  The result is then no longer a
            ``torch.stack`` of per-task scalars, so per-task gradient methods
            (:func:`polytask.deep.backward.mtl_backward` with a Gramian method) would
            fall back to slower batched passes: use it for a loss weighting's objective
            or for evaluation.

        Returns
        -------
        losses : Tensor of shape (n_tasks,)
            A task with no observed label contributes exactly 0 (and a zero gradient),
            never NaN.
        counts : Tensor of shape (n_tasks,)
            Only when ``return_counts`` is True.

        Raises
        ------
        ValueError
            If a task's prediction is missing, a name is unknown, or a prediction and
            its target have incompatible shapes (the message names the task).
        """
        import torch

        from polytask._losses import grouped_losses, observed_mask

        self.check_names(preds, "predictions")
        self.check_names(targets, "targets")
        if masks is not None:
            self.check_names(masks, "masks")
        done = grouped_losses(self._tasks, preds, targets, masks) if grouped else []
        skip = {i for indices, _, _ in done for i in indices}
        out: list[Tensor] = []
        counts: list[int] = []
        for i, task in enumerate(self._tasks):
            if task.name not in preds:
                raise ValueError(f"Task {task.name!r}: no prediction was given.")
            if i in skip:
                continue
            pred = preds[task.name]
            target = targets.get(task.name)
            if target is None:
                out.append(pred.sum() * 0.0)
                counts.append(0)
                continue
            pred, target = _align(task, pred, target)
            mask = observed_mask(target)
            if masks is not None and task.name in masks:
                extra = masks[task.name].to(torch.bool)
                if extra.shape != mask.shape:
                    raise ValueError(
                        f"Task {task.name!r}: mask of shape {tuple(extra.shape)} does not "
                        f"match target of shape {tuple(mask.shape)}."
                    )
                mask = mask & extra
            n_obs = int(mask.sum())
            counts.append(n_obs)
            if n_obs == 0:
                out.append(pred.sum() * 0.0)
                continue
            per_elem = task.loss_fn()(pred[mask], target[mask])
            out.append(per_elem.mean())
        if not done:
            losses = torch.stack(out)
        else:  # reassemble in task order with one gather
            rest = [i for i in range(len(self._tasks)) if i not in skip]
            placed = [i for indices, _, _ in done for i in indices] + rest
            pieces = [v for _, v, _ in done] + ([torch.stack(out)] if out else [])
            counts = [c for _, _, n in done for c in n] + counts
            order = torch.tensor(placed).argsort()  # task i's position in the pieces
            losses = torch.cat(pieces)[order.to(pieces[0].device)]
            counts = [counts[k] for k in order.tolist()]
        if return_counts:
            return losses, torch.tensor(counts, device=losses.device)
        return losses


def _align(task: Task, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Bring a prediction and its target to matching shapes, or raise naming the task."""
    if task.kind == "multiclass":
        if pred.ndim != 2 or target.ndim != 1 or pred.shape[0] != target.shape[0]:
            raise ValueError(
                f"Task {task.name!r}: multiclass prediction must be (batch, n_classes) and "
                f"target (batch,), got {tuple(pred.shape)} and {tuple(target.shape)}."
            )
        if target.is_floating_point():
            target = torch_nan_to_neg(target)
        return pred, target
    if task.kind in ("regression", "binary") and pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if task.kind in ("regression", "binary") and target.ndim == 2 and target.shape[1] == 1:
        target = target[:, 0]
    if pred.shape != target.shape:
        raise ValueError(
            f"Task {task.name!r}: prediction of shape {tuple(pred.shape)} does not match "
            f"target of shape {tuple(target.shape)}."
        )
    return pred, target


def torch_nan_to_neg(target: Tensor) -> Tensor:
    """Integer class targets from a float tensor, NaN mapped to -1 (missing)."""
    import torch

    return torch.where(torch.isnan(target), torch.full_like(target, -1.0), target).long()


__all__ = ["Task", "TaskSet"]
