"""Deep multi-task architectures.

Every architecture is a :class:`torch.nn.Module` built by composition from the
encoders, experts, towers and heads the user passes (an MLP, a CNN, a transformer…);
``forward(x)`` returns ``{task: prediction}``, and the parameters split into
``shared_parameters()`` and ``task_parameters(task)``. Architectures with a shared
representation (``supports_representation``) also split the forward pass into
``encode(x)`` and ``decode(features, x)``, for per-task gradients with respect to the
representation.

========================  ==========================================================
:class:`SharedBottom`     hard parameter sharing (Caruana, 1997)
:class:`SoftSharing`      one tower per task, tied by a penalty (Duong et al., 2015;
                          Yang & Hospedales, 2017)
:class:`CrossStitch`      per-task columns mixed by cross-stitch units (Misra et al.,
                          2016)
:class:`MMoE`             multi-gate mixture-of-experts (Ma et al., 2018)
:class:`CGC`, :class:`PLE`  progressive layered extraction (Tang et al., 2020)
:class:`TaskGraph`        task heads that read other tasks' outputs (a DAG)
:class:`ESMM`             entire space multi-task model (Ma et al., 2018)
========================  ==========================================================
"""

from ._architectures._base import Architecture, Features
from ._architectures._cross_stitch import CrossStitch, CrossStitchUnit
from ._architectures._esmm import ESMM
from ._architectures._mlp import MLP
from ._architectures._mmoe import MMoE
from ._architectures._ple import CGC, PLE
from ._architectures._ple_level import PLELevel
from ._architectures._shared_bottom import SharedBottom
from ._architectures._soft_sharing import SoftSharing
from ._architectures._task_graph import TaskGraph, TaskNode

__all__ = [
    "CGC",
    "ESMM",
    "MLP",
    "PLE",
    "Architecture",
    "CrossStitch",
    "CrossStitchUnit",
    "Features",
    "MMoE",
    "PLELevel",
    "SharedBottom",
    "SoftSharing",
    "TaskGraph",
    "TaskNode",
]
