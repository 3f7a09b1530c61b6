"""Cross-stitch networks: one column per task, mixed by learnable units between layers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from ._base import (
    Architecture,
    Features,
    check_module_mapping,
    check_module_sequence,
    check_positive_int,
    check_same_tasks,
    check_task_names,
)


class CrossStitchUnit(nn.Module):
    r"""Learnable linear mixing of the tasks' activations at one depth.

    With activations :math:`a_1, \dots, a_T` of one shape, the unit returns
    :math:`\tilde a_t = \sum_s \alpha_{ts} a_s`. With ``channels=C`` the mixing is done
    per channel (dimension 1 of the activations, e.g. conv feature maps):
    :math:`\tilde a_t[:, c] = \sum_s \alpha_{c,t,s}\, a_s[:, c]`.

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``T``.
    same : float
        Initial :math:`\alpha_{tt}`.
    other : float
        Initial :math:`\alpha_{ts}`, ``s != t``.
    channels : int or None, default=None
        ``None`` for one ``(T, T)`` matrix, or the channel count ``C`` for a
        ``(C, T, T)`` tensor of per-channel matrices.
    label : str, default="cross-stitch unit"
        How error messages name this unit.

    Raises
    ------
    TypeError
        If ``n_tasks`` or ``channels`` is not an int, or ``same``/``other`` is not a
        real number.
    ValueError
        If ``n_tasks`` or ``channels`` is < 1, or ``same``/``other`` is not finite.

    Attributes
    ----------
    alpha : Parameter
        The mixing weights, ``(T, T)`` or ``(C, T, T)``; row ``t`` produces task ``t``.

    Examples
    --------
    >>> import torch
    >>> unit = CrossStitchUnit(2, same=0.9, other=0.1)
    >>> with torch.no_grad():
    ...     a, b = unit([torch.ones(3, 4), torch.zeros(3, 4)])
    >>> round(float(a[0, 0]), 3), round(float(b[0, 0]), 3)
    (0.9, 0.1)
    """

    def __init__(
        self,
        n_tasks: int,
        same: float,
        other: float,
        channels: int | None = None,
        label: str = "cross-stitch unit",
    ) -> None:
        check_positive_int(n_tasks, "n_tasks")
        same, other = _check_init((same, other), n_tasks)
        if channels is not None:
            check_positive_int(channels, "channels")
        super().__init__()
        matrix = torch.full((n_tasks, n_tasks), other)
        matrix.fill_diagonal_(same)
        if channels is not None:
            matrix = matrix.expand(channels, n_tasks, n_tasks).clone()
        self.alpha = nn.Parameter(matrix)
        self.label = label

    def forward(self, activations: Sequence[Tensor]) -> list[Tensor]:
        """Mix the tasks' activations.

        Parameters
        ----------
        activations : sequence of Tensor
            One activation per task, all of the same shape ``(batch, ...)``;
            ``(batch, C, ...)`` for a per-channel unit.

        Returns
        -------
        list of Tensor
            The mixed activations, in task order, same shapes as the inputs.

        Raises
        ------
        ValueError
            If the number of activations is not ``T``, their shapes differ, or a
            per-channel unit gets activations whose dimension 1 is not ``C``.
        """
        n_tasks = self.alpha.shape[-1]
        if len(activations) != n_tasks:
            raise ValueError(
                f"{self.label}: expected {n_tasks} activations, got {len(activations)}"
            )
        shape = tuple(activations[0].shape)
        for t, act in enumerate(activations):
            if tuple(act.shape) != shape:
                raise ValueError(
                    f"{self.label}: the activation of task number {t} has shape "
                    f"{tuple(act.shape)} but task number 0 has {shape}; all columns must "
                    "produce activations of the same shape at this layer"
                )
        stacked = torch.stack(list(activations))  # (T, batch, ...)
        if self.alpha.ndim == 2:
            mixed = torch.tensordot(self.alpha, stacked, dims=1)
        else:
            channels = self.alpha.shape[0]
            if len(shape) < 2 or shape[1] != channels:
                raise ValueError(
                    f"{self.label}: per-channel mixing over {channels} channels needs "
                    f"activations of shape (batch, {channels}, ...), got {shape}"
                )
            flat = stacked.reshape(n_tasks, shape[0], channels, -1)
            mixed = torch.einsum("cts,sbcr->tbcr", self.alpha, flat).reshape(stacked.shape)
        return list(mixed.unbind(0))


class CrossStitch(Architecture):
    r"""Cross-stitch network: per-task columns mixed by cross-stitch units.

    Task ``t`` has a column of ``L`` layers :math:`\ell_t^{1}, \dots, \ell_t^{L}` and a
    head :math:`h_t`. Between consecutive layers a cross-stitch unit mixes the tasks'
    activations linearly:

    .. math::

        a_t^{l} = \ell_t^{l}(\tilde a_t^{l-1}), \quad
        \tilde a_t^{l} = \sum_{s} \alpha^{l}_{ts}\, a_s^{l} \ (l < L), \quad
        \tilde a_t^{0} = x, \quad \hat y_t = h_t(a_t^{L}).

    So there are ``L - 1`` units; to mix after the last real layer too, end every
    column with ``nn.Identity()``. The units' :math:`\alpha` are the shared
    parameters; each column and head belongs to its task. With identity mixing
    (``init=(1.0, 0.0)``) the columns are independent single-task networks.

    Parameters
    ----------
    columns : mapping of str to sequence of nn.Module
        One column of ``L >= 2`` layers per task, all columns of equal length. At every
        depth ``l < L`` all columns must produce activations of the same shape. The
        mapping's order fixes :attr:`task_names`.
    heads : mapping of str to nn.Module
        One head per task (same tasks as ``columns``), applied to the column's output.
    init : tuple of (float, float) or None, default=None
        Initial ``(same-task, other-task)`` mixing weights; ``None`` means
        ``(0.9, 0.1 / (T - 1))`` (``(1.0, 0.0)`` when there is one task).
    channels : sequence of (int or None), or None, default=None
        One entry per unit (``L - 1``): ``None`` for a scalar ``(T, T)`` unit, or the
        number of channels ``C`` (dimension 1 of that layer's activations) for a
        per-channel ``(C, T, T)`` unit. ``None`` makes every unit scalar.

    Attributes
    ----------
    columns : nn.ModuleList
        ``columns[t][l]`` is layer ``l`` of task ``t``'s column.
    heads : nn.ModuleList
        The heads, in task order.
    units : nn.ModuleList of CrossStitchUnit
        ``units[l]`` mixes the outputs of layer ``l`` (``l = 0, ..., L - 2``).

    Raises
    ------
    TypeError
        If ``columns``/``heads`` are not mappings of (sequences of) modules, or
        ``init``/``channels`` have the wrong types.
    ValueError
        If the columns have different lengths or fewer than two layers, ``heads``
        names other tasks than ``columns``, ``init`` is not finite, ``channels`` has
        the wrong length or a channel count < 1, or a module is reused across tasks.
        At call time, if the columns' activations at a layer differ in shape (the
        message names the layer).

    Notes
    -----
    ``supports_representation`` is True: ``encode(x)`` returns the tuple of the ``T``
    mixed activations after the last unit (task order), each of which depends on all
    columns through the units; ``decode`` applies each column's last layer and head.
    Because the units mix the tasks, a loss on task ``s`` also reaches the columns of
    other tasks (though never their last layer or head).

    References
    ----------
    .. [1] Misra, I., Shrivastava, A., Gupta, A., & Hebert, M. (2016). Cross-stitch
       networks for multi-task learning. *CVPR*.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> def column():
    ...     return [nn.Sequential(nn.Linear(6, 8), nn.ReLU()), nn.Linear(8, 8)]
    >>> model = CrossStitch(
    ...     {"a": column(), "b": column()},
    ...     {"a": nn.Linear(8, 1), "b": nn.Linear(8, 3)},
    ... )
    >>> {t: tuple(y.shape) for t, y in model(torch.randn(4, 6)).items()}
    {'a': (4, 1), 'b': (4, 3)}
    >>> [round(v, 2) for v in model.units[0].alpha.flatten().tolist()]
    [0.9, 0.1, 0.1, 0.9]
    """

    supports_representation = True

    def __init__(
        self,
        columns: Mapping[str, Sequence[nn.Module]],
        heads: Mapping[str, nn.Module],
        init: tuple[float, float] | None = None,
        channels: Sequence[int | None] | None = None,
    ) -> None:
        names, layers = _check_columns(columns)
        check_module_mapping(heads, "heads")
        check_same_tasks(names, heads.keys(), "heads")
        n_tasks, depth = len(names), len(layers[0])
        same, other = _check_init(init, n_tasks)
        unit_channels = _check_channels(channels, depth - 1)
        super().__init__(names)
        self.columns = nn.ModuleList(nn.ModuleList(column) for column in layers)
        self.heads = nn.ModuleList(heads[t] for t in names)
        self.units = nn.ModuleList(
            CrossStitchUnit(
                n_tasks, same, other, c, label=f"cross-stitch unit after layer {i} of the columns"
            )
            for i, c in enumerate(unit_channels)
        )
        self._check_parameter_partition()

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Predict every task; see :meth:`Architecture.forward`."""
        return self.decode(self.encode(x), x)

    def encode(self, x: Tensor) -> tuple[Tensor, ...]:
        """Run the columns up to the last unit; see :meth:`Architecture.encode`.

        Returns
        -------
        tuple of Tensor
            The ``T`` mixed activations after the last cross-stitch unit.
        """
        hidden: list[Tensor] = [x] * len(self.task_names)
        for depth, unit in enumerate(self.units):
            activations = [
                _layer(column, depth)(h) for column, h in zip(self.columns, hidden, strict=True)
            ]
            self._check_shapes(activations, depth)
            hidden = unit(activations)
        return tuple(hidden)

    def _check_shapes(self, activations: Sequence[Tensor], depth: int) -> None:
        shape = tuple(activations[0].shape)
        for task, act in zip(self.task_names, activations, strict=True):
            if tuple(act.shape) != shape:
                raise ValueError(
                    f"layer {depth} of the columns: task {task!r} produces activations of "
                    f"shape {tuple(act.shape)} but task {self.task_names[0]!r} produces "
                    f"{shape}; a cross-stitch unit needs equal shapes"
                )

    def decode(self, features: Features, x: Tensor) -> dict[str, Tensor]:
        """Apply each column's last layer and head; see :meth:`Architecture.decode`."""
        if isinstance(features, Tensor) or len(features) != len(self.task_names):
            raise ValueError(
                f"features must be the tuple of {len(self.task_names)} tensors returned "
                "by encode(x)"
            )
        return {
            t: head(_layer(column, -1)(h))
            for t, column, head, h in zip(
                self.task_names, self.columns, self.heads, features, strict=True
            )
        }

    def _shared_modules(self) -> Iterable[nn.Module]:
        return (self.units,)

    def _task_modules(self, index: int) -> Iterable[nn.Module]:
        return (self.columns[index], self.heads[index])


