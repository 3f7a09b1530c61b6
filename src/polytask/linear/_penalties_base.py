"""Validation helpers shared by the penalty classes.

A penalty stores its hyperparameters verbatim in ``__init__`` and checks them in
``validate()``; the helpers below produce the error messages, which always name the
penalty and the argument.
"""

from __future__ import annotations

import dataclasses
from numbers import Integral, Real
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from polytask._typing import FloatArray

# Relative tolerance used to decide ties of |W_ij| (l1/l_inf) and the numerical rank
# (trace norm) inside ``subdiff_distance``: entries within this fraction of the largest
# one count as equal, singular values below it count as zero.
TIE_RTOL = 1e-9


def check_real(value: object, name: str, owner: str, *, positive: bool = False) -> float:
    """Return ``value`` as a float after checking it is finite and ``>= 0`` (``> 0``).

    Raises
    ------
    TypeError
        If ``value`` is not a real number (booleans are refused).
    ValueError
        If it is not finite, negative, or zero while ``positive`` is set.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a real number; got {value!r}")
    out = float(value)
    bound = "> 0" if positive else ">= 0"
    if not np.isfinite(out) or out < 0 or (positive and out == 0):
        raise ValueError(f"{owner}: {name} must be a finite number {bound}; got {value!r}")
    return out


def check_positive_int(value: object, name: str, owner: str) -> int:
    """Return ``value`` as an int after checking it is an integer ``>= 1``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{owner}: {name} must be an integer; got {value!r}")
    if value < 1:
        raise ValueError(f"{owner}: {name} must be >= 1; got {value!r}")
    return int(value)


def as_matrix(W: ArrayLike, owner: str, name: str = "W") -> FloatArray:
    """``W`` as a 2-D floating-point array ``(n_features, n_tasks)`` (no copy if possible)."""
    arr = np.asarray(W)
    if arr.dtype.kind != "f":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{owner}: {name} must be an array of numbers") from exc
    if arr.ndim != 2:
        raise ValueError(
            f"{owner}: {name} must be 2-D (n_features, n_tasks); got shape {arr.shape}"
        )
    return arr


def as_blocks(V: ArrayLike, owner: str, n_blocks: int, name: str = "V") -> FloatArray:
    """``V`` as a 3-D floating-point array ``(n_blocks, n_features, n_tasks)``."""
    arr = np.asarray(V)
    if arr.dtype.kind != "f":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{owner}: {name} must be an array of numbers") from exc
    if arr.ndim != 3 or arr.shape[0] != n_blocks:
        raise ValueError(
            f"{owner}: {name} must have shape ({n_blocks}, n_features, n_tasks) (one "
            f"block per component); got shape {arr.shape}"
        )
    return arr


def check_same_shape(a: FloatArray, b: FloatArray, owner: str, names: tuple[str, str]) -> None:
    """Raise ``ValueError`` if ``a`` and ``b`` differ in shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{owner}: {names[0]} has shape {a.shape} but {names[1]} has shape {b.shape}; "
            "expected the same shape"
        )


def check_step(step: object, owner: str) -> float:
    """Return the prox step as a float after checking it is finite and ``> 0``."""
    return check_real(step, "step", owner, positive=True)


_P = TypeVar("_P", bound="ParamsMixin")


class ParamsMixin:
    """``get_params`` / ``set_params`` over a dataclass's fields (scikit-learn style).

    With them, scikit-learn's ``clone`` rebuilds a penalty from its hyperparameters, and
    a grid search can tune ``penalty__alpha`` of an estimator holding the penalty.
    """

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyperparameters, by name (``deep`` is accepted for scikit-learn)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def set_params(self: _P, **params: Any) -> _P:
        """Set hyperparameters by name and return ``self``.

        Raises
        ------
        ValueError
            If a name is not a hyperparameter of this penalty.
        """
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"{type(self).__name__}: unknown hyperparameter {name!r}; "
                    f"expected one of {sorted(valid)}"
                )
            setattr(self, name, value)
        return self
