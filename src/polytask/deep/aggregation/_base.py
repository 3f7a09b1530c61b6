"""The two levels of every aggregation method: Gramian → weights, Jacobian → update.

A *Jacobian* ``J`` of shape ``(n_tasks, n_params)`` stacks one gradient per task.  Every
method in this package returns an update of the form ``d = Jᵀ w`` whose weights ``w``
depend on ``J`` only through its Gramian ``G = J Jᵀ`` of shape ``(n_tasks, n_tasks)``.
A :class:`Weighting` computes ``w`` from ``G``; the matching :class:`GramianAggregator`
computes ``G``, asks the weighting for ``w`` and returns ``w @ J``.  The fast training
engine only needs the weighting: it forms the Gramian, then runs one backward pass of
``Σ_i w_i L_i``.

The small ``(n_tasks, n_tasks)`` problems are solved on the CPU in float64 with NumPy;
weights and updates come back in the dtype and on the device of the input.  Weights are
computed without autograd: they are constants of the update, never differentiated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

Array = NDArray[np.float64]


class AggregationWarning(UserWarning):
    """A method could not be solved as specified and returned a documented fallback.

    Raised as a warning (never silently) when an iterative solver stops before its
    certified tolerance, or when the method has no solution for the given gradients
    (for example Nash-MTL when no direction improves every task).
    """


# --------------------------------------------------------------------------- checks
def _check_matrix(value: object, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}.")
    if not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}.")
    if value.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D tensor, got {value.ndim} dimension(s) "
            f"with shape {tuple(value.shape)}."
        )
    if value.shape[0] == 0:
        raise ValueError(
            f"{name} must have at least one task (row), got shape {tuple(value.shape)}."
        )
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return value


def check_jacobian(jacobian: object, name: str = "jacobian") -> Tensor:
    """Validate a Jacobian of shape ``(n_tasks, n_params)`` and return it detached.

    Raises
    ------
    TypeError
        If ``jacobian`` is not a floating-point tensor.
    ValueError
        If it is not 2-D, has no row or no column, or holds NaN/inf.
    """
    matrix = _check_matrix(jacobian, name)
    if matrix.shape[1] == 0:
        raise ValueError(
            f"{name} must have at least one column (parameter), got shape {tuple(matrix.shape)}."
        )
    return matrix.detach()


def check_gramian(gramian: object, name: str = "gramian") -> Array:
    """Validate a Gramian of shape ``(n_tasks, n_tasks)``; return it as float64 NumPy.

    The returned copy is exactly symmetric (``(G + Gᵀ)/2``).  Symmetry is checked up to
    ``sqrt(eps)`` of the input dtype, relative to the largest entry.

    Raises
    ------
    TypeError
        If ``gramian`` is not a floating-point tensor.
    ValueError
        If it is not 2-D and square, holds NaN/inf, is not symmetric, or has a negative
        diagonal entry (it cannot then be a Gramian ``J Jᵀ``).
    """
    matrix = _check_matrix(gramian, name)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"{name} must be square (n_tasks, n_tasks), got shape {tuple(matrix.shape)}."
        )
    g = matrix.detach().to(device="cpu", dtype=torch.float64).numpy()
    scale = float(np.max(np.abs(g)))
    tol = float(np.sqrt(torch.finfo(matrix.dtype).eps)) * scale
    if float(np.max(np.abs(g - g.T))) > tol:
        raise ValueError(
            f"{name} must be symmetric (a Gramian J Jᵀ); the largest "
            f"asymmetry is {float(np.max(np.abs(g - g.T))):.3g}."
        )
    if float(np.min(np.diag(g))) < -tol:
        raise ValueError(
            f"{name} must be positive semi-definite (a Gramian J Jᵀ), but its "
            f"diagonal has a negative entry {float(np.min(np.diag(g))):.3g}."
        )
    return (g + g.T) / 2.0


def dtype_eps(tensor: Tensor) -> float:
    """Machine epsilon of ``tensor``'s dtype, used for rank and zero-norm decisions."""
    return float(torch.finfo(tensor.dtype).eps)


def weights_like(weights: Array, like: Tensor) -> Tensor:
    """Return float64 NumPy ``weights`` as a tensor with ``like``'s dtype and device."""
    return torch.as_tensor(np.ascontiguousarray(weights), dtype=like.dtype, device=like.device)


