"""Customized gate control (CGC) and progressive layered extraction (PLE)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from torch import Tensor, nn

from ._base import Architecture, Features, check_module, check_module_mapping
from ._ple_level import ExtractionLayer, PLELevel


class PLE(Architecture):
    r"""Progressive layered extraction: stacked levels of shared and task experts.

    Level ``k`` (``k = 1, ..., K``) has shared experts :math:`S^k` and, per task,
    task experts :math:`E^k_t`. With task inputs :math:`u^{k-1}_t` and shared input
    :math:`v^{k-1}` (both equal to ``x`` at the first level):

    .. math::

        u^k_t = \sum_j w^k_{t,j}\, e_j, \ e \in [E^k_t(u^{k-1}_t);\ S^k(v^{k-1})],\quad
        w^k_t = \operatorname{softmax} G^k_t(u^{k-1}_t),

        v^k = \sum_j s^k_j\, e_j, \ e \in [E^k_1(u^{k-1}_1); \dots;
        E^k_T(u^{k-1}_T);\ S^k(v^{k-1})],\quad
        s^k = \operatorname{softmax} G^k_S(v^{k-1}) \quad (k < K),

    and :math:`\hat y_t = h_t(u^K_t)`: each task gate weighs its own experts and the
    shared ones; the shared gate (non-final levels only) weighs every expert of the
    level. Gates default to linear maps of their flattened input. With a ``stem``
    :math:`s`, the first level reads :math:`s(x)` instead of :math:`x` (its experts and
    its gates).

    Parameters
    ----------
    levels : sequence of PLELevel
        The ``K >= 1`` levels, first to last. Experts of level ``k > 1`` receive the
        previous level's outputs (shape of that level's expert outputs).
    towers : mapping of str to nn.Module
        One tower per task, applied to the final level's task output. The mapping's
        order fixes :attr:`task_names`; every level must name the same tasks.
    stem : nn.Module or None, default=None
        A shared input module (e.g. a CNN) applied once to ``x``; the first level's
        experts and gates read its output (its ``gate_input_dim`` is then the stem's
        flattened output width).

    Attributes
    ----------
    levels : nn.ModuleList
        Per level: ``shared_experts``, ``task_experts[t]``, ``task_gates[t]`` (task
        index ``t``) and ``shared_gate`` (None at the final level).
    towers : nn.ModuleList
        The towers, in task order.
    stem : nn.Module or None
        The shared input module.

    Raises
    ------
    TypeError
        If ``levels`` is not a sequence of :class:`PLELevel`, a field holds the
        wrong type (the message names the level and field), or ``stem`` is not a
        module.
    ValueError
        If there is no level, a level lacks shared or task experts, names other tasks
        than ``towers``, needs ``gate_input_dim`` and has none, sets ``shared_gate`` at
        the final level, or a module is reused across parts. At call time, if experts
        of one level return different shapes or a gate returns the wrong shape.

    Notes
    -----
    Ownership: shared experts and shared gates are the shared parameters; a task's
    experts, gates and tower are its parameters. With one level (:class:`CGC`) a loss
    on task ``s`` never reaches another task's parameters. With ``K >= 2`` the shared
    gate of level ``k < K`` mixes the task experts of level ``k`` into the shared
    path, so other tasks' losses reach them.

    ``supports_representation`` is True. ``encode(x)`` runs all levels but the
    tasks' part of the last, and returns the tuple ``(shared, u_1, ..., u_T)``:
    ``shared`` is the stacked output of the last level's shared experts
    ``(batch, n_shared, ...)`` and :math:`u^{K-1}_t` are the tasks' inputs to the last
    level (omitted when ``K = 1``, since they are ``x``). ``decode`` runs the last
    level's task experts and gates and the towers, which use task parameters only.

    A stem runs once per batch and is shared by all the first level's experts and
    gates, so an expensive stem (a CNN) costs what it costs in :class:`SharedBottom`;
    its parameters are shared parameters. With a stem and ``K = 1``, ``encode(x)``
    returns ``(shared, z)``, where ``z`` is the stem output the task experts and gates
    read (an alias of the tensor the shared experts read, so that the gradient a task
    sends through its own experts and gate is kept apart).

    References
    ----------
    .. [1] Tang, H., Liu, J., Zhao, M., & Gong, X. (2020). Progressive layered
       extraction (PLE): a novel multi-task learning (MTL) model for personalized
       recommendations. *RecSys*.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.architectures import MLP
    >>> tasks = ("ctr", "watch_time")
    >>> def level(d_in, n_shared=2, n_task=1):
    ...     return PLELevel(
    ...         shared_experts=[MLP([d_in, 8], activate_last=True) for _ in range(n_shared)],
    ...         task_experts={t: [MLP([d_in, 8], activate_last=True) for _ in range(n_task)]
    ...                       for t in tasks},
    ...         gate_input_dim=d_in,
    ...     )
    >>> model = PLE([level(6), level(8)], towers={t: MLP([8, 1]) for t in tasks})
    >>> {t: tuple(y.shape) for t, y in model(torch.randn(3, 6)).items()}
    {'ctr': (3, 1), 'watch_time': (3, 1)}
    >>> [tuple(w["ctr"].shape) for w in model.gate_weights(torch.randn(3, 6))]
    [(3, 3), (3, 3)]
    """

    supports_representation = True

    def __init__(self, levels: Sequence[PLELevel], towers: Mapping[str, nn.Module],
                 stem: nn.Module | None = None) -> None:
        if stem is not None:
            check_module(stem, "stem")
        if not isinstance(levels, Sequence) or isinstance(levels, str):
            raise TypeError(f"levels must be a sequence of PLELevel, got {type(levels).__name__}")
        if len(levels) == 0:
            raise ValueError("levels must hold at least one PLELevel")
        names = check_module_mapping(towers, "towers")
        n_levels = len(levels)
        layers = [
            ExtractionLayer(level, k, names, final=k == n_levels - 1)
            for k, level in enumerate(levels)
        ]
        super().__init__(names)
        self.levels = nn.ModuleList(layers)
        self.towers = nn.ModuleList(towers[t] for t in names)
        self.stem = stem
        self._check_parameter_partition()

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Predict every task; see :meth:`Architecture.forward`."""
        return self.decode(self.encode(x), x)

    def encode(self, x: Tensor) -> tuple[Tensor, ...]:
        """Run everything that uses shared parameters; see the class Notes.

        Parameters
        ----------
        x : Tensor
            A batch of inputs, ``(batch, ...)``.

        Returns
        -------
        tuple of Tensor
            ``(shared,)`` for one level (``(shared, z)`` with a stem),
            ``(shared, u_1, ..., u_T)`` otherwise.
        """
        task_inputs, shared_input = self._run_levels(x, record=None)
        last: ExtractionLayer = self.levels[-1]  # type: ignore[assignment]
        shared = last.shared_stack(shared_input)
        if len(self.levels) > 1:
            return (shared, *task_inputs)
        if self.stem is None:
            return (shared,)
        return (shared, shared_input.view_as(shared_input))

    def decode(self, features: Features, x: Tensor) -> dict[str, Tensor]:
        """Run the last level's task part and the towers; see the class Notes."""
        n_tasks = len(self.task_names)
        if len(self.levels) > 1:
            n_expected = 1 + n_tasks
        else:
            n_expected = 1 if self.stem is None else 2
        if isinstance(features, Tensor) or len(features) != n_expected:
            raise ValueError(
                f"features must be the tuple of {n_expected} tensors returned by encode(x)"
            )
        if len(self.levels) > 1:
            task_inputs = list(features[1:])
        else:
            task_inputs = [x if self.stem is None else features[1]] * n_tasks
        last: ExtractionLayer = self.levels[-1]  # type: ignore[assignment]
        outputs, _, _ = last.mix_tasks(task_inputs, features[0])
        return {
            t: tower(u) for t, tower, u in zip(self.task_names, self.towers, outputs, strict=True)
        }

    def gate_weights(self, x: Tensor) -> list[dict[str, Tensor]]:
        """Return the task gates' softmax weights at every level.

        Parameters
        ----------
        x : Tensor
            A batch of inputs, ``(batch, ...)``.

        Returns
        -------
        list of dict of str to Tensor
            Per level, ``{task: (batch, n_task_experts + n_shared_experts)}``; columns
            list the task's experts first, then the shared experts.
        """
        record: list[dict[str, Tensor]] = []
        task_inputs, shared_input = self._run_levels(x, record=record)
        last: ExtractionLayer = self.levels[-1]  # type: ignore[assignment]
        _, weights, _ = last.mix_tasks(task_inputs, last.shared_stack(shared_input))
        record.append(dict(zip(self.task_names, weights, strict=True)))
        return record

    def _run_levels(
        self, x: Tensor, record: list[dict[str, Tensor]] | None
    ) -> tuple[list[Tensor], Tensor]:
        """Run the stem and every level but the last; return the last level's inputs."""
        if self.stem is not None:
            x = self.stem(x)
        task_inputs, shared_input = [x] * len(self.task_names), x
        for layer in list(self.levels)[:-1]:
            assert isinstance(layer, ExtractionLayer)
            shared = layer.shared_stack(shared_input)
            outputs, weights, stacks = layer.mix_tasks(task_inputs, shared)
            shared_input = layer.mix_shared(shared_input, stacks, shared)
            task_inputs = outputs
            if record is not None:
                record.append(dict(zip(self.task_names, weights, strict=True)))
        return task_inputs, shared_input

    def _shared_modules(self) -> Iterable[nn.Module]:
        if self.stem is not None:
            yield self.stem
        for layer in self.levels:
            assert isinstance(layer, ExtractionLayer)
            yield layer.shared_experts
            if layer.shared_gate is not None:
                yield layer.shared_gate

    def _task_modules(self, index: int) -> Iterable[nn.Module]:
        for layer in self.levels:
            assert isinstance(layer, ExtractionLayer)
            yield layer.task_experts[index]
            yield layer.task_gates[index]
        yield self.towers[index]


