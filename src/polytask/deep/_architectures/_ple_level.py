"""One extraction level of PLE: its user-facing description and its registered modules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ._base import (
    check_module,
    check_module_mapping,
    check_module_sequence,
    check_positive_int,
    check_same_tasks,
)
from ._mixture import LinearGate, gate_softmax, mix, stack_outputs


@dataclass(frozen=True, eq=False)
class PLELevel:
    """The modules of one extraction level of :class:`PLE` (a plain description).

    Pass fresh modules for every level and task (e.g. built by a list comprehension):
    :class:`PLE` raises a ValueError if one module serves two parts (the shared part
    and a task, or two tasks).

    Parameters
    ----------
    shared_experts : sequence of nn.Module
        At least one expert shared by all tasks.
    task_experts : mapping of str to sequence of nn.Module
        At least one expert per task, for every task of the model. All experts of a
        level (shared and task) must return the same shape.
    gate_input_dim : int or None, default=None
        Features of the gate input once flattened to ``(batch, -1)``: of ``x`` at the
        first level, of the previous level's outputs (the experts' output) afterwards.
        Builds the linear gates that ``task_gates``/``shared_gate`` leave out.
    task_gates : mapping of str to nn.Module or None, default=None
        Custom task gates returning logits ``(batch, n_task_experts + n_shared)``.
    shared_gate : nn.Module or None, default=None
        Custom shared gate returning logits ``(batch, n_all_experts)``; only for a
        non-final level (the final level has no shared gate).

    Examples
    --------
    >>> from torch import nn
    >>> level = PLELevel(
    ...     shared_experts=[nn.Linear(4, 8), nn.Linear(4, 8)],
    ...     task_experts={"a": [nn.Linear(4, 8)], "b": [nn.Linear(4, 8)]},
    ...     gate_input_dim=4,
    ... )
    >>> len(level.shared_experts), sorted(level.task_experts)
    (2, ['a', 'b'])
    """

    shared_experts: Sequence[nn.Module]
    task_experts: Mapping[str, Sequence[nn.Module]]
    gate_input_dim: int | None = None
    task_gates: Mapping[str, nn.Module] | None = None
    shared_gate: nn.Module | None = None


class ExtractionLayer(nn.Module):
    """The registered modules of one validated :class:`PLELevel`."""

    def __init__(self, level: object, index: int, names: tuple[str, ...], final: bool) -> None:
        super().__init__()
        where = f"levels[{index}]"
        if not isinstance(level, PLELevel):
            raise TypeError(f"{where} must be a PLELevel, got {type(level).__name__}")
        shared = check_module_sequence(level.shared_experts, f"{where}.shared_experts")
        if not isinstance(level.task_experts, Mapping):
            raise TypeError(
                f"{where}.task_experts must be a mapping from task name to a sequence of "
                f"torch.nn.Module, got {type(level.task_experts).__name__}"
            )
        check_same_tasks(names, level.task_experts.keys(), f"{where}.task_experts")
        per_task = [
            check_module_sequence(level.task_experts[t], f"{where}.task_experts[{t!r}]")
            for t in names
        ]
        n_shared = len(shared)
        n_all = n_shared + sum(len(e) for e in per_task)
        if final and level.shared_gate is not None:
            raise ValueError(
                f"{where}.shared_gate must be None: the final level has no shared gate"
            )
        needs_linear = level.task_gates is None or (not final and level.shared_gate is None)
        dim = 0
        if needs_linear:
            if level.gate_input_dim is None:
                raise ValueError(
                    f"{where}.gate_input_dim is required to build the default linear gates"
                )
            dim = check_positive_int(level.gate_input_dim, f"{where}.gate_input_dim")
        if level.task_gates is None:
            gates: list[nn.Module] = [
                LinearGate(dim, len(e) + n_shared, f"{where} gate of task {t!r}")
                for t, e in zip(names, per_task, strict=True)
            ]
        else:
            check_module_mapping(level.task_gates, f"{where}.task_gates")
            check_same_tasks(names, level.task_gates.keys(), f"{where}.task_gates")
            gates = [level.task_gates[t] for t in names]
        shared_gate: nn.Module | None = None
        if not final:
            shared_gate = (
                LinearGate(dim, n_all, f"{where} shared gate")
                if level.shared_gate is None
                else check_module(level.shared_gate, f"{where}.shared_gate")
            )
        self.shared_experts = nn.ModuleList(shared)
        self.task_experts = nn.ModuleList(nn.ModuleList(e) for e in per_task)
        self.task_gates = nn.ModuleList(gates)
        self.shared_gate = shared_gate
        self._where = where
        self._names = names
        self._n_all = n_all

    def shared_stack(self, shared_input: Tensor) -> Tensor:
        """Shared experts' outputs, ``(batch, n_shared, ...)``."""
        labels = [f"{self._where}.shared_experts[{i}]" for i in range(len(self.shared_experts))]
        return stack_outputs([e(shared_input) for e in self.shared_experts], labels)

    def mix_tasks(
        self, task_inputs: Sequence[Tensor], shared: Tensor
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Each task's gated output, its gate weights and its experts' stacked outputs."""
        outputs, weights, stacks = [], [], []
        for t, experts, gate, inp in zip(
            self._names, self.task_experts, self.task_gates, task_inputs, strict=True
        ):
            assert isinstance(experts, nn.ModuleList)
            labels = [f"{self._where}.task_experts[{t!r}][{i}]" for i in range(len(experts))]
            stack = stack_outputs([e(inp) for e in experts], labels)
            both = _cat_experts([stack, shared], f"{self._where}: task {t!r}")
            w = gate_softmax(gate, inp, both.shape[1], f"{self._where} gate of task {t!r}")
            outputs.append(mix(w, both))
            weights.append(w)
            stacks.append(stack)
        return outputs, weights, stacks

    def mix_shared(self, shared_input: Tensor, stacks: list[Tensor], shared: Tensor) -> Tensor:
        """The shared gate's mixture of all the level's experts (non-final levels)."""
        assert self.shared_gate is not None
        everything = _cat_experts([*stacks, shared], f"{self._where}: shared gate")
        w = gate_softmax(self.shared_gate, shared_input, self._n_all, f"{self._where} shared gate")
        return mix(w, everything)


def _cat_experts(stacks: list[Tensor], where: str) -> Tensor:
    shape = tuple(stacks[-1].shape)
    for stack in stacks:
        if stack.shape[0] != shape[0] or tuple(stack.shape[2:]) != shape[2:]:
            raise ValueError(
                f"{where}: task experts return shape {(stack.shape[0], *stack.shape[2:])} but "
                f"shared experts return {(shape[0], *shape[2:])}; experts mixed by one gate "
                "must return the same shape"
            )
    return torch.cat(stacks, dim=1)