def compute_gramian(jacobian: Tensor) -> Tensor:
    """Gramian ``J Jᵀ`` of a Jacobian, in the Jacobian's dtype and on its device.

    Parameters
    ----------
    jacobian : Tensor of shape (n_tasks, n_params)
        One gradient per row.

    Returns
    -------
    Tensor of shape (n_tasks, n_tasks)
        ``J Jᵀ``, made exactly symmetric.

    Raises
    ------
    TypeError, ValueError
        If ``jacobian`` is not a finite floating-point 2-D tensor.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import compute_gramian
    >>> compute_gramian(torch.tensor([[1.0, 2.0], [0.0, 3.0]])).tolist()
    [[5.0, 6.0], [6.0, 9.0]]
    """
    matrix = check_jacobian(jacobian)
    gramian = matrix @ matrix.T
    return (gramian + gramian.T) / 2


def format_params(obj: object, params: dict[str, Any]) -> str:
    """``ClassName(a=1, b='x')`` for ``__repr__``."""
    inner = ", ".join(f"{key}={value!r}" for key, value in params.items())
    return f"{type(obj).__name__}({inner})"


# --------------------------------------------------------------------------- bases
class _Immutable:
    """Refuse attribute assignment once ``_freeze`` has run (aggregators are immutable)."""

    def __setattr__(self, name: str, value: object) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(
                f"{type(self).__name__} is immutable: create a new instance instead of "
                f"setting {name!r}."
            )
        object.__setattr__(self, name, value)

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    def _params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return format_params(self, self._params())


class Weighting(_Immutable, ABC):
    """Map a task Gramian ``G = J Jᵀ`` of shape ``(n_tasks, n_tasks)`` to weights.

    Subclasses implement :meth:`_solve` on a validated float64 NumPy Gramian.  Calling a
    weighting validates its input and returns the weights, of shape ``(n_tasks,)``, in
    the Gramian's dtype and on its device.  Weightings are immutable.
    """

    def __call__(self, gramian: Tensor) -> Tensor:
        """Weights of shape ``(n_tasks,)`` for ``gramian`` of shape ``(n_tasks, n_tasks)``."""
        g = check_gramian(gramian)
        return weights_like(self._solve(g, dtype_eps(gramian)), gramian)

    @abstractmethod
    def _solve(self, gramian: Array, eps: float) -> Array:
        """Weights from a symmetric float64 Gramian; ``eps`` is the input dtype's epsilon."""


class Aggregator(_Immutable, ABC):
    """Map a Jacobian ``J`` of shape ``(n_tasks, n_params)`` to one update ``(n_params,)``.

    Aggregators are immutable: hyperparameters are fixed at construction.  The update is
    returned in the Jacobian's dtype and on its device, detached from autograd (it is a
    descent direction, not a differentiable function of ``J``).
    """

    @abstractmethod
    def __call__(self, jacobian: Tensor) -> Tensor:
        """The aggregated update of shape ``(n_params,)``."""


WeightingT = TypeVar("WeightingT", bound=Weighting)


class GramianAggregator(Aggregator, Generic[WeightingT]):
    """Aggregator ``J ↦ w(J Jᵀ) @ J`` built from a :class:`Weighting`.

    Parameters
    ----------
    weighting : Weighting
        Computes the weights ``w`` of shape ``(n_tasks,)`` from the Gramian.

    Raises
    ------
    TypeError
        If ``weighting`` is not a :class:`Weighting`.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import GramianAggregator, MeanWeighting
    >>> aggregator = GramianAggregator(MeanWeighting())
    >>> aggregator(torch.tensor([[1.0, 0.0], [0.0, 3.0]])).tolist()
    [0.5, 1.5]
    """

    def __init__(self, weighting: WeightingT) -> None:
        if not isinstance(weighting, Weighting):
            raise TypeError(f"weighting must be a Weighting, got {type(weighting).__name__}.")
        self._weighting = weighting
        self._freeze()

    @property
    def weighting(self) -> WeightingT:
        """The weighting that maps the Gramian to the task weights."""
        return self._weighting

    def __call__(self, jacobian: Tensor) -> Tensor:
        """Aggregate ``jacobian`` of shape ``(n_tasks, n_params)`` into ``(n_params,)``."""
        return self._aggregate(jacobian, self._weighting)

    @staticmethod
    def _aggregate(jacobian: Tensor, weigh: Callable[[Tensor], Tensor]) -> Tensor:
        matrix = check_jacobian(jacobian)
        weights = weigh(compute_gramian(matrix))
        return weights @ matrix

    def _params(self) -> dict[str, Any]:
        return self._weighting._params()

