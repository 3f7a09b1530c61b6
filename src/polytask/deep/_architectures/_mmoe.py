"""Multi-gate mixture-of-experts (MMoE)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from torch import Tensor, nn

from ._base import (
    Architecture,
    Features,
    check_module,
    check_module_mapping,
    check_module_sequence,
    check_positive_int,
    check_same_tasks,
)
from ._mixture import LinearGate, gate_softmax, mix, stack_outputs


class MMoE(Architecture):
    r"""Multi-gate mixture-of-experts: shared experts, one softmax gate per task.

    .. math::

        g_t(x) = \operatorname{softmax}(G_t(x)) \in \Delta^{n-1}, \qquad
        \hat y_t = h_t\Big(\sum_{i=1}^{n} g_{t,i}(x)\, f_i(x)\Big),

    where the experts :math:`f_1, \dots, f_n` are shared by all tasks and the gate
    :math:`G_t` and tower :math:`h_t` belong to task ``t``. By default :math:`G_t` is a
    linear map of the flattened input. With a ``stem`` :math:`s`, the experts and the
    gates all read :math:`s(x)` instead of :math:`x`.

    Parameters
    ----------
    experts : sequence of nn.Module
        The ``n >= 1`` shared experts, ``x -> (batch, ...)``; all must return the same
        shape.
    towers : mapping of str to nn.Module
        One tower per task, applied to the gated mixture of expert outputs. The
        mapping's order fixes :attr:`task_names`.
    gate_input_dim : int or None, default=None
        Number of input features once ``x`` is flattened to ``(batch, -1)``; builds one
        linear gate per task. Required unless ``gates`` is given.
    gates : mapping of str to nn.Module or None, default=None
        Custom gates, one per task (same tasks as ``towers``), each mapping the raw
        ``x`` to logits ``(batch, n)``; the softmax is applied by MMoE.
    stem : nn.Module or None, default=None
        A shared input module (e.g. a CNN) applied once to ``x``; the experts and the
        gates then read its output (``gate_input_dim`` is then its flattened width).

    Attributes
    ----------
    experts : nn.ModuleList
        The shared experts.
    gates : nn.ModuleList
        The task gates, in task order.
    stem : nn.Module or None
        The shared input module.
    towers : nn.ModuleList
        The task towers, in task order.

    Raises
    ------
    TypeError
        If ``experts`` is not a sequence of modules, ``towers``/``gates`` are not
        mappings of modules, ``gate_input_dim`` is not an int, or ``stem`` is not a
        module.
    ValueError
        If there is no expert, ``gate_input_dim < 1``, both ``gate_input_dim`` and
        ``gates`` are None, ``gates`` names other tasks than ``towers``, or a module is
        reused across parts. At call time, if the experts' output shapes differ, a gate
        does not return ``(batch, n)`` logits, or ``x`` does not flatten to
        ``gate_input_dim`` features.

    Notes
    -----
    ``supports_representation`` is True: ``encode(x)`` returns the stacked expert
    outputs ``(batch, n, ...)``; ``decode(features, x)`` evaluates the gates on ``x``
    and applies the towers. Gates and towers are task-specific, so a loss on task ``s``
    never reaches the gate or tower of another task. With a single expert the gates
    are constant (weight 1) and MMoE reduces to :class:`SharedBottom`.

    A stem is shared by the experts and the gates and runs once per batch, so an
    expensive stem (a CNN) costs what it costs in :class:`SharedBottom`, not once per
    expert and gate; its parameters are shared parameters. With a stem, ``encode(x)``
    returns the pair ``(stacked, z)``: the stacked expert outputs and the stem output
    ``z`` the gates read (an alias of the tensor the experts read, so that the
    gradient a task sends to ``z`` through its gate is kept apart from the one through
    the experts).

    References
    ----------
    .. [1] Ma, J., Zhao, Z., Yi, X., Chen, J., Hong, L., & Chi, E. H. (2018). Modeling
       task relationships in multi-task learning with multi-gate mixture-of-experts.
       *KDD*.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.architectures import MLP
    >>> model = MMoE(
    ...     experts=[MLP([12, 16], activate_last=True) for _ in range(3)],
    ...     towers={"click": MLP([16, 1]), "like": MLP([16, 1])},
    ...     gate_input_dim=12,
    ... )
    >>> x = torch.randn(5, 12)
    >>> {t: tuple(y.shape) for t, y in model(x).items()}
    {'click': (5, 1), 'like': (5, 1)}
    >>> weights = model.gate_weights(x)["click"]
    >>> tuple(weights.shape), bool(torch.allclose(weights.sum(dim=1), torch.ones(5)))
    ((5, 3), True)
    """

    supports_representation = True

    def __init__(
        self,
        experts: Sequence[nn.Module],
        towers: Mapping[str, nn.Module],
        gate_input_dim: int | None = None,
        gates: Mapping[str, nn.Module] | None = None,
        stem: nn.Module | None = None,
    ) -> None:
        expert_list = check_module_sequence(experts, "experts")
        if stem is not None:
            check_module(stem, "stem")
        names = check_module_mapping(towers, "towers")
        n_experts = len(expert_list)
        if gates is None:
            if gate_input_dim is None:
                raise ValueError(
                    "gate_input_dim is required when gates is None (it sizes the linear gates)"
                )
            dim = check_positive_int(gate_input_dim, "gate_input_dim")
            gate_list: list[nn.Module] = [
                LinearGate(dim, n_experts, label=f"gate of task {t!r}") for t in names
            ]
        else:
            check_module_mapping(gates, "gates")
            check_same_tasks(names, gates.keys(), "gates")
            gate_list = [gates[t] for t in names]
        super().__init__(names)
        self.experts = nn.ModuleList(expert_list)
        self.gates = nn.ModuleList(gate_list)
        self.towers = nn.ModuleList(towers[t] for t in names)
        self.stem = stem
        self._expert_labels = [f"experts[{i}]" for i in range(n_experts)]
        self._check_parameter_partition()

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Predict every task; see :meth:`Architecture.forward`."""
        return self.decode(self.encode(x), x)

    def encode(self, x: Tensor) -> Features:
        """Return the stacked expert outputs ``(batch, n_experts, ...)``.

        Parameters
        ----------
        x : Tensor
            A batch of inputs, ``(batch, ...)``.

        Returns
        -------
        Tensor or tuple of Tensor
            ``(batch, n_experts, ...)``, expert ``i`` at index ``i`` of dimension 1;
            with a stem, the pair ``(stacked, z)`` where ``z`` is the stem output the
            gates read.
        """
        if self.stem is None:
            return stack_outputs([expert(x) for expert in self.experts], self._expert_labels)
        z = self.stem(x)
        stacked = stack_outputs([expert(z) for expert in self.experts], self._expert_labels)
        return stacked, z.view_as(z)

    def decode(self, features: Features, x: Tensor) -> dict[str, Tensor]:
        """Gate the stacked expert outputs per task, then apply the towers.

        Parameters
        ----------
        features : Tensor or tuple of Tensor
            What :meth:`encode` returned: the stacked expert outputs ``(batch,
            n_experts, ...)``, or ``(stacked, z)`` with a stem.
        x : Tensor
            The batch the features were computed from (the gates read it, or read
            ``z`` with a stem).

        Returns
        -------
        dict of str to Tensor
            One prediction per task.
        """
        if self.stem is None:
            if not isinstance(features, Tensor):
                raise TypeError("features must be the tensor returned by encode(x)")
            stacked, gate_input = features, x
        else:
            if isinstance(features, Tensor) or len(features) != 2:
                raise TypeError("features must be the pair (stacked, z) returned by encode(x) "
                                "(the model has a stem)")
            stacked, gate_input = features
        weights = self._softmax_gates(gate_input)
        return {
            t: tower(mix(weights[t], stacked))
            for t, tower in zip(self.task_names, self.towers, strict=True)
        }

    def gate_weights(self, x: Tensor) -> dict[str, Tensor]:
        """Return each task's softmax weights over the experts.

        Parameters
        ----------
        x : Tensor
            A batch of inputs, ``(batch, ...)``.

        Returns
        -------
        dict of str to Tensor
            ``{task: (batch, n_experts)}``; every row is non-negative and sums to 1.
        """
        return self._softmax_gates(x if self.stem is None else self.stem(x))

    def _softmax_gates(self, gate_input: Tensor) -> dict[str, Tensor]:
        n_experts = len(self.experts)
        return {
            t: gate_softmax(gate, gate_input, n_experts, f"gate of task {t!r}")
            for t, gate in zip(self.task_names, self.gates, strict=True)
        }

    def _shared_modules(self) -> Iterable[nn.Module]:
        return (self.experts,) if self.stem is None else (self.experts, self.stem)

    def _task_modules(self, index: int) -> Iterable[nn.Module]:
        return (self.gates[index], self.towers[index])
