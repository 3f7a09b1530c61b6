"""Lookahead inter-task affinity (TAG, Fifty et al., 2021).

How much does a gradient step on task ``j`` alone change the loss of task ``i`` on the
same batch?  With ``θ_s`` the shared parameters, ``θ_i`` task ``i``'s own parameters and
``θ_s^{t+1|j} = θ_s^t − η ∇_{θ_s} L_j(θ_s^t, θ_j)`` (one SGD step on task ``j``'s loss),
Fifty et al. define the affinity of ``j`` onto ``i`` as

    Z_{j→i} = 1 − L_i(θ_s^{t+1|j}, θ_i) / L_i(θ_s^t, θ_i),

positive when the step on ``j`` also lowers the loss of ``i``.  Averaged over training
it is a cheap estimate of which tasks help each other.

**Orientation.**  Every relatedness matrix in :mod:`polytask.relate` reads
``A[i, j]`` = *effect of task j on task i* (row = the task that is affected), so the
matrix returned here is ``A[i, j] = Z_{j→i}``, the transpose of the paper's
``Z_{i→j}`` table; it can be handed to :func:`~polytask.relate.select_task_groups`
as is.
"""

from polytask.relate._affinity_tracker import AffinityTracker, TaskAffinity
from polytask.relate._lookahead import lookahead_affinity

__all__ = ["AffinityTracker", "TaskAffinity", "lookahead_affinity"]
