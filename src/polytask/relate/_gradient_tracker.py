"""Running gradient cosine and conflict frequency (see :mod:`polytask.relate.gradients`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from polytask._typing import FloatArray
from polytask.relate._checks import (
    check_float,
    check_gram,
    check_state,
    check_task_names,
    state_array,
    state_count,
)

if TYPE_CHECKING:
    import pandas as pd


def gradient_cosine_and_mask(G: FloatArray, atol: float) -> tuple[FloatArray, np.ndarray]:
    """Cosine matrix of a checked Gramian, and the mask of zero-gradient tasks.

    The cosines are those of the training engine,
    :func:`polytask.deep.backward.gradient_cosine` (one definition for the trainer and
    the relatedness tools), computed in float64; the tasks with ``G[i, i] <= atol``
    then get 0 in their whole row and column, diagonal included. torch is imported
    here, at the first call, so that importing :mod:`polytask.relate` does not.
    """
    import torch

    from polytask.deep.backward import gradient_cosine

    cos = gradient_cosine(torch.from_numpy(np.asarray(G, dtype=np.float64))).numpy()
    zero = np.diagonal(G) <= atol
    cos[zero, :] = 0.0
    cos[:, zero] = 0.0
    return cos, zero


@dataclass(frozen=True, eq=False)
class GradientSimilarity:
    """Summary of the task-gradient geometry over a number of steps.

    Parameters
    ----------
    task_names : tuple of str
        Task order of the matrices.
    mean_cosine : ndarray of shape (n_tasks, n_tasks)
        Mean of ``cos(g_i, g_j)`` over the steps where both gradients were non-zero;
        0 where that never happened (see ``n_defined``).
    conflict_frequency : ndarray of shape (n_tasks, n_tasks)
        Share of those steps with ``cos(g_i, g_j) < 0``; 0 where never defined.
    n_defined : ndarray of int, shape (n_tasks, n_tasks)
        Number of steps where the pair's cosine was defined.
    n_steps : int
        Number of Gramians seen.

    Examples
    --------
    >>> import numpy as np
    >>> tracker = GradientSimilarityTracker(["a", "b"])
    >>> _ = tracker.update(np.array([[1.0, -0.5], [-0.5, 1.0]]))
    >>> s = tracker.summary()
    >>> s.n_steps, float(s.conflict_frequency[0, 1]), s.matrix is s.mean_cosine
    (1, 1.0, True)
    """

    task_names: tuple[str, ...]
    mean_cosine: FloatArray
    conflict_frequency: FloatArray
    n_defined: np.ndarray
    n_steps: int

    @property
    def matrix(self) -> FloatArray:
        """The relatedness matrix of this summary: ``mean_cosine``, (n_tasks, n_tasks)."""
        return self.mean_cosine

    def to_frame(self) -> pd.DataFrame:
        """One row per ordered task pair ``(task, other)``, ``task != other``.

        Returns
        -------
        pandas.DataFrame
            Columns ``task``, ``other``, ``mean_cosine``, ``conflict_frequency``,
            ``n_defined``.
        """
        import pandas as pd

        rows = [
            {
                "task": a,
                "other": b,
                "mean_cosine": float(self.mean_cosine[i, j]),
                "conflict_frequency": float(self.conflict_frequency[i, j]),
                "n_defined": int(self.n_defined[i, j]),
            }
            for i, a in enumerate(self.task_names)
            for j, b in enumerate(self.task_names)
            if i != j
        ]
        return pd.DataFrame(rows)


class GradientSimilarityTracker:
    """Running gradient cosine and conflict frequency, fed one Gramian per step.

    The trainer calls ``tracker.update(gramian)`` with the Gramian of the task
    gradients it already has (no extra backward pass). The state is three arrays of
    running sums and a step counter; ``state_dict()`` holds them as plain Python
    lists and numbers, so a resumed run continues exactly.

    Parameters
    ----------
    task_names : sequence of str
        The tasks, in the order of the Gramian's rows.
    atol : float, default=0.0
        Squared gradient norms at or below it count as zero gradients
        (see :func:`cosine_from_gramian`).

    Raises
    ------
    ValueError, TypeError
        If the names are empty, repeated or not strings, or ``atol < 0``.

    References
    ----------
    T. Yu, S. Kumar, A. Gupta, S. Levine, K. Hausman and C. Finn, "Gradient surgery for
    multi-task learning", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> tracker = GradientSimilarityTracker(["a", "b", "c"])
    >>> for J in ([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]], [[1.0, 0.0], [1.0, -1.0], [0.0, 0.0]]):
    ...     J = np.array(J)
    ...     _ = tracker.update(J @ J.T)
    >>> s = tracker.summary()
    >>> np.round(s.mean_cosine[0], 3).tolist()      # c has no gradient at step 2
    [1.0, 0.707, -1.0]
    >>> float(s.conflict_frequency[0, 2]), int(s.n_defined[0, 2])
    (1.0, 1)
    """

    def __init__(self, task_names: Sequence[str], atol: float = 0.0) -> None:
        self.task_names = check_task_names(task_names, None, "task_names")
        self.atol = check_float(atol, "atol", low=0.0)
        self.reset()

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.task_names)

    @property
    def n_steps(self) -> int:
        """Number of Gramians seen since the last reset."""
        return self._n_steps

    def reset(self) -> None:
        """Forget every step."""
        m = self.n_tasks
        self._sum_cosine = np.zeros((m, m))
        self._n_conflicts = np.zeros((m, m), dtype=np.int64)
        self._n_defined = np.zeros((m, m), dtype=np.int64)
        self._n_steps = 0

    def update(self, gramian: Any) -> FloatArray:
        """Add one step.

        Parameters
        ----------
        gramian : array_like or Tensor of shape (n_tasks, n_tasks)
            Gramian of the task gradients at this step.

        Returns
        -------
        ndarray of shape (n_tasks, n_tasks)
            The step's cosine matrix (0 for zero-gradient tasks), e.g. for logging.

        Raises
        ------
        ValueError
            If the Gramian has the wrong shape or is not a finite symmetric matrix with
            a non-negative diagonal.
        """
        G = check_gram(gramian, "gramian")
        if G.shape != (self.n_tasks, self.n_tasks):
            raise ValueError(
                f"gramian must have shape ({self.n_tasks}, {self.n_tasks}) for tasks "
                f"{list(self.task_names)}, got {G.shape}"
            )
        cos, zero = gradient_cosine_and_mask(G, self.atol)
        defined = ~(zero[:, None] | zero[None, :])
        self._sum_cosine += np.where(defined, cos, 0.0)
        self._n_conflicts += (defined & (cos < 0)).astype(np.int64)
        self._n_defined += defined.astype(np.int64)
        self._n_steps += 1
        return cos

    def summary(self) -> GradientSimilarity:
        """The mean cosine and the conflict frequency so far.

        Returns
        -------
        GradientSimilarity
            Pairs never defined (a task always without gradient) have 0 in both
            matrices and ``n_defined == 0``.
        """
        count = np.maximum(self._n_defined, 1)
        return GradientSimilarity(
            task_names=self.task_names,
            mean_cosine=self._sum_cosine / count,
            conflict_frequency=self._n_conflicts / count,
            n_defined=self._n_defined.copy(),
            n_steps=self._n_steps,
        )

    def state_dict(self) -> dict[str, Any]:
        """The state as Python primitives (lists, ints, floats, strings).

        Returns
        -------
        dict
            Keys ``task_names``, ``atol``, ``n_steps``, ``sum_cosine``, ``n_conflicts``,
            ``n_defined``.
        """
        return {
            "task_names": list(self.task_names),
            "atol": self.atol,
            "n_steps": self._n_steps,
            "sum_cosine": self._sum_cosine.tolist(),
            "n_conflicts": self._n_conflicts.tolist(),
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
            If a key is missing, the task names differ, or an array has the wrong shape
            or negative counts.
        """
        check_state(state, ("task_names", "atol", "n_steps", "sum_cosine", "n_conflicts",
                             "n_defined"), self.task_names, type(self).__name__)
        m = self.n_tasks
        sums = state_array(state, "sum_cosine", m, float)
        conflicts = state_array(state, "n_conflicts", m, np.int64)
        defined = state_array(state, "n_defined", m, np.int64)
        self.atol = check_float(state["atol"], "state['atol']", low=0.0)
        self._n_steps = state_count(state["n_steps"])
        self._sum_cosine, self._n_conflicts, self._n_defined = sums, conflicts, defined

    def __repr__(self) -> str:
        return f"GradientSimilarityTracker(tasks={list(self.task_names)}, n_steps={self._n_steps})"
