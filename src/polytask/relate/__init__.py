"""Task relatedness and negative transfer: which tasks help each other, and which hurt.

Every relatedness matrix here reads ``A[i, j]`` = *effect of task j on task i* (row =
the task affected), and every summary object exposes it as ``.matrix`` next to its
``.task_names``, so any of them can be handed to the grouping functions.

Measured during training (cheap)
    :func:`cosine_from_gramian`, :class:`GradientSimilarityTracker`,
    :func:`measure_gradient_similarity` — gradient cosine and conflict frequency
    (Yu et al., 2020), read from the Gramian the trainer already has.
    :func:`lookahead_affinity`, :class:`AffinityTracker` — lookahead inter-task
    affinity (TAG, Fifty et al., 2021).

Read from fitted linear models
    :func:`weight_cosine`, :func:`weight_distance`, :func:`trace_norm_task_covariance`
    (Argyriou et al., 2008), :func:`clustered_task_structure` (Zhou et al., 2011),
    :func:`mean_regularized_distances` (Evgeniou & Pontil, 2004).

Ground truth (expensive) and negative transfer
    :func:`pairwise_transfer` (Standley et al., 2020), :func:`rank_agreement`,
    :func:`negative_transfer`.

Grouping
    :func:`select_task_groups` (TAG's overlapping groups), :func:`partition_tasks`,
    :func:`grouping_score`.

Importing this package does not import torch; only the functions that take a model do.
"""

from polytask.relate.affinity import AffinityTracker, TaskAffinity, lookahead_affinity
from polytask.relate.gradients import (
    GradientSimilarity,
    GradientSimilarityTracker,
    cosine_from_gramian,
    measure_gradient_similarity,
)
from polytask.relate.grouping import (
    AUTO_EXACT_MAX_TASKS,
    TaskGrouping,
    grouping_score,
    partition_tasks,
    select_task_groups,
)
from polytask.relate.linear import (
    TaskClusters,
    clustered_task_structure,
    mean_regularized_distances,
    task_weights,
    trace_norm_task_covariance,
    weight_cosine,
    weight_distance,
)
from polytask.relate.transfer import (
    TransferMatrix,
    negative_transfer,
    pairwise_transfer,
    rank_agreement,
)

__all__ = [
    "AUTO_EXACT_MAX_TASKS",
    "AffinityTracker",
    "GradientSimilarity",
    "GradientSimilarityTracker",
    "TaskAffinity",
    "TaskClusters",
    "TaskGrouping",
    "TransferMatrix",
    "clustered_task_structure",
    "cosine_from_gramian",
    "grouping_score",
    "lookahead_affinity",
    "mean_regularized_distances",
    "measure_gradient_similarity",
    "negative_transfer",
    "pairwise_transfer",
    "partition_tasks",
    "rank_agreement",
    "select_task_groups",
    "task_weights",
    "trace_norm_task_covariance",
    "weight_cosine",
    "weight_distance",
]
