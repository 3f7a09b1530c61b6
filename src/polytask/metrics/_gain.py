"""The gain of multi-task learning over single-task learning: Δm and its terms."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from numbers import Real
from typing import TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)


def _check_keys(reference: Mapping[K, object], other: Mapping[K, object], name: str) -> None:
    missing = [k for k in reference if k not in other]
    extra = [k for k in other if k not in reference]
    if missing or extra:
        raise ValueError(
            f"{name} must have the same keys as stl; missing from {name}: {missing}; "
            f"extra in {name}: {extra}"
        )


def _as_value(value: object, key: Hashable, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name}[{key!r}] must be a real number; got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name}[{key!r}] must be finite; got {out}")
    return out


def relative_gain(
    mtl: Mapping[K, float],
    stl: Mapping[K, float],
    higher_is_better: bool | Mapping[K, bool],
) -> dict[K, float]:
    """Per-task (or per task-and-metric) relative gain of MTL over STL, in percent.

    ``gain_k = 100 · (-1)^{l_k} · (M_mtl,k - M_stl,k) / |M_stl,k|`` with ``l_k = 1`` when
    lower is better for entry ``k``: a positive gain always means MTL did better. These
    are the terms that :func:`delta_m` averages. The denominator is ``|M_stl,k|`` so that
    the sign keeps its meaning for metrics that can be negative (e.g. R²); for positive
    metrics this is exactly the published definition.

    Parameters
    ----------
    mtl, stl : Mapping[key, float]
        Metric values of the multi-task and single-task runs, keyed by task name or by
        ``(task, metric)`` tuples; both must have the same keys.
    higher_is_better : bool or Mapping[key, bool]
        Direction of every metric: one bool for all entries, or one per key (NumPy
        bools are accepted).

    Returns
    -------
    dict[key, float]
        The gain of every key, in the order of ``stl``.

    Raises
    ------
    ValueError
        If the keys of ``mtl`` (or of a ``higher_is_better`` mapping) differ from those
        of ``stl`` (the message lists the missing and extra keys), if ``stl`` is empty,
        if an STL value is 0 (the relative gain is undefined; the key is named), or if a
        value is not finite.
    TypeError
        If a value is not a real number, or a direction is not a bool.

    References
    ----------
    K.-K. Maninis, I. Radosavovic and I. Kokkinos, "Attentive single-tasking of
    multiple tasks", CVPR 2019.

    Examples
    --------
    >>> gains = relative_gain({"a": 0.9, "b": 1.5}, {"a": 0.8, "b": 2.0},
    ...                       {"a": True, "b": False})
    >>> {k: round(v, 2) for k, v in gains.items()}
    {'a': 12.5, 'b': 25.0}
    """
    if not isinstance(mtl, Mapping) or not isinstance(stl, Mapping):
        raise TypeError("mtl and stl must be mappings from task (or (task, metric)) to value")
    if len(stl) == 0:
        raise ValueError("stl is empty; expected at least one task")
    _check_keys(stl, mtl, "mtl")
    if isinstance(higher_is_better, Mapping):
        _check_keys(stl, higher_is_better, "higher_is_better")
        directions = dict(higher_is_better)
    elif isinstance(higher_is_better, (bool, np.bool_)):
        directions = dict.fromkeys(stl, bool(higher_is_better))
    else:
        raise TypeError(
            f"higher_is_better must be a bool or a mapping of bools; got {higher_is_better!r}"
        )
    gains: dict[K, float] = {}
    for key in stl:
        base = _as_value(stl[key], key, "stl")
        value = _as_value(mtl[key], key, "mtl")
        direction = directions[key]
        if not isinstance(direction, (bool, np.bool_)):
            raise TypeError(f"higher_is_better[{key!r}] must be a bool; got {direction!r}")
        if base == 0.0:
            raise ValueError(
                f"stl[{key!r}] is 0: the relative gain over STL is undefined for {key!r}"
            )
        sign = 1.0 if direction else -1.0
        gains[key] = 100.0 * sign * (value - base) / abs(base)
    return gains


def delta_m(
    mtl: Mapping[K, float],
    stl: Mapping[K, float],
    higher_is_better: bool | Mapping[K, bool],
) -> float:
    """Δm: the mean relative gain of a multi-task run over single-task learning, in %.

    ``Δm = 100/K · Σ_k (-1)^{l_k} (M_mtl,k - M_stl,k) / |M_stl,k|`` over the K entries
    (tasks, or task-metric pairs), with ``l_k = 1`` when lower is better for entry k.
    Positive means MTL beats STL on average. See :func:`relative_gain` for the terms and
    for why ``|M_stl,k|`` is used.

    Parameters
    ----------
    mtl, stl : Mapping[key, float]
        Metric values of the multi-task and single-task runs, keyed by task name or by
        ``(task, metric)`` tuples; both must have the same keys.
    higher_is_better : bool or Mapping[key, bool]
        Direction of every metric: one bool for all entries, or one per key.

    Returns
    -------
    float
        Δm in percent.

    Raises
    ------
    ValueError
        As :func:`relative_gain`.
    TypeError
        As :func:`relative_gain`.

    References
    ----------
    K.-K. Maninis, I. Radosavovic and I. Kokkinos, "Attentive single-tasking of
    multiple tasks", CVPR 2019.
    B. Liu, X. Liu, X. Jin, P. Stone and Q. Liu, "Conflict-averse gradient descent for
    multi-task learning", NeurIPS 2021.
    A. Navon et al., "Multi-task learning as a bargaining game", ICML 2022.

    Examples
    --------
    >>> stl = {("seg", "miou"): 0.50, ("depth", "abs_err"): 0.40}
    >>> mtl = {("seg", "miou"): 0.55, ("depth", "abs_err"): 0.42}
    >>> hib = {("seg", "miou"): True, ("depth", "abs_err"): False}
    >>> round(delta_m(mtl, stl, hib), 2)  # (+10 % - 5 %) / 2
    2.5
    """
    gains = relative_gain(mtl, stl, higher_is_better)
    return sum(gains.values()) / len(gains)
