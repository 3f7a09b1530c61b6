"""Builders shared by the MultiTaskData tests (containers, splits, frames, torch views).

They are reached through the ``mtd`` fixture, so that every test file can use them
under ``--import-mode=importlib`` (where test modules cannot import one another).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from polytask.data import MultiTaskData


class Builders:
    """Small multi-task data sets whose first feature is a unique row id."""

    def __init__(self) -> None:
        self.kinds = {"score": "regression", "pass": "binary", "grade": "multiclass"}
        self.sizes = {"a": 12, "b": 7, "c": 20}

    @staticmethod
    def shared_arrays(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """X (n, 3) whose first column is the row id; Y (n, 3) with ~30 % missing labels."""
        rng = np.random.default_rng(seed)
        X = np.column_stack([np.arange(n, dtype=float), rng.normal(size=(n, 2))])
        Y = np.column_stack(
            [rng.normal(size=n), rng.integers(0, 2, size=n), rng.integers(0, 4, size=n)]
        ).astype(float)
        Y[rng.random(size=Y.shape) < 0.3] = np.nan
        return X, Y

    def shared(self, n: int = 30, seed: int = 0) -> MultiTaskData:
        """Shared-form data with a regression, a binary and a multiclass task."""
        X, Y = self.shared_arrays(n, seed)
        return MultiTaskData(X, Y, task_names=list(self.kinds), kinds=self.kinds)

    @staticmethod
    def task_arrays(
        sizes: dict[str, int], seed: int = 0
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-task designs whose first feature is an id unique over all tasks."""
        rng = np.random.default_rng(seed)
        tasks, start = {}, 0
        for name, n in sizes.items():
            ids = np.arange(start, start + n, dtype=float)
            tasks[name] = (np.column_stack([ids, rng.normal(size=(n, 2))]), rng.normal(size=n))
            start += n
        return tasks

    def per_task(self, sizes: dict[str, int] | None = None, seed: int = 0) -> MultiTaskData:
        """Per-task regression data of the given sizes."""
        return MultiTaskData.from_tasks(self.task_arrays(sizes or self.sizes, seed))

    def build(self, form: str) -> MultiTaskData:
        """Default data of the form ``"shared"`` or ``"per_task"``."""
        return self.shared() if form == "shared" else self.per_task()

    @staticmethod
    def pairs(data: MultiTaskData) -> Counter[tuple[str, tuple[float, ...], float]]:
        """Multiset of every observed (task, x, y)."""
        return Counter(
            (name, tuple(row.tolist()), float(label))
            for name, X_t, y_t in data.iter_tasks()
            for row, label in zip(X_t, y_t, strict=True)
        )

    @staticmethod
    def ids(data: MultiTaskData, name: str) -> set[int]:
        """Row ids (first feature) of a task's observed rows."""
        return {int(i) for i in data.task(name)[0][:, 0]}


@pytest.fixture
def mtd() -> Builders:
    """The MultiTaskData test builders."""
    return Builders()
