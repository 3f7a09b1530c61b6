"""Deep architectures built from layer sizes, for configuration files.

The architectures of :mod:`polytask.deep.architectures` are composed from modules the
user passes in; a configuration file only gives sizes.  Each builder here turns
``(in_features, {task: n_outputs}, sizes...)`` into a model made of
:class:`~polytask.deep.architectures.MLP` blocks.  The registry
(:mod:`polytask._registry`) maps configuration names to these functions.

Every builder takes an optional ``stem``, a mapping such as ``{type: lenet}`` or
``{type: embedding, n_ids: 20007, dim: 50}`` (see
:mod:`polytask.deep._architectures.stems`): a module that turns the raw input into a
flat vector, from which the MLP parts then start.  Where the stem sits:

- ``shared_bottom``: one stem, the first part of the shared encoder;
- ``mmoe``, ``cgc``, ``ple``: one stem, run once and read by every expert *and* gate
  of the first level (its cost stays that of shared-bottom's instead of growing with
  the number of experts and gates); shared parameters;
- ``cross_stitch``: one stem per task, the first layer of each column, followed by a
  cross-stitch unit that mixes the stems' outputs;
- ``soft_sharing``: one stem per task tower, tied to the others by the penalty like
  every other layer of the towers.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from polytask.deep._architectures.stems import make_stem
from polytask.deep.architectures import (
    CGC,
    MLP,
    PLE,
    CrossStitch,
    MMoE,
    PLELevel,
    SharedBottom,
    SoftSharing,
)

StemArg = Mapping[str, Any] | None


def _sizes(value: Sequence[int], name: str, allow_empty: bool = False) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list of positive integers, got {value!r}")
    out = list(value)
    if not out and not allow_empty:
        raise ValueError(f"{name} must hold at least one layer size, got []")
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a list of positive integers, got {value!r}")
    return out


def _count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _dropout(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {value!r}")
    return float(value)


def _outputs(outputs: Mapping[str, int]) -> dict[str, int]:
    if not outputs:
        raise ValueError("outputs must name at least one task")
    return {t: _count(n, f"outputs[{t!r}]") for t, n in outputs.items()}


def _block(sizes: list[int], dropout: float) -> MLP:
    """Hidden layers, activated at the end (a representation)."""
    return MLP(sizes, dropout=dropout, activate_last=True)


def _head(d: int, tower: list[int], out: int, dropout: float) -> MLP:
    return MLP([d, *tower, out], dropout=dropout)


def _stem(stem: StemArg, in_features: int) -> tuple[nn.Module | None, int]:
    """A fresh stem and its output width; ``(None, in_features)`` without a stem."""
    stems, d = _stems(stem, in_features, 1)
    return stems[0], d


def _stems(stem: StemArg, in_features: int, n: int) -> tuple[list[nn.Module | None], int]:
    """``n`` fresh stems (one per task) and their output width."""
    d = _count(in_features, "in_features")
    if stem is None:
        return [None] * n, d
    built = [make_stem(stem, d) for _ in range(n)]
    return [m for m, _ in built], built[0][1]


def _with_stem(stem: nn.Module | None, body: nn.Module) -> nn.Module:
    return body if stem is None else nn.Sequential(stem, body)


def shared_bottom(in_features: int, outputs: Mapping[str, int], *,
                  hidden: Sequence[int] = (64,), tower: Sequence[int] = (),
                  dropout: float = 0.0, stem: StemArg = None) -> SharedBottom:
    """Hard parameter sharing: one MLP encoder, one MLP head per task.

    Parameters
    ----------
    in_features : int
        Input dimension.
    outputs : mapping of str to int
        ``{task: n_outputs}`` in task order.
    hidden : sequence of int, default=(64,)
        Sizes of the shared encoder's layers.
    tower : sequence of int, default=()
        Hidden sizes of every task head (empty: a linear head).
    dropout : float, default=0.0
        Dropout after every hidden layer.
    stem : mapping or None, default=None
        Input stem (``{type: lenet, ...}`` or ``{type: embedding, ...}``, see
        :func:`~polytask.deep._architectures.stems.parse_stem`); the first part of
        the shared encoder, whose MLP starts from the stem's output width.

    Returns
    -------
    SharedBottom

    Raises
    ------
    ValueError
        If a size, ``dropout`` or ``stem`` is invalid (the message names it).

    Examples
    --------
    >>> import torch
    >>> model = shared_bottom(5, {"a": 1, "b": 3}, hidden=[8])
    >>> {t: tuple(y.shape) for t, y in model(torch.zeros(2, 5)).items()}
    {'a': (2, 1), 'b': (2, 3)}
    >>> images = shared_bottom(784, {"a": 10}, hidden=[50], stem={"type": "lenet"})
    >>> tuple(images(torch.zeros(2, 784))["a"].shape)
    (2, 10)
    """
    outs, p = _outputs(outputs), _dropout(dropout)
    h = _sizes(hidden, "hidden")
    t = _sizes(tower, "tower", allow_empty=True)
    first, d = _stem(stem, in_features)
    encoder = _with_stem(first, _block([d, *h], p))
    return SharedBottom(encoder, {name: _head(h[-1], t, n, p) for name, n in outs.items()})


def mmoe(in_features: int, outputs: Mapping[str, int], *, n_experts: int = 4,
         expert: Sequence[int] = (32,), tower: Sequence[int] = (16,),
         dropout: float = 0.0, stem: StemArg = None) -> MMoE:
    """Multi-gate mixture of MLP experts with one gate and one MLP tower per task.

    Parameters
    ----------
    in_features : int
        Input dimension.
    outputs : mapping of str to int
        ``{task: n_outputs}``.
    n_experts : int, default=4
        Number of shared experts.
    expert : sequence of int, default=(32,)
        Layer sizes of every expert.
    tower : sequence of int, default=(16,)
        Hidden sizes of every task tower.
    dropout : float, default=0.0
        Dropout after every hidden layer.
    stem : mapping or None, default=None
        Input stem (``{type: lenet, ...}`` or ``{type: embedding, ...}``, see
        :func:`~polytask.deep._architectures.stems.parse_stem`); one shared module run
        once per batch, read by every expert and every gate (so a CNN stem costs what
        it costs in shared-bottom, not once per expert and gate).

    Returns
    -------
    MMoE

    Raises
    ------
    ValueError
        If a size, count, ``dropout`` or ``stem`` is invalid (the message names it).

    Examples
    --------
    >>> import torch
    >>> model = mmoe(4, {"a": 1, "b": 1}, n_experts=2, expert=[8], tower=[4])
    >>> sorted(model(torch.zeros(3, 4)))
    ['a', 'b']
    >>> tokens = mmoe(5, {"a": 3}, stem={"type": "embedding", "n_ids": 40, "dim": 6})
    >>> tuple(tokens(torch.ones(2, 5))["a"].shape)
    (2, 3)
    """
    outs, p = _outputs(outputs), _dropout(dropout)
    e, t = _sizes(expert, "expert"), _sizes(tower, "tower", allow_empty=True)
    first, d = _stem(stem, in_features)
    experts = [_block([d, *e], p) for _ in range(_count(n_experts, "n_experts"))]
    towers = {name: _head(e[-1], t, n, p) for name, n in outs.items()}
    return MMoE(experts, towers, gate_input_dim=d, stem=first)


def _level(d: int, names: Sequence[str], n_shared: int, n_task: int, e: list[int],
           p: float) -> PLELevel:
    return PLELevel(
        shared_experts=[_block([d, *e], p) for _ in range(n_shared)],
        task_experts={t: [_block([d, *e], p) for _ in range(n_task)] for t in names},
        gate_input_dim=d,
    )


def cgc(in_features: int, outputs: Mapping[str, int], *, n_shared: int = 2, n_task: int = 1,
        expert: Sequence[int] = (32,), tower: Sequence[int] = (16,),
        dropout: float = 0.0, stem: StemArg = None) -> CGC:
    """Customized gate control: shared and task-specific MLP experts, gated per task.

    Parameters
    ----------
    in_features : int
        Input dimension.
    outputs : mapping of str to int
        ``{task: n_outputs}``.
    n_shared, n_task : int, default=2, 1
        Shared experts, and experts of every task.
    expert : sequence of int, default=(32,)
        Layer sizes of every expert.
    tower : sequence of int, default=(16,)
        Hidden sizes of every task tower.
    dropout : float, default=0.0
        Dropout after every hidden layer.
    stem : mapping or None, default=None
        Input stem (``{type: lenet, ...}`` or ``{type: embedding, ...}``, see
        :func:`~polytask.deep._architectures.stems.parse_stem`); one shared module run
        once per batch, read by every expert and every gate.

    Returns
    -------
    CGC

    Raises
    ------
    ValueError
        If a size, count, ``dropout`` or ``stem`` is invalid (the message names it).

    Examples
    --------
    >>> import torch
    >>> model = cgc(4, {"a": 1, "b": 1}, expert=[8], tower=[])
    >>> sorted(model(torch.zeros(3, 4)))
    ['a', 'b']
    """
    outs, p = _outputs(outputs), _dropout(dropout)
    e, t = _sizes(expert, "expert"), _sizes(tower, "tower", allow_empty=True)
    ns, nt = _count(n_shared, "n_shared"), _count(n_task, "n_task")
    first, d = _stem(stem, in_features)
    lvl = _level(d, list(outs), ns, nt, e, p)
    towers = {name: _head(e[-1], t, n, p) for name, n in outs.items()}
    return CGC(lvl.shared_experts, lvl.task_experts, towers, gate_input_dim=d, stem=first)


def ple(in_features: int, outputs: Mapping[str, int], *, n_levels: int = 2, n_shared: int = 2,
        n_task: int = 1, expert: Sequence[int] = (32,), tower: Sequence[int] = (16,),
        dropout: float = 0.0, stem: StemArg = None) -> PLE:
    """Progressive layered extraction: ``n_levels`` stacked CGC levels of MLP experts.

    Parameters
    ----------
    in_features : int
        Input dimension.
    outputs : mapping of str to int
        ``{task: n_outputs}``.
    n_levels : int, default=2
        Number of extraction levels.
    n_shared, n_task : int, default=2, 1
        Shared experts, and experts of every task, at every level.
    expert : sequence of int, default=(32,)
        Layer sizes of every expert.
    tower : sequence of int, default=(16,)
        Hidden sizes of every task tower.
    dropout : float, default=0.0
        Dropout after every hidden layer.
    stem : mapping or None, default=None
        Input stem (``{type: lenet, ...}`` or ``{type: embedding, ...}``, see
        :func:`~polytask.deep._architectures.stems.parse_stem`); one shared module run
        once per batch, read by every expert and gate of the first level.

    Returns
    -------
    PLE

    Raises
    ------
    ValueError
        If a size, count, ``dropout`` or ``stem`` is invalid (the message names it).

    Examples
    --------
    >>> import torch
    >>> model = ple(4, {"a": 1, "b": 1}, n_levels=2, expert=[8])
    >>> sorted(model(torch.zeros(3, 4)))
    ['a', 'b']
    """
    outs, p = _outputs(outputs), _dropout(dropout)
    e, t = _sizes(expert, "expert"), _sizes(tower, "tower", allow_empty=True)
    ns, nt = _count(n_shared, "n_shared"), _count(n_task, "n_task")
    n = _count(n_levels, "n_levels")
    first, d = _stem(stem, in_features)
    levels = [_level(d if i == 0 else e[-1], list(outs), ns, nt, e, p) for i in range(n)]
    return PLE(levels, {name: _head(e[-1], t, k, p) for name, k in outs.items()}, stem=first)


def cross_stitch(in_features: int, outputs: Mapping[str, int], *,
                 hidden: Sequence[int] = (32, 32), tower: Sequence[int] = (),
                 dropout: float = 0.0, stem: StemArg = None) -> CrossStitch:
    """One MLP column per task, mixed by a cross-stitch unit after every hidden layer.

    Parameters
    ----------
    in_features : int
        Input dimension.
    outputs : mapping of str to int
        ``{task: n_outputs}``.
    hidden : sequence of int, default=(32, 32)
        Sizes of every column's layers (one cross-stitch unit after each).
    tower : sequence of int, default=()
        Hidden sizes of every head.
    dropout : float, default=0.0
        Dropout after every hidden layer.
    stem : mapping or None, default=None
        Input stem (``{type: lenet, ...}`` or ``{type: embedding, ...}``, see
        :func:`~polytask.deep._architectures.stems.parse_stem`); one stem per task,
        the first layer of its column, followed by a cross-stitch unit that mixes the
        stems' outputs (as Misra et al. mix after every pooled convolution block).

    Returns
    -------
    CrossStitch

    Raises
    ------
    ValueError
        If a size, ``dropout`` or ``stem`` is invalid (the message names it).

    Examples
    --------
    >>> import torch
    >>> model = cross_stitch(4, {"a": 1, "b": 2}, hidden=[8, 8])
    >>> {t: tuple(y.shape) for t, y in model(torch.zeros(3, 4)).items()}
    {'a': (3, 1), 'b': (3, 2)}
    """
    outs, p = _outputs(outputs), _dropout(dropout)
    h, t = _sizes(hidden, "hidden"), _sizes(tower, "tower", allow_empty=True)
    stems, d = _stems(stem, in_features, len(outs))

    def column(first: nn.Module | None) -> list[nn.Module]:
        blocks: list[nn.Module] = [_block([a, b], p) for a, b in itertools.pairwise([d, *h])]
        return blocks if first is None else [first, *blocks]

    return CrossStitch({name: column(first) for name, first in zip(outs, stems, strict=True)},
                       {name: _head(h[-1], t, n, p) for name, n in outs.items()})


def soft_sharing(in_features: int, outputs: Mapping[str, int], *,
                 hidden: Sequence[int] = (32,), strength: float = 1e-3,
                 trace_norm_strength: float = 0.0, dropout: float = 0.0,
                 stem: StemArg = None) -> SoftSharing:
    """One MLP per task, tied by a penalty on the distance between their weights.

    Parameters
    ----------
    in_features : int
        Input dimension.
    outputs : mapping of str to int
        ``{task: n_outputs}``.
    hidden : sequence of int, default=(32,)
        Hidden sizes of every task's MLP.
    strength, trace_norm_strength : float, default=1e-3, 0.0
        Penalty levels (see :class:`~polytask.deep.architectures.SoftSharing`).
    dropout : float, default=0.0
        Dropout after every hidden layer.
    stem : mapping or None, default=None
        Input stem (``{type: lenet, ...}`` or ``{type: embedding, ...}``, see
        :func:`~polytask.deep._architectures.stems.parse_stem`); one stem per task,
        the first part of its tower; the penalty ties the stems like every other
        layer (so the embedding tables or convolutions are pulled together too).

    Returns
    -------
    SoftSharing

    Raises
    ------
    ValueError
        If a size, ``dropout`` or ``stem`` is invalid, or the tasks' output counts
        differ (the message names it).

    Examples
    --------
    >>> import torch
    >>> model = soft_sharing(4, {"a": 1, "b": 1}, hidden=[8])
    >>> sorted(model(torch.zeros(3, 4)))
    ['a', 'b']
    """
    outs, p = _outputs(outputs), _dropout(dropout)
    h = _sizes(hidden, "hidden")
    if len(set(outs.values())) > 1:
        raise ValueError(f"soft_sharing ties identical towers, so every task needs the same "
                         f"number of outputs; got {outs}")
    stems, d = _stems(stem, in_features, len(outs))
    towers = {name: _with_stem(first, MLP([d, *h, n], dropout=p))
              for (name, n), first in zip(outs.items(), stems, strict=True)}
    return SoftSharing(towers, strength=strength, trace_norm_strength=trace_norm_strength)


__all__ = ["cgc", "cross_stitch", "mmoe", "ple", "shared_bottom", "soft_sharing"]