class CGC(PLE):
    r"""Customized gate control: one extraction level of :class:`PLE`.

    Shared experts :math:`S` and task experts :math:`E_t` all read ``x``; task ``t``'s
    gate weighs its own experts and the shared ones:

    .. math::

        \hat y_t = h_t\Big(\sum_j w_{t,j}(x)\, e_j\Big), \quad
        e \in [E_t(x);\ S(x)], \quad w_t = \operatorname{softmax} G_t(x).

    ``CGC(shared_experts, task_experts, towers, gate_input_dim, task_gates, stem)`` is
    exactly ``PLE([PLELevel(shared_experts, task_experts, gate_input_dim, task_gates)],
    towers, stem)`` (same modules, same ``state_dict`` keys).

    Parameters
    ----------
    shared_experts : sequence of nn.Module
        At least one expert shared by all tasks.
    task_experts : mapping of str to sequence of nn.Module
        At least one expert per task (same tasks as ``towers``).
    towers : mapping of str to nn.Module
        One tower per task; the mapping's order fixes :attr:`task_names`.
    gate_input_dim : int or None, default=None
        Features of ``x`` once flattened; builds the default linear gates.
    task_gates : mapping of str to nn.Module or None, default=None
        Custom gates returning logits ``(batch, n_task_experts + n_shared_experts)``.
    stem : nn.Module or None, default=None
        A shared input module applied once to ``x``; all experts and gates read its
        output (see :class:`PLE`).

    Raises
    ------
    TypeError
        As :class:`PLE`.
    ValueError
        As :class:`PLE`.

    Notes
    -----
    The task parameters are isolated: a loss on task ``s`` never reaches another
    task's experts, gate or tower. ``encode(x)`` returns ``(shared,)``, the stacked
    shared experts' outputs ``(batch, n_shared, ...)`` (``(shared, z)`` with a stem).

    References
    ----------
    .. [1] Tang, H., Liu, J., Zhao, M., & Gong, X. (2020). Progressive layered
       extraction (PLE): a novel multi-task learning (MTL) model for personalized
       recommendations. *RecSys*.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = CGC(
    ...     shared_experts=[nn.Linear(5, 4) for _ in range(2)],
    ...     task_experts={"a": [nn.Linear(5, 4)], "b": [nn.Linear(5, 4)]},
    ...     towers={"a": nn.Linear(4, 1), "b": nn.Linear(4, 2)},
    ...     gate_input_dim=5,
    ... )
    >>> {t: tuple(y.shape) for t, y in model(torch.randn(6, 5)).items()}
    {'a': (6, 1), 'b': (6, 2)}
    """

    def __init__(
        self,
        shared_experts: Sequence[nn.Module],
        task_experts: Mapping[str, Sequence[nn.Module]],
        towers: Mapping[str, nn.Module],
        gate_input_dim: int | None = None,
        task_gates: Mapping[str, nn.Module] | None = None,
        stem: nn.Module | None = None,
    ) -> None:
        level = PLELevel(shared_experts, task_experts, gate_input_dim, task_gates)
        super().__init__([level], towers, stem)
