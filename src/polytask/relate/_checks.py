"""Input checks and small numerical helpers shared by the relatedness modules.

NumPy only: importing this module does not import torch.  Tensors are accepted where a
matrix is expected and converted with ``detach().cpu()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from polytask._typing import FloatArray


def to_numpy(value: Any) -> Any:
    """Return ``value`` with a torch tensor turned into a float64 NumPy array."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().double().numpy()
    return value


def as_matrix(value: Any, name: str, *, square: bool = False) -> FloatArray:
    """``value`` as a 2-D float64 array; ``square`` also requires shape (m, m), m >= 1."""
    try:
        arr = np.array(to_numpy(value), dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a 2-D array of numbers, got {type(value).__name__}"
        ) from None
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    if square and arr.shape[0] != arr.shape[1]:
        raise ValueError(
            f"{name} must be a square (n_tasks, n_tasks) matrix, got shape {arr.shape}"
        )
    return arr


def check_finite(arr: FloatArray, name: str, *, skip_diagonal: bool = False) -> None:
    """Raise naming the first non-finite entry (optionally ignoring the diagonal)."""
    bad = ~np.isfinite(arr)
    if skip_diagonal:
        np.fill_diagonal(bad, False)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{name}[{i}, {j}] is {arr[i, j]}; expected finite values")


def check_task_names(
    names: Sequence[str] | None, n_tasks: int | None, name: str
) -> tuple[str, ...]:
    """Validate unique non-empty names, ``n_tasks`` of them (at least one when None).

    ``names=None`` gives ``task_0, task_1, …`` (``n_tasks`` must then be given).
    """
    if names is None:
        assert n_tasks is not None
        return tuple(f"task_{i}" for i in range(n_tasks))
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"{name} must be a sequence of task names, got {type(names).__name__}")
    out = tuple(names)
    for i, item in enumerate(out):
        if not isinstance(item, str) or not item:
            raise TypeError(f"{name}[{i}] must be a non-empty str, got {item!r}")
    if len(set(out)) != len(out):
        dupes = sorted({n for n in out if out.count(n) > 1})
        raise ValueError(f"{name} must be unique, got duplicates {dupes}")
    if n_tasks is None and not out:
        raise ValueError(f"{name} must name at least one task")
    if n_tasks is not None and len(out) != n_tasks:
        raise ValueError(f"{name} has {len(out)} names but the matrix has {n_tasks} tasks")
    return out


def check_int(value: object, name: str, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``; raise naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    out = int(value)
    if out < minimum or (maximum is not None and out > maximum):
        upper = "" if maximum is None else f" and <= {maximum}"
        raise ValueError(f"{name} must be >= {minimum}{upper}, got {out}")
    return out


def check_float(
    value: object, name: str, *, low: float | None = None, low_open: bool = False
) -> float:
    """``value`` as a finite float, optionally ``>= low`` (``> low`` when ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    out = float(value)
    bad = not math.isfinite(out)
    if low is not None:
        bad = bad or out < low or (low_open and out == low)
    if bad:
        bound = "" if low is None else (f" and > {low}" if low_open else f" and >= {low}")
        raise ValueError(f"{name} must be finite{bound}, got {value!r}")
    return out


def cosine_from_gram(G: FloatArray, atol: float) -> tuple[FloatArray, np.ndarray]:
    """Cosine matrix of a checked Gram matrix and the mask of zero vectors (NumPy).

    For the torch-free relatedness of fitted linear models (cosines of weight vectors,
    :mod:`polytask.relate.linear`). Gradient Gramians go through the training engine's
    :func:`polytask.deep.backward.gradient_cosine` instead (see
    ``gradient_cosine_and_mask``). Vectors whose squared norm ``G[i, i] <= atol`` are
    *zero*: their row and column of the cosine matrix are 0 (diagonal included).  The
    division is done in two steps so that tiny but non-zero norms do not underflow.
    """
    diag = np.diagonal(G).copy()
    zero = diag <= atol
    norms = np.sqrt(np.where(zero, 1.0, diag))
    cos = (G / norms[:, None]) / norms[None, :]
    cos = np.clip(0.5 * (cos + cos.T), -1.0, 1.0)
    cos[zero, :] = 0.0
    cos[:, zero] = 0.0
    return cos, zero


def check_gram(value: Any, name: str) -> FloatArray:
    """A finite symmetric (m, m) matrix with a non-negative diagonal, as float64."""
    G = as_matrix(value, name, square=True)
    check_finite(G, name)
    diag = np.diagonal(G)
    if (diag < 0).any():
        i = int(np.argmax(diag < 0))
        raise ValueError(
            f"{name}[{i}, {i}] is {diag[i]}; a Gramian has a non-negative diagonal "
            "(squared gradient norms)"
        )
    # Only gross asymmetry is an error: a float32 (or TF32) product J Jᵀ over millions
    # of parameters is symmetric only up to rounding, and is symmetrised here.
    scale = max(float(np.abs(G).max()), np.finfo(float).tiny)
    if np.abs(G - G.T).max() > 1e-2 * scale:
        raise ValueError(f"{name} must be symmetric (a Gramian G = J Jᵀ)")
    return 0.5 * (G + G.T)


def check_state(
    state: Mapping[str, Any], keys: Sequence[str], names: tuple[str, ...], owner: str
) -> None:
    """Raise unless ``state`` is a mapping with ``keys`` written for tasks ``names``."""
    if not isinstance(state, Mapping):
        raise TypeError(f"{owner}.load_state_dict: state must be a mapping")
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"{owner}.load_state_dict: state is missing keys {missing}")
    if tuple(state["task_names"]) != names:
        raise ValueError(
            f"{owner}.load_state_dict: state is for tasks {list(state['task_names'])}, "
            f"this tracker has {list(names)}"
        )


def state_array(state: Mapping[str, Any], key: str, m: int, dtype: Any) -> np.ndarray:
    """An (m, m) array read from a state dict (counts must be >= 0)."""
    arr = np.array(state[key], dtype=dtype)
    if arr.shape != (m, m):
        raise ValueError(f"state[{key!r}] must have shape ({m}, {m}), got {arr.shape}")
    if not np.isfinite(arr).all() or (dtype is not float and (arr < 0).any()):
        raise ValueError(f"state[{key!r}] must hold finite (and, for counts, >= 0) values")
    return arr


def state_count(value: Any, key: str = "n_steps") -> int:
    """An ``int >= 0`` read from a state dict."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"state[{key!r}] must be an int >= 0, got {value!r}")
    return int(value)


def check_random_state(random_state: object, name: str = "random_state") -> np.random.Generator:
    """A NumPy ``Generator`` from a seed, a ``Generator`` (used as is) or None."""
    if random_state is None or (
        isinstance(random_state, Integral) and not isinstance(random_state, bool)
    ):
        return np.random.default_rng(random_state)  # type: ignore[arg-type]
    if isinstance(random_state, np.random.Generator):
        return random_state
    raise TypeError(
        f"{name} must be an int, a numpy.random.Generator or None, got "
        f"{type(random_state).__name__}"
    )
