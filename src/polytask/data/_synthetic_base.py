"""The result type of the synthetic generators and the helpers they share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np

from polytask._typing import FloatArray, TaskKind

if TYPE_CHECKING:
    from polytask.data import MultiTaskData

RandomState = int | np.random.Generator | None
"""A seed, a NumPy ``Generator`` (used and advanced in place), or None (fresh entropy)."""


@dataclass(frozen=True, eq=False)
class SyntheticTasks:
    """A synthetic multi-task problem together with its ground truth.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), or list of ndarray
        The shared design, or one design of shape (n_samples_t, n_features) per task.
    Y : ndarray of shape (n_samples, n_tasks), or list of ndarray
        Targets: column ``t`` is task ``t`` for a shared design; otherwise one array of
        shape (n_samples_t,) per task.
    task_names : tuple of str
        ``("task_0", "task_1", ...)``.
    truth : dict
        The ground truth the data were drawn from, e.g. ``"W"`` of shape
        (n_features, n_tasks) and the structure promised by the generator.
    kind : str, default "regression"
        Kind of every task.

    Examples
    --------
    >>> from polytask.data.synthetic import group_sparse
    >>> tasks = group_sparse(30, n_features=8, n_tasks=3, n_active=2, random_state=0)
    >>> tasks.X.shape, tasks.Y.shape, tasks.task_names
    ((30, 8), (30, 3), ('task_0', 'task_1', 'task_2'))
    >>> tasks.shared_design, tasks.truth["support"].size
    (True, 2)
    >>> tasks
    SyntheticTasks(n_tasks=3, n_features=8, n_samples=30, truth=['W', 'noise', 'support'])
    """

    X: FloatArray | list[FloatArray]
    Y: FloatArray | list[FloatArray]
    task_names: tuple[str, ...]
    truth: dict[str, Any] = field(repr=False)
    kind: TaskKind = "regression"

    @property
    def shared_design(self) -> bool:
        """Whether all tasks share one design ``X`` (else ``X`` is a per-task list)."""
        return isinstance(self.X, np.ndarray)

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.task_names)

    @property
    def n_features(self) -> int:
        """Number of features."""
        first = self.X if isinstance(self.X, np.ndarray) else self.X[0]
        return int(first.shape[1])

    def __repr__(self) -> str:
        if isinstance(self.X, np.ndarray):
            sizes = f"n_samples={self.X.shape[0]}"
        else:
            sizes = f"task_sizes={[x.shape[0] for x in self.X]}"
        return (
            f"SyntheticTasks(n_tasks={self.n_tasks}, n_features={self.n_features}, {sizes}, "
            f"truth={sorted(self.truth)})"
        )

    def task(self, task: int | np.integer | str) -> tuple[FloatArray, FloatArray]:
        """The design and targets of one task, whatever the layout.

        Parameters
        ----------
        task : int or str
            Index (a Python or NumPy integer) or name of the task.

        Returns
        -------
        X_t : ndarray of shape (n_samples_t, n_features)
        y_t : ndarray of shape (n_samples_t,)

        Raises
        ------
        ValueError
            If there is no such task.

        Examples
        --------
        >>> from polytask.data.synthetic import group_sparse
        >>> tasks = group_sparse([4, 6], n_features=3, n_tasks=2, n_active=1, random_state=0)
        >>> [a.shape for a in tasks.task("task_1")]
        [(6, 3), (6,)]
        """
        if isinstance(task, str):
            if task not in self.task_names:
                raise ValueError(f"unknown task {task!r}; known tasks: {list(self.task_names)}")
            index = self.task_names.index(task)
        elif isinstance(task, (int, np.integer)) and not isinstance(task, bool):
            index = int(task)
            if not 0 <= index < self.n_tasks:
                raise ValueError(f"task index {index} out of range [0, {self.n_tasks - 1}]")
        else:
            raise TypeError(f"task must be an int or a str; got {task!r}")
        if isinstance(self.X, np.ndarray):
            assert isinstance(self.Y, np.ndarray)
            return self.X, self.Y[:, index]
        return self.X[index], self.Y[index]

    def to_data(self) -> MultiTaskData:
        """The problem as a :class:`~polytask.data.MultiTaskData` container.

        Returns
        -------
        MultiTaskData
            The shared form for a shared design, the per-task form otherwise.

        Examples
        --------
        >>> from polytask.data.synthetic import low_rank
        >>> data = low_rank([10, 20], n_features=5, n_tasks=2, rank=1, random_state=0).to_data()
        >>> data.form, data.task_sizes
        ('per_task', {'task_0': 10, 'task_1': 20})
        """
        from polytask.data import MultiTaskData

        if isinstance(self.X, np.ndarray):
            return MultiTaskData(self.X, self.Y, task_names=list(self.task_names), kinds=self.kind)
        tasks = {
            name: (x_t, y_t)
            for name, x_t, y_t in zip(self.task_names, self.X, self.Y, strict=True)
        }
        return MultiTaskData.from_tasks(tasks, kinds=self.kind)


def check_random_state(random_state: RandomState) -> np.random.Generator:
    """A NumPy ``Generator`` from a seed, a ``Generator`` (returned as is) or None."""
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, bool) or not isinstance(random_state, Integral):
        raise TypeError(
            "random_state must be an int, a numpy.random.Generator or None; "
            f"got {type(random_state).__name__}"
        )
    if random_state < 0:
        raise ValueError(f"random_state must be a non-negative int; got {random_state}")
    return np.random.default_rng(int(random_state))


def check_int(value: object, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``; the error names the argument."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int; got {value!r}")
    out = int(value)
    if out < minimum or (maximum is not None and out > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}; got {out}")
    return out


def check_float(
    value: object, name: str, minimum: float = 0.0, maximum: float | None = None,
    *, strict: bool = False,
) -> float:
    """``value`` as a finite float ``>= minimum`` (``>`` if strict) and ``<= maximum``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    out = float(value)
    too_low = out <= minimum if strict else out < minimum
    if not math.isfinite(out) or too_low or (maximum is not None and out > maximum):
        low = f"> {minimum}" if strict else f">= {minimum}"
        bound = low if maximum is None else f"{low} and <= {maximum}"
        raise ValueError(f"{name} must be finite and {bound}; got {value!r}")
    return out


