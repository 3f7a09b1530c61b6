"""Shared type aliases used across polytask."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

TaskKind = Literal["regression", "binary", "multiclass", "multilabel"]
"""The kind of a task; it fixes the task's default loss and metrics."""

TASK_KINDS: tuple[TaskKind, ...] = ("regression", "binary", "multiclass", "multilabel")

TaskRole = Literal["main", "auxiliary"]
"""Main tasks drive model selection; auxiliary tasks only help them."""

FloatArray = NDArray[np.floating]
"""A floating-point NumPy array."""

__all__ = ["TASK_KINDS", "FloatArray", "TaskKind", "TaskRole"]
