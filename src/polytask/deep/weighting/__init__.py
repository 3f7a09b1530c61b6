"""Loss weightings for deep multi-task learning: task losses to one scalar objective.

Every weighting is an ``nn.Module`` with explicit state (buffers and parameters saved
by ``state_dict``): ``forward(losses, *, gramian=None)`` returns the scalar to
backpropagate and never changes the state; ``update(losses, ...)`` (after each
optimizer step), ``update_epoch(...)`` (after each epoch) and ``reset()`` are the only
state changes. See :class:`LossWeighting` for the contract and the training step.

==========================  ==================================================
``EqualWeighting``          sum of the losses
``StaticWeighting``         fixed user weights
``UncertaintyWeighting``    learned homoscedastic uncertainty (Kendall et al. 2018)
``GradNorm``                equal training rates via gradient norms (Chen et al. 2018)
``DWA``                     dynamic weight average (Liu et al. 2019)
``RLW``                     random loss weighting (Lin et al. 2022)
``FAMO``                    fast adaptive multitask optimization (Liu et al. 2023)
``DBMTL``                   dual balancing: log losses, max-norm gradients (Lin et al. 2023)
==========================  ==================================================
"""

from ._base import LossWeighting, task_gramian
from ._dbmtl import DBMTL, dbmtl_scales
from ._dwa import DWA, dwa_weights
from ._equal import EqualWeighting, StaticWeighting
from ._famo import FAMO, famo_logit_gradient
from ._gradnorm import GradNorm, gradnorm_weight_gradient
from ._rlw import RLW, RLWDistribution, sample_rlw_weights
from ._uncertainty import UncertaintyWeighting

__all__ = [
    "DBMTL",
    "DWA",
    "FAMO",
    "RLW",
    "EqualWeighting",
    "GradNorm",
    "LossWeighting",
    "RLWDistribution",
    "StaticWeighting",
    "UncertaintyWeighting",
    "dbmtl_scales",
    "dwa_weights",
    "famo_logit_gradient",
    "gradnorm_weight_gradient",
    "sample_rlw_weights",
    "task_gramian",
]