def task_sizes(
    n_samples: int | Sequence[int], n_tasks: int, shared_design: bool | None
) -> tuple[list[int], bool]:
    """Per-task sample sizes and whether the design is shared.

    An int ``n_samples`` gives every task that size and a shared design unless
    ``shared_design`` is False; a sequence gives per-task designs of those sizes.
    """
    if shared_design is not None and not isinstance(shared_design, (bool, np.bool_)):
        raise TypeError(f"shared_design must be a bool or None; got {shared_design!r}")
    if isinstance(n_samples, Integral) and not isinstance(n_samples, bool):
        size = check_int(n_samples, "n_samples")
        return [size] * n_tasks, shared_design is None or bool(shared_design)
    if isinstance(n_samples, (str, bytes)) or not isinstance(n_samples, (Sequence, np.ndarray)):
        raise TypeError(
            f"n_samples must be an int or a sequence of per-task sizes; got {n_samples!r}"
        )
    sizes = [check_int(s, f"n_samples[{t}]") for t, s in enumerate(n_samples)]
    if len(sizes) != n_tasks:
        raise ValueError(
            f"n_samples gives {len(sizes)} per-task sizes but n_tasks={n_tasks}; "
            "expected one size per task"
        )
    if shared_design:
        raise ValueError(
            "shared_design=True needs an int n_samples; per-task sizes imply per-task designs"
        )
    return sizes, False


def sample_design(
    rng: np.random.Generator, n_samples: int, n_features: int, feature_correlation: float
) -> FloatArray:
    """Rows ``x ~ N(0, Σ)`` with ``Σ_ij = ρ^|i-j|`` (an AR(1) chain; ρ = 0 gives N(0, I))."""
    Z = rng.standard_normal((n_samples, n_features))
    if feature_correlation == 0.0:
        return Z
    rho = feature_correlation
    X = np.empty_like(Z)
    X[:, 0] = Z[:, 0]
    scale = math.sqrt(1.0 - rho * rho)
    for j in range(1, n_features):
        X[:, j] = rho * X[:, j - 1] + scale * Z[:, j]
    return X


def make_tasks(
    rng: np.random.Generator,
    W: FloatArray,
    sizes: list[int],
    shared: bool,
    noise: float,
    feature_correlation: float,
    truth: dict[str, Any],
) -> SyntheticTasks:
    """Draw designs and noisy linear responses ``y_t = X_t w_t + noise · ε`` for ``W``."""
    n_features, n_tasks = W.shape
    names = tuple(f"task_{t}" for t in range(n_tasks))
    truth = {"W": W, **truth, "noise": noise}
    if shared:
        X = sample_design(rng, sizes[0], n_features, feature_correlation)
        Y = X @ W + noise * rng.standard_normal((sizes[0], n_tasks))
        return SyntheticTasks(X=X, Y=Y, task_names=names, truth=truth)
    Xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    for t, n_t in enumerate(sizes):
        X_t = sample_design(rng, n_t, n_features, feature_correlation)
        Xs.append(X_t)
        ys.append(X_t @ W[:, t] + noise * rng.standard_normal(n_t))
    return SyntheticTasks(X=Xs, Y=ys, task_names=names, truth=truth)


def signed_magnitudes(rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
    """Random signs times magnitudes in [0.5, 1.5]: nonzeros bounded away from zero."""
    signs = rng.choice(np.array([-1.0, 1.0]), size=shape)
    return signs * rng.uniform(0.5, 1.5, size=shape)
