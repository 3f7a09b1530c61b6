"""A zoo of small architectures over interchangeable backbones, for the architecture tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from polytask.deep.architectures import (
    CGC,
    ESMM,
    MLP,
    PLE,
    Architecture,
    CrossStitch,
    MMoE,
    PLELevel,
    SharedBottom,
    SoftSharing,
    TaskGraph,
    TaskNode,
)

TASK_DIMS = {"a": 1, "b": 3, "c": 2}


class MeanTokens(nn.Module):
    """Average a (batch, tokens, features) sequence over its tokens."""

    def forward(self, h: Tensor) -> Tensor:
        return h.mean(dim=1)


@dataclass(frozen=True)
class Backbone:
    """How to build blocks and heads for one kind of input."""

    make_x: Callable[[], Tensor]
    block: Callable[[bool], nn.Module]  # first level (reads x) or later (reads a block's output)
    head: Callable[[int], nn.Module]
    in_flat: int  # flattened size of x
    feat_flat: int  # flattened size of a block's output


def _transformer_block(first: bool) -> nn.Module:
    return nn.TransformerEncoderLayer(
        d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True
    )


BACKBONES = {
    "mlp": Backbone(
        make_x=lambda: torch.randn(5, 6),
        block=lambda first: MLP([6 if first else 8, 8], activate_last=True),
        head=lambda d: MLP([8, 4, d]),
        in_flat=6,
        feat_flat=8,
    ),
    "cnn": Backbone(
        make_x=lambda: torch.randn(3, 2, 4, 4),
        block=lambda first: nn.Sequential(nn.Conv2d(2 if first else 3, 3, 3, padding=1), nn.ReLU()),
        head=lambda d: nn.Sequential(
            nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, d)
        ),
        in_flat=2 * 4 * 4,
        feat_flat=3 * 4 * 4,
    ),
    "transformer": Backbone(
        make_x=lambda: torch.randn(3, 5, 8),
        block=_transformer_block,
        head=lambda d: nn.Sequential(MeanTokens(), nn.Linear(8, d)),
        in_flat=5 * 8,
        feat_flat=5 * 8,
    ),
}


def _ple(bb: Backbone, n_levels: int) -> PLE:
    levels = [
        PLELevel(
            shared_experts=[bb.block(k == 0) for _ in range(2)],
            task_experts={t: [bb.block(k == 0)] for t in TASK_DIMS},
            gate_input_dim=bb.in_flat if k == 0 else bb.feat_flat,
        )
        for k in range(n_levels)
    ]
    return PLE(levels, {t: bb.head(d) for t, d in TASK_DIMS.items()})


def _task_graph(bb: Backbone) -> TaskGraph:
    return TaskGraph(
        {
            "c": TaskNode(MLP([1 + 3, 2]), inputs=("a", "b"), combine="cat"),
            "a": TaskNode(bb.head(1), inputs="shared"),
            "b": TaskNode(bb.head(3), inputs="shared"),
        },
        encoder=bb.block(True),
    )


BUILDERS: dict[str, Callable[[Backbone], Architecture]] = {
    "shared_bottom": lambda bb: SharedBottom(
        bb.block(True), {t: bb.head(d) for t, d in TASK_DIMS.items()}
    ),
    "soft_sharing": lambda bb: SoftSharing(
        {t: nn.Sequential(bb.block(True), bb.head(2)) for t in TASK_DIMS},
        strength=0.1,
        trace_norm_strength=0.01,
    ),
    "cross_stitch": lambda bb: CrossStitch(
        {t: [bb.block(True), bb.block(False)] for t in TASK_DIMS},
        {t: bb.head(d) for t, d in TASK_DIMS.items()},
    ),
    "mmoe": lambda bb: MMoE(
        [bb.block(True) for _ in range(3)],
        {t: bb.head(d) for t, d in TASK_DIMS.items()},
        gate_input_dim=bb.in_flat,
    ),
    "cgc": lambda bb: CGC(
        [bb.block(True) for _ in range(2)],
        {t: [bb.block(True)] for t in TASK_DIMS},
        {t: bb.head(d) for t, d in TASK_DIMS.items()},
        gate_input_dim=bb.in_flat,
    ),
    "ple2": lambda bb: _ple(bb, 2),
    "ple3": lambda bb: _ple(bb, 3),
    "task_graph": _task_graph,
    "esmm": lambda bb: ESMM(bb.block(True), bb.head(1), bb.head(1)),
}

# For each architecture: the tasks whose parameters a loss on task s reaches.
ALL = frozenset(TASK_DIMS)
REACH: dict[str, dict[str, frozenset[str]]] = {
    "shared_bottom": {t: frozenset({t}) for t in TASK_DIMS},
    "soft_sharing": {t: frozenset({t}) for t in TASK_DIMS},
    "cross_stitch": {t: ALL for t in TASK_DIMS},
    "mmoe": {t: frozenset({t}) for t in TASK_DIMS},
    "cgc": {t: frozenset({t}) for t in TASK_DIMS},
    "ple2": {t: ALL for t in TASK_DIMS},
    "ple3": {t: ALL for t in TASK_DIMS},
    "task_graph": {"a": frozenset({"a"}), "b": frozenset({"b"}), "c": ALL},
    "esmm": {
        "ctr": frozenset({"ctr"}),
        "cvr": frozenset({"cvr"}),
        "ctcvr": frozenset({"ctr", "cvr"}),
    },
}


@dataclass
class Case:
    model: Architecture
    x: Tensor
    shapes: dict[str, tuple[int, int]]
    reach: dict[str, frozenset[str]]


def build_case(arch: str, backbone: str, seed: int = 0) -> Case:
    torch.manual_seed(seed)
    bb = BACKBONES[backbone]
    model = BUILDERS[arch](bb)
    x = bb.make_x()
    n = x.shape[0]
    if arch == "esmm":
        shapes = {t: (n, 1) for t in ("ctr", "cvr", "ctcvr")}
    elif arch == "soft_sharing":
        shapes = {t: (n, 2) for t in TASK_DIMS}
    else:
        shapes = {t: (n, d) for t, d in TASK_DIMS.items()}
    return Case(model, x, shapes, REACH[arch])


@pytest.fixture
def make_case() -> Callable[..., Case]:
    """Build ``Case(model, x, shapes, reach)`` for an architecture name and a backbone."""
    return build_case
