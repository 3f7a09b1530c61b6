"""Gradient aggregators for multi-task learning, at two levels.

A :class:`Weighting` maps the task Gramian ``G = J Jᵀ`` of shape ``(n_tasks, n_tasks)``
to weights ``w`` of shape ``(n_tasks,)``; an :class:`Aggregator` maps the Jacobian ``J``
of shape ``(n_tasks, n_params)`` (one gradient per row) to one update ``Jᵀ w`` of shape
``(n_params,)``.  Every method ships both (``MGDA`` and ``MGDAWeighting``, ...), so a
training loop can either aggregate the Jacobian or, faster, compute only the Gramian and
run one backward pass of ``Σ_i w_i L_i``.

Aggregators and weightings are immutable; randomness comes only from a
``torch.Generator``; GradVac's running targets live in an explicit
:class:`GradVacState`.
"""

from ._aligned_mtl import AlignedMTL, AlignedMTLWeighting
from ._base import (
    AggregationWarning,
    Aggregator,
    GramianAggregator,
    Weighting,
    compute_gramian,
)
from ._cagrad import CAGrad, CAGradWeighting
from ._gradvac import GradVac, GradVacState, GradVacWeighting
from ._imtl import IMTLG, IMTLGWeighting
from ._mean import Mean, MeanWeighting, Sum, SumWeighting
from ._mgda import MGDA, MGDAWeighting
from ._nash_mtl import NashMTL, NashMTLWeighting
from ._pcgrad import PCGrad, PCGradWeighting
from ._upgrad import UPGrad, UPGradWeighting

__all__ = [
    "IMTLG",
    "MGDA",
    "AggregationWarning",
    "Aggregator",
    "AlignedMTL",
    "AlignedMTLWeighting",
    "CAGrad",
    "CAGradWeighting",
    "GradVac",
    "GradVacState",
    "GradVacWeighting",
    "GramianAggregator",
    "IMTLGWeighting",
    "MGDAWeighting",
    "Mean",
    "MeanWeighting",
    "NashMTL",
    "NashMTLWeighting",
    "PCGrad",
    "PCGradWeighting",
    "Sum",
    "SumWeighting",
    "UPGrad",
    "UPGradWeighting",
    "Weighting",
    "compute_gramian",
]
