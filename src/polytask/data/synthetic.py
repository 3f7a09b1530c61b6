"""Synthetic multi-task regression problems with a known, tunable relatedness.

Every generator is seeded through ``random_state`` and returns a
:class:`SyntheticTasks`: the data (``X``, ``Y``), the task names, and the ground
truth it was drawn from (``truth``), so that a method's recovered structure can be
checked against the real one. ``SyntheticTasks.to_data()`` gives the
:class:`~polytask.data.MultiTaskData` container.

- :func:`mmoe_synthetic` — non-linear tasks whose weight vectors have a prescribed
  cosine similarity (Ma et al., KDD 2018), for any number of tasks.
- :func:`group_sparse` — shared relevant features (row-sparse W).
- :func:`low_rank` — weight vectors in a low-dimensional subspace (low-rank W).
- :func:`clustered` — groups of similar tasks.
- :func:`dirty` — shared features plus task-specific ones (W = B + S).

The linear generators accept per-task sample sizes, in which case each task has its
own design and ``X``, ``Y`` are lists with one array per task.
"""

from polytask.data._synthetic_base import RandomState, SyntheticTasks
from polytask.data._synthetic_linear import clustered, dirty, group_sparse, low_rank
from polytask.data._synthetic_mmoe import mmoe_synthetic

__all__ = [
    "RandomState",
    "SyntheticTasks",
    "clustered",
    "dirty",
    "group_sparse",
    "low_rank",
    "mmoe_synthetic",
]
