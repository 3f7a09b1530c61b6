"""Task graphs: task heads that read other tasks' outputs, run in topological order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import torch
from torch import Tensor, nn

from ._base import Architecture, Features, check_module, check_task_names

INPUT = "x"
SHARED = "shared"

Combine: TypeAlias = Literal["cat", "sum"] | Callable[[list[Tensor]], Tensor] | None


@dataclass(frozen=True, eq=False)
class TaskNode:
    """One task of a :class:`TaskGraph`: a module and the names it reads.

    Parameters
    ----------
    module : nn.Module
        Computes the task's output from its inputs.
    inputs : str or sequence of str, default=("x",)
        What the module reads, in order: ``"x"`` (the model's input), ``"shared"``
        (the graph's encoder output) or other tasks' names (their outputs). A single
        string means one input.
    combine : {"cat", "sum"}, callable or None, default=None
        How several inputs reach the module: ``None`` calls ``module(*inputs)``;
        ``"cat"`` concatenates them along the last dimension; ``"sum"`` adds them
        (with broadcasting); a callable maps the list of inputs to one tensor.

    Raises
    ------
    TypeError
        If ``module`` is not an ``nn.Module``, an input is not a string or ``combine``
        is neither None, "cat", "sum" nor callable.
    ValueError
        If ``inputs`` is empty, repeats a name or ``combine`` is an unknown string.

    Examples
    --------
    >>> from torch import nn
    >>> node = TaskNode(nn.Linear(9, 1), inputs=("shared", "age"), combine="cat")
    >>> node.inputs
    ('shared', 'age')
    """

    module: nn.Module
    inputs: Sequence[str] | str = (INPUT,)
    combine: Combine = None

    def __post_init__(self) -> None:
        check_module(self.module, "module")
        inputs = (self.inputs,) if isinstance(self.inputs, str) else self.inputs
        if not isinstance(inputs, Sequence):
            raise TypeError(
                f"inputs must be a string or a sequence of strings, got {type(inputs).__name__}"
            )
        if len(inputs) == 0:
            raise ValueError("inputs must name at least one input")
        for name in inputs:
            if not isinstance(name, str):
                raise TypeError(f"inputs must be strings, got {name!r}")
        if len(set(inputs)) != len(inputs):
            raise ValueError(f"inputs must not repeat a name, got {list(inputs)}")
        if isinstance(self.combine, str):
            if self.combine not in ("cat", "sum"):
                raise ValueError(
                    f"combine must be None, 'cat', 'sum' or a callable, got {self.combine!r}"
                )
        elif self.combine is not None and not callable(self.combine):
            raise TypeError(
                "combine must be None, 'cat', 'sum' or a callable, "
                f"got {type(self.combine).__name__}"
            )
        object.__setattr__(self, "inputs", tuple(inputs))


class TaskGraph(Architecture):
    r"""Tasks whose heads read the input, a shared encoding or other tasks' outputs.

    Each task is a :class:`TaskNode`; the nodes form a directed acyclic graph (edges
    from the tasks a node reads to the node), checked on construction and executed in
    topological order. A node reads ``"x"`` (the input), ``"shared"`` (the output of
    the optional shared ``encoder``) and/or other tasks' outputs; every node is a task
    and appears in ``forward``'s output.

    Parameters
    ----------
    nodes : mapping of str to TaskNode
        One node per task; the mapping's order fixes :attr:`task_names` (not the
        execution order). Names ``"x"`` and ``"shared"`` are reserved.
    encoder : nn.Module or None, default=None
        Shared encoder whose output is the input ``"shared"``; required if a node reads
        ``"shared"``, and then some node must read it.

    Attributes
    ----------
    encoder : nn.Module or None
        The shared encoder.
    heads : nn.ModuleList
        The nodes' modules, in task order.
    execution_order : tuple of str
        The tasks in the order they are computed (dependencies first).

    Raises
    ------
    TypeError
        If ``nodes`` is not a mapping of :class:`TaskNode` or ``encoder`` is not a
        module.
    ValueError
        If ``nodes`` is empty, a task is called ``"x"`` or ``"shared"``, a node reads an
        unknown name (named in the message), ``"shared"`` is read without an encoder or
        the encoder is unused, the graph has a cycle (the message lists the tasks on
        it), or a module is reused across parts.

    Notes
    -----
    The encoder holds the shared parameters; each node's module belongs to its task.
    A loss on task ``s`` reaches the parameters of every task that ``s`` reads,
    directly or not (that is the point of the graph). With an encoder,
    ``supports_representation`` is True: ``encode(x)`` is the encoder's output and
    ``decode(features, x)`` runs the nodes; without one it is False.

    Examples
    --------
    ESMM (Ma et al., 2018) as a task graph (see also :class:`ESMM`): the click-through
    and conversion towers read the shared embedding, and the click-and-convert
    probability is their product, so it is defined on the whole impression space.

    >>> import torch
    >>> from torch import nn
    >>> class Product(nn.Module):
    ...     def forward(self, a, b):
    ...         return a * b
    >>> graph = TaskGraph(
    ...     {
    ...         "ctr": TaskNode(nn.Sequential(nn.Linear(8, 1), nn.Sigmoid()), "shared"),
    ...         "cvr": TaskNode(nn.Sequential(nn.Linear(8, 1), nn.Sigmoid()), "shared"),
    ...         "ctcvr": TaskNode(Product(), inputs=("ctr", "cvr")),
    ...     },
    ...     encoder=nn.Sequential(nn.Linear(5, 8), nn.ReLU()),
    ... )
    >>> out = graph(torch.randn(4, 5))
    >>> bool(torch.equal(out["ctcvr"], out["ctr"] * out["cvr"]))
    True
    >>> graph.execution_order
    ('ctr', 'cvr', 'ctcvr')
    """

    supports_representation = True

    def __init__(self, nodes: Mapping[str, TaskNode], encoder: nn.Module | None = None) -> None:
        if not isinstance(nodes, Mapping):
            raise TypeError(
                f"nodes must be a mapping from task name to TaskNode, got {type(nodes).__name__}"
            )
        names = check_task_names(nodes.keys(), "nodes")
        for name in names:
            if name in (INPUT, SHARED):
                raise ValueError(f"nodes: {name!r} is reserved for an input and cannot name a task")
            if not isinstance(nodes[name], TaskNode):
                raise TypeError(
                    f"nodes[{name!r}] must be a TaskNode, got {type(nodes[name]).__name__}"
                )
        if encoder is not None:
            check_module(encoder, "encoder")
        _check_inputs(names, nodes, has_encoder=encoder is not None)
        order = _topological_order(names, nodes)
        super().__init__(names)
        self.encoder = encoder
        self.heads = nn.ModuleList(nodes[t].module for t in names)
        self._inputs = {t: tuple(nodes[t].inputs) for t in names}
        self._combine = {t: nodes[t].combine for t in names}
        self._order = order
        if encoder is None:
            self.supports_representation = False
        self._check_parameter_partition()

    @property
    def execution_order(self) -> tuple[str, ...]:
        """tuple of str: The tasks in execution (topological) order."""
        return self._order

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Run every node in topological order; see :meth:`Architecture.forward`."""
        if self.encoder is None:
            return self._run(None, x)
        return self.decode(self.encode(x), x)

    def encode(self, x: Tensor) -> Features:
        """Return the encoder's output; see :meth:`Architecture.encode`."""
        if self.encoder is None:
            return super().encode(x)
        out: Features = self.encoder(x)
        return out

    def decode(self, features: Features, x: Tensor) -> dict[str, Tensor]:
        """Run the nodes on the features and ``x``; see :meth:`Architecture.decode`."""
        if self.encoder is None:
            return super().decode(features, x)
        return self._run(features, x)

    def _run(self, features: Features | None, x: Tensor) -> dict[str, Tensor]:
        values: dict[str, object] = {INPUT: x, SHARED: features}
        for task in self._order:
            module = self.heads[self.task_names.index(task)]
            args = [values[name] for name in self._inputs[task]]
            combine = self._combine[task]
            if combine is None:
                values[task] = module(*args)
            elif combine == "cat":
                values[task] = module(torch.cat(args, dim=-1))  # type: ignore[arg-type]
            elif combine == "sum":
                total = args[0]
                for arg in args[1:]:
                    total = total + arg  # type: ignore[operator]
                values[task] = module(total)
            else:
                values[task] = module(combine(args))  # type: ignore[arg-type,operator]
        return {t: values[t] for t in self.task_names}  # type: ignore[misc]

    def _shared_modules(self) -> Iterable[nn.Module]:
        return () if self.encoder is None else (self.encoder,)

    def _task_modules(self, index: int) -> Iterable[nn.Module]:
        return (self.heads[index],)


def _check_inputs(names: tuple[str, ...], nodes: Mapping[str, TaskNode], has_encoder: bool) -> None:
    known = set(names)
    reads_shared = False
    for task in names:
        for name in nodes[task].inputs:
            if name == SHARED:
                reads_shared = True
                if not has_encoder:
                    raise ValueError(f"nodes[{task!r}] reads 'shared' but no encoder was given")
            elif name != INPUT and name not in known:
                raise ValueError(
                    f"nodes[{task!r}] reads unknown input {name!r}; inputs are 'x', "
                    f"'shared' or a task name from {list(names)}"
                )
    if has_encoder and not reads_shared:
        raise ValueError("encoder is given but no node reads 'shared'")


def _topological_order(names: tuple[str, ...], nodes: Mapping[str, TaskNode]) -> tuple[str, ...]:
    """Depth-first topological sort; raise a ValueError listing a cycle if there is one."""
    deps = {t: [n for n in nodes[t].inputs if n in nodes] for t in names}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    order: list[str] = []
    for root in names:
        if root in state:
            continue
        path: list[str] = [root]
        stack: list[Iterator[str]] = [iter(deps[root])]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                done = path.pop()
                stack.pop()
                state[done] = 2
                order.append(done)
            elif state.get(child) == 1:
                cycle = [*path[path.index(child) :], child]
                raise ValueError(
                    "nodes form a cycle: "
                    + " -> ".join(repr(t) for t in cycle)
                    + " (each task reads the next); a task graph must be acyclic"
                )
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append(iter(deps[child]))
    return tuple(order)
