"""Deep multi-task learning in PyTorch.

Three orthogonal pieces, composed by the user and passed to the trainer:

- :mod:`polytask.deep.architectures`: how parameters are shared (SharedBottom,
  SoftSharing, CrossStitch, MMoE, CGC/PLE, TaskGraph/ESMM);
- :mod:`polytask.deep.weighting`: loss weightings with explicit state (equal, static,
  uncertainty, GradNorm, DWA, RLW, FAMO, DB-MTL);
- :mod:`polytask.deep.aggregation`: Gramian weightings and Jacobian aggregators (MGDA,
  PCGrad, GradVac, CAGrad, IMTL, Nash-MTL, Aligned-MTL, UPGrad).

Import the submodules for the full API; the most used names are re-exported here.
"""

from polytask.deep.aggregation import (
    IMTLG,
    MGDA,
    Aggregator,
    AlignedMTL,
    CAGrad,
    GradVac,
    GramianAggregator,
    Mean,
    NashMTL,
    PCGrad,
    Sum,
    UPGrad,
    Weighting,
)
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
from polytask.deep.backward import (
    BackwardResult,
    gradient_cosine,
    mtl_backward,
    per_task_gradients,
)
from polytask.deep.trainer import (
    History,
    STLResult,
    Trainer,
    TrainingError,
    task_param_groups,
    train_single_task,
)
from polytask.deep.weighting import (
    DBMTL,
    DWA,
    FAMO,
    RLW,
    EqualWeighting,
    GradNorm,
    LossWeighting,
    StaticWeighting,
    UncertaintyWeighting,
)

__all__ = [
    "CGC",
    "DBMTL",
    "DWA",
    "ESMM",
    "FAMO",
    "IMTLG",
    "MGDA",
    "MLP",
    "PLE",
    "RLW",
    "Aggregator",
    "AlignedMTL",
    "Architecture",
    "BackwardResult",
    "CAGrad",
    "CrossStitch",
    "EqualWeighting",
    "GradNorm",
    "GradVac",
    "GramianAggregator",
    "History",
    "LossWeighting",
    "MMoE",
    "Mean",
    "NashMTL",
    "PCGrad",
    "PLELevel",
    "STLResult",
    "SharedBottom",
    "SoftSharing",
    "StaticWeighting",
    "Sum",
    "TaskGraph",
    "TaskNode",
    "Trainer",
    "TrainingError",
    "UPGrad",
    "UncertaintyWeighting",
    "Weighting",
    "gradient_cosine",
    "mtl_backward",
    "per_task_gradients",
    "task_param_groups",
    "train_single_task",
]
