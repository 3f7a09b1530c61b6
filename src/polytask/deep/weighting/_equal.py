"""Fixed weightings: equal weights and user-given static weights."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor

from polytask._typing import FloatArray

from ._base import LossWeighting

__all__ = ["EqualWeighting", "StaticWeighting"]


class EqualWeighting(LossWeighting):
    """Equal weighting (EW): the plain sum of the task losses.

    .. math:: \\mathcal{L} = \\sum_{i=1}^{m} L_i, \\qquad w_i = 1.

    Stateless; the baseline every other weighting is compared with.

    Parameters
    ----------
    tasks : int or sequence of str
        The number of tasks, or their names in the order of the loss vector.

    Examples
    --------
    >>> import torch
    >>> ew = EqualWeighting(3)
    >>> float(ew(torch.tensor([1.0, 2.0, 3.0])))
    6.0
    >>> ew.weights(torch.tensor([1.0, 2.0, 3.0])).tolist()
    [1.0, 1.0, 1.0]
    """

    def _weights(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        return torch.ones_like(losses)


class StaticWeighting(LossWeighting):
    """Static weighting: fixed, user-given non-negative weights.

    .. math:: \\mathcal{L} = \\sum_{i=1}^{m} c_i L_i, \\qquad w_i = c_i \\ge 0.

    Parameters
    ----------
    weights : mapping of str to float, or sequence, array or tensor of float
        One non-negative finite weight per task, not all zero. A mapping names the
        tasks; its order is the order of the loss vector unless ``task_names`` is given.
    task_names : sequence of str, optional
        The task order of the loss vector. With a mapping, its keys must be exactly
        these names and the weights are reordered to match; with a sequence, it names
        the tasks (for error messages) and must have the same length.

    Attributes
    ----------
    static_weights : Tensor of shape (n_tasks,)
        The weights, a registered buffer (saved in ``state_dict``).

    Raises
    ------
    TypeError
        If ``weights`` is neither a mapping nor a sequence of numbers.
    ValueError
        If a weight is negative or not finite (the message names the task), all weights
        are zero, or the mapping keys do not match ``task_names``.

    Examples
    --------
    >>> import torch
    >>> sw = StaticWeighting({"depth": 1.0, "segmentation": 0.5})
    >>> float(sw(torch.tensor([2.0, 4.0])))
    4.0
    >>> sw.task_names
    ('depth', 'segmentation')
    """

    static_weights: Tensor

    def __init__(
        self,
        weights: Mapping[str, float] | Sequence[float] | FloatArray | Tensor,
        task_names: Sequence[str] | None = None,
    ) -> None:
        names, values = _resolve_static(weights, task_names)
        super().__init__(names if names is not None else len(values))
        for i, v in enumerate(values):
            if not math.isfinite(v) or v < 0:
                raise ValueError(
                    f"weights[{i}] for {self._task(i)} is {v}; expected a finite "
                    "non-negative weight"
                )
        if not any(v > 0 for v in values):
            raise ValueError("weights must contain at least one positive weight, got all zero")
        default = torch.get_default_dtype()
        self.register_buffer("static_weights", torch.tensor(values, dtype=default))

    def _weights(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        return self.static_weights.to(losses)

    def extra_repr(self) -> str:
        return f"weights={[round(float(w), 6) for w in self.static_weights]}"


def _resolve_static(
    weights: object, task_names: Sequence[str] | None
) -> tuple[Sequence[str] | None, list[float]]:
    """Turn the ``weights`` argument into (task names, weight list) in task order."""
    if isinstance(weights, Mapping):
        keys = list(weights.keys())
        if task_names is None:
            names: Sequence[str] | None = keys
        else:
            names = list(task_names)
            if set(keys) != set(names) or len(keys) != len(names):
                missing = sorted(set(names) - set(keys))
                extra = sorted(set(keys) - set(names))
                raise ValueError(
                    f"weights keys must match task_names: missing {missing}, unexpected {extra}"
                )
        raw = [weights[n] for n in (names or [])]
    else:
        expected = (
            "weights must be a mapping {task name: weight} or a sequence of floats, "
            f"got {type(weights).__name__}"
        )
        if isinstance(weights, (str, bytes)) or not isinstance(weights, Iterable):
            raise TypeError(expected)
        try:
            raw = list(weights)  # a sequence, a 1-d array or a 1-d tensor
        except TypeError:  # a 0-d array or tensor
            raise TypeError(expected) from None
        names = None if task_names is None else list(task_names)
    if len(raw) == 0:
        raise ValueError("weights must contain one weight per task, got none")
    if names is not None and len(names) != len(raw):
        raise ValueError(f"task_names has {len(names)} names but weights has {len(raw)} entries")
    values: list[float] = []
    for i, v in enumerate(raw):
        if isinstance(v, bool):
            raise TypeError(f"weights[{i}] must be a real number, got {v!r}")
        try:
            values.append(float(v))
        except (TypeError, ValueError):
            raise TypeError(f"weights[{i}] must be a real number, got {v!r}") from None
    return names, values