def _layer(column: nn.Module, depth: int) -> nn.Module:
    assert isinstance(column, nn.ModuleList)
    layer: nn.Module = column[depth]
    return layer


def _check_columns(
    columns: object,
) -> tuple[tuple[str, ...], list[tuple[nn.Module, ...]]]:
    if not isinstance(columns, Mapping):
        raise TypeError(
            "columns must be a mapping from task name to a sequence of torch.nn.Module, "
            f"got {type(columns).__name__}"
        )
    names = check_task_names(columns.keys(), "columns")
    layers = [check_module_sequence(columns[t], f"columns[{t!r}]") for t in names]
    depth = len(layers[0])
    for task, column in zip(names, layers, strict=True):
        if len(column) != depth:
            raise ValueError(
                f"columns[{task!r}] has {len(column)} layers but columns[{names[0]!r}] has "
                f"{depth}; all columns must have the same number of layers"
            )
    if depth < 2:
        raise ValueError(
            f"columns must have at least 2 layers (units sit between layers), got {depth}; "
            "append nn.Identity() to mix after the last layer"
        )
    return names, layers


def _check_init(init: object, n_tasks: int) -> tuple[float, float]:
    if init is None:
        return (1.0, 0.0) if n_tasks == 1 else (0.9, 0.1 / (n_tasks - 1))
    if not isinstance(init, (tuple, list)) or len(init) != 2:
        raise TypeError(f"init must be a (same-task, other-task) pair of floats, got {init!r}")
    for value in init:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"init must be a pair of real numbers, got {init!r}")
        if not math.isfinite(value):
            raise ValueError(f"init must be finite, got {init!r}")
    return float(init[0]), float(init[1])


def _check_channels(channels: object, n_units: int) -> list[int | None]:
    if channels is None:
        return [None] * n_units
    if not isinstance(channels, Sequence) or isinstance(channels, str):
        raise TypeError(
            f"channels must be a sequence of (int or None), got {type(channels).__name__}"
        )
    if len(channels) != n_units:
        raise ValueError(
            f"channels must have one entry per cross-stitch unit ({n_units}), got {len(channels)}"
        )
    return [
        None if c is None else check_positive_int(c, f"channels[{i}]")
        for i, c in enumerate(channels)
    ]
