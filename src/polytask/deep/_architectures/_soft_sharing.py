"""Soft parameter sharing: one model per task, tied by a penalty on their parameters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from ._base import Architecture, check_module_mapping, check_nonnegative_float


class SoftSharing(Architecture):
    r"""Soft parameter sharing: one tower per task, pulled together by a penalty.

    Each task ``t`` has its own tower ``g_t`` with parameters :math:`\theta_t`; all
    towers have the same architecture (same parameter names and shapes). Nothing is
    shared: the towers are tied only through :meth:`regularizer`, which the training
    loss must include,

    .. math::

        R(\theta) = \lambda \sum_{p} \sum_{t=1}^{T}
            \lVert \theta_t^{p} - \bar\theta^{p} \rVert_2^2
          + \mu \sum_{p} \lVert [\operatorname{vec}\theta_1^{p}; \dots;
            \operatorname{vec}\theta_T^{p}] \rVert_*,
        \qquad \bar\theta^{p} = \frac{1}{T}\sum_t \theta_t^{p},

    where ``p`` runs over the towers' parameter tensors (layers), :math:`\lambda` is
    ``strength`` and :math:`\mu` is ``trace_norm_strength``. The first term is the
    distance of every task's parameters to their mean across tasks (Duong et al.,
    2015); the second is the nuclear norm of the ``(n_tasks, n_params_p)`` matrix that
    stacks the tasks' flattened parameters of one layer, a trace-norm tensor
    factorisation penalty (Yang & Hospedales, 2017) that favours low-rank, hence
    shared, layers. With both strengths 0 the towers are independent single-task
    models.

    Parameters
    ----------
    towers : mapping of str to nn.Module
        One model per task, ``x -> prediction``; all with identical parameter names
        and shapes. The mapping's order fixes :attr:`task_names`.
    strength : float, default=1e-3
        :math:`\lambda \ge 0`, weight of the distance-to-mean penalty.
    trace_norm_strength : float, default=0.0
        :math:`\mu \ge 0`, weight of the trace-norm penalty.

    Attributes
    ----------
    towers : nn.ModuleList
        The towers, in task order.

    Raises
    ------
    TypeError
        If ``towers`` is not a mapping of modules or a strength is not a number.
    ValueError
        If ``towers`` is empty, a strength is negative or not finite, two tasks share a
        module, or a tower's parameters differ in name or shape from the first tower's
        (the message names the task and the parameter).

    Notes
    -----
    :meth:`shared_parameters` is empty and ``supports_representation`` is False: there
    is no shared representation. A task's loss reaches its own tower only; the
    regularizer reaches every tower.

    References
    ----------
    .. [1] Duong, L., Cohn, T., Bird, S., & Cook, P. (2015). Low resource dependency
       parsing: cross-lingual parameter sharing in a neural network parser. *ACL*.
    .. [2] Yang, Y., & Hospedales, T. (2017). Trace norm regularised deep multi-task
       learning. *ICLR Workshop*.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.architectures import MLP
    >>> model = SoftSharing({"a": MLP([3, 8, 1]), "b": MLP([3, 8, 1])}, strength=0.1)
    >>> sorted(model(torch.randn(5, 3)))
    ['a', 'b']
    >>> penalty = model.regularizer()
    >>> penalty.ndim, bool(penalty > 0), len(list(model.shared_parameters()))
    (0, True, 0)
    """

    supports_representation = False

    def __init__(
        self,
        towers: Mapping[str, nn.Module],
        strength: float = 1e-3,
        trace_norm_strength: float = 0.0,
    ) -> None:
        names = check_module_mapping(towers, "towers")
        lam = check_nonnegative_float(strength, "strength")
        mu = check_nonnegative_float(trace_norm_strength, "trace_norm_strength")
        _check_same_parameters(names, towers)
        super().__init__(names)
        self.strength = lam
        self.trace_norm_strength = mu
        self.towers = nn.ModuleList(towers[t] for t in names)
        self._check_parameter_partition()

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Apply each task's tower to ``x``; see :meth:`Architecture.forward`."""
        return {t: tower(x) for t, tower in zip(self.task_names, self.towers, strict=True)}

    def regularizer(self) -> Tensor:
        """Return the soft-sharing penalty :math:`R(\\theta)` (see the class docstring).

        Returns
        -------
        Tensor
            A scalar, differentiable with respect to every tower's parameters.
        """
        per_task = [dict(tower.named_parameters()) for tower in self.towers]
        total = super().regularizer()
        for name in per_task[0]:
            stacked = torch.stack([params[name] for params in per_task])  # (T, *shape)
            deviation = stacked - stacked.mean(dim=0, keepdim=True)
            total = total + self.strength * deviation.square().sum()
            if self.trace_norm_strength > 0:
                matrix = stacked.reshape(len(per_task), -1)  # (T, n_params_p)
                nuclear = torch.linalg.matrix_norm(matrix, ord="nuc")
                total = total + self.trace_norm_strength * nuclear
        return total

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, strength={self.strength}, "
            f"trace_norm_strength={self.trace_norm_strength}"
        )

    def _shared_modules(self) -> Iterable[nn.Module]:
        return ()

    def _task_modules(self, index: int) -> Iterable[nn.Module]:
        return (self.towers[index],)


def _check_same_parameters(names: tuple[str, ...], towers: Mapping[str, nn.Module]) -> None:
    """Raise a ValueError naming the task and parameter where two towers differ."""
    reference = names[0]
    ref_shapes = {n: tuple(p.shape) for n, p in towers[reference].named_parameters()}
    for task in names[1:]:
        shapes = {n: tuple(p.shape) for n, p in towers[task].named_parameters()}
        for name in [*ref_shapes, *(n for n in shapes if n not in ref_shapes)]:
            if name not in shapes:
                raise ValueError(
                    f"towers: task {task!r} has no parameter {name!r} but task "
                    f"{reference!r} has; all towers must have identical parameters"
                )
            if name not in ref_shapes:
                raise ValueError(
                    f"towers: task {task!r} has parameter {name!r} that task "
                    f"{reference!r} lacks; all towers must have identical parameters"
                )
            if shapes[name] != ref_shapes[name]:
                raise ValueError(
                    f"towers: parameter {name!r} of task {task!r} has shape {shapes[name]} "
                    f"but task {reference!r} has {ref_shapes[name]}"
                )
