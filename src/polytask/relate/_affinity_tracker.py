"""Running mean of the lookahead affinity (see :mod:`polytask.relate.affinity`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from polytask._typing import FloatArray
from polytask.relate._checks import (
    as_matrix,
    check_int,
    check_state,
    check_task_names,
    state_array,
    state_count,
)
from polytask.relate._lookahead import lookahead_affinity

if TYPE_CHECKING:
    from torch import Tensor, nn

    from polytask.tasks import Task, TaskSet


@dataclass(frozen=True, eq=False)
class TaskAffinity:
    """Lookahead affinity averaged over the steps where it was measured.

    Parameters
    ----------
    task_names : tuple of str
        Task order of the matrices.
    mean_affinity : ndarray of shape (n_tasks, n_tasks)
        ``mean_affinity[i, j]``: mean effect of a step on task ``j`` on the loss of
        task ``i``, over the steps where task ``i``'s loss was positive; 0 where it
        never was (see ``n_defined``).
    n_defined : ndarray of int, shape (n_tasks, n_tasks)
        Number of steps that entered each mean.
    n_steps : int
        Number of measurements.

    Examples
    --------
    >>> import numpy as np
    >>> tracker = AffinityTracker(["a", "b"])
    >>> tracker.update(np.array([[0.2, 0.1], [-0.1, 0.3]]))
    >>> tracker.summary().matrix.tolist()
    [[0.2, 0.1], [-0.1, 0.3]]
    """

    task_names: tuple[str, ...]
    mean_affinity: FloatArray
    n_defined: np.ndarray
    n_steps: int

    @property
    def matrix(self) -> FloatArray:
        """The relatedness matrix of this summary: ``mean_affinity``, (n_tasks, n_tasks)."""
        return self.mean_affinity


class AffinityTracker:
    """Running mean of the lookahead affinity over training.

    The trainer calls :meth:`observe` (or :meth:`update` with a matrix it computed)
    every ``every`` steps, e.g. ``if tracker.is_due(step): tracker.observe(...)``,
    *before* its optimizer step so that ``θ^t`` is the parameters the batch's update
    starts from. The state is two arrays and a counter; :meth:`state_dict` holds them
    as plain Python values for checkpoint and resume.

    Parameters
    ----------
    task_names : sequence of str
        The tasks, in the order of the matrix.
    every : int, default=1
        Measurement interval in steps (``>= 1``), read by :meth:`is_due`.

    References
    ----------
    C. Fifty, E. Amid, Z. Zhao, T. Yu, R. Anil and C. Finn, "Efficiently identifying
    task groupings for multi-task learning", NeurIPS 2021.

    Examples
    --------
    >>> import numpy as np
    >>> tracker = AffinityTracker(["a", "b"], every=10)
    >>> [s for s in range(25) if tracker.is_due(s)]
    [0, 10, 20]
    >>> tracker.update(np.array([[0.2, 0.1], [-0.1, 0.3]]))
    >>> tracker.update(np.array([[0.0, 0.3], [0.5, 0.0]]), zero_loss=[False, True])
    >>> np.round(tracker.summary().mean_affinity, 3).tolist()
    [[0.1, 0.2], [-0.1, 0.3]]
    """

    def __init__(self, task_names: Sequence[str], every: int = 1) -> None:
        self.task_names = check_task_names(task_names, None, "task_names")
        self.every = check_int(every, "every", minimum=1)
        self.reset()

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.task_names)

    @property
    def n_steps(self) -> int:
        """Number of measurements since the last reset."""
        return self._n_steps

    def reset(self) -> None:
        """Forget every measurement."""
        m = self.n_tasks
        self._sum = np.zeros((m, m))
        self._n_defined = np.zeros((m, m), dtype=np.int64)
        self._n_steps = 0

    def is_due(self, step: int) -> bool:
        """Whether training step ``step`` (counted from 0) is a measurement step."""
        return check_int(step, "step", minimum=0) % self.every == 0

    def update(self, affinity: Any, zero_loss: Any = None) -> None:
        """Add one affinity matrix.

        Parameters
        ----------
        affinity : array_like of shape (n_tasks, n_tasks)
            ``A[i, j] = Z_{j→i}`` as returned by :func:`lookahead_affinity`.
        zero_loss : array_like of bool, shape (n_tasks,), optional
            Rows to leave out of the mean (tasks whose loss was 0).

        Raises
        ------
        ValueError
            If a shape is wrong or an entry is not finite.
        """
        A = as_matrix(affinity, "affinity", square=True)
        m = self.n_tasks
        if A.shape != (m, m):
            raise ValueError(
                f"affinity must have shape ({m}, {m}) for tasks {list(self.task_names)}, "
                f"got {A.shape}"
            )
        if not np.isfinite(A).all():
            raise ValueError("affinity must contain only finite values")
        skip = np.zeros(m, dtype=bool) if zero_loss is None else np.asarray(zero_loss, bool)
        if skip.shape != (m,):
            raise ValueError(f"zero_loss must have shape ({m},), got {skip.shape}")
        rows = (~skip)[:, None] & np.ones((1, m), dtype=bool)
        self._sum += np.where(rows, A, 0.0)
        self._n_defined += rows.astype(np.int64)
        self._n_steps += 1

    def observe(
        self,
        model: nn.Module,
        tasks: TaskSet | Iterable[Task | str],
        x: Tensor,
        targets: Mapping[str, Tensor],
        lr: float,
        params: Iterable[Tensor] | None = None,
    ) -> FloatArray:
        """Measure :func:`lookahead_affinity` on a batch and add it.

        Parameters
        ----------
        model, tasks, x, targets, lr, params
            As in :func:`lookahead_affinity`; the task order must match ``task_names``.

        Returns
        -------
        ndarray of shape (n_tasks, n_tasks)
            This batch's affinity matrix.

        Raises
        ------
        ValueError
            If the tasks differ from ``task_names``, or as :func:`lookahead_affinity`.
        """
        from polytask.tasks import TaskSet

        task_set = tasks if isinstance(tasks, TaskSet) else TaskSet(tasks)
        if task_set.names != self.task_names:
            raise ValueError(
                f"tasks {list(task_set.names)} differ from the tracker's "
                f"{list(self.task_names)}"
            )
        A, zero = lookahead_affinity(model, task_set, x, targets, lr, params, return_mask=True)
        self.update(A, zero)
        return A

    def summary(self) -> TaskAffinity:
        """The mean affinity so far.

        Returns
        -------
        TaskAffinity
        """
        return TaskAffinity(
            task_names=self.task_names,
            mean_affinity=self._sum / np.maximum(self._n_defined, 1),
            n_defined=self._n_defined.copy(),
            n_steps=self._n_steps,
        )

    def state_dict(self) -> dict[str, Any]:
        """The state as Python primitives.

        Returns
        -------
        dict
            Keys ``task_names``, ``every``, ``n_steps``, ``sum_affinity``, ``n_defined``.
        """
        return {
            "task_names": list(self.task_names),
            "every": self.every,
            "n_steps": self._n_steps,
            "sum_affinity": self._sum.tolist(),
            "n_defined": self._n_defined.tolist(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state written by :meth:`state_dict`.

        Parameters
        ----------
        state : mapping
            As returned by :meth:`state_dict`.

        Raises
        ------
        ValueError
            If a key is missing, the task names differ, or an array is malformed.
        """
        keys = ("task_names", "every", "n_steps", "sum_affinity", "n_defined")
        check_state(state, keys, self.task_names, type(self).__name__)
        m = self.n_tasks
        sums = state_array(state, "sum_affinity", m, float)
        defined = state_array(state, "n_defined", m, np.int64)
        self.every = check_int(state["every"], "state['every']", minimum=1)
        self._n_steps = state_count(state["n_steps"])
        self._sum, self._n_defined = sums, defined

    def __repr__(self) -> str:
        return (
            f"AffinityTracker(tasks={list(self.task_names)}, every={self.every}, "
            f"n_steps={self._n_steps})"
        )
