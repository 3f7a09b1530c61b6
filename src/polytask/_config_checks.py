"""Typed readers of a parsed YAML mapping that name the key path in every error.

A configuration error reads ``models[2].method: unknown 'mgdaa' (did you mean 'mgda'?);
known: [...]``: the dotted path of the offending key first, then what is wrong and what
was expected.  All readers raise :class:`ConfigError`, a ``ValueError``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class ConfigError(ValueError):
    """An invalid experiment configuration; the message starts with the key path.

    Examples
    --------
    >>> err = ConfigError("models[0].lr: expected a number > 0, got -1")
    >>> isinstance(err, ValueError), str(err).split(":")[0]
    (True, 'models[0].lr')
    """


def join(path: str, key: str | int) -> str:
    """The path of ``key`` below ``path`` (``a.b``, ``a[2]``)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def unknown(path: str, value: object, known: Iterable[str], what: str = "") -> ConfigError:
    """The error for a name that is not one of ``known``, with a close match if any."""
    names = sorted(known)
    close = difflib.get_close_matches(str(value), names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    label = f"unknown {what} " if what else "unknown "
    return ConfigError(f"{path}: {label}{value!r}{hint}; known: {names}")


def mapping(value: object, path: str) -> dict[str, Any]:
    """``value`` as a dict with string keys."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got "
                          f"{type(value).__name__} {value!r}")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"{join(path, str(bad[0]))}: keys must be strings, got {bad[0]!r}")
    return dict(value)


def check_keys(m: Mapping[str, Any], path: str, allowed: Iterable[str]) -> None:
    """Raise on the first key of ``m`` not in ``allowed``."""
    allowed = list(allowed)
    for key in m:
        if key not in allowed:
            raise unknown(join(path, key), key, allowed, "key")


def string(value: object, path: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: expected a non-empty string, got {value!r}")
    return value


def choice(value: object, path: str, known: Iterable[str]) -> str:
    """A string among ``known``."""
    known = list(known)
    if value is None:
        raise ConfigError(f"{path}: required; known: {sorted(known)}")
    if not isinstance(value, str) or value not in known:
        raise unknown(path, value, known)
    return value


def boolean(value: object, path: str) -> bool:
    """A YAML boolean."""
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    return value


def integer(value: object, path: str, minimum: int | None = None) -> int:
    """An integer, at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{path}: expected an integer >= {minimum}, got {value}")
    return value


def number(value: object, path: str, low: float | None = None, high: float | None = None,
           strict: bool = False) -> float:
    """A finite number in ``[low, high]`` (open interval when ``strict``)."""
    if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value):
        raise ConfigError(f"{path}: expected a finite number, got {value!r}")
    x = float(value)
    bad_low = low is not None and (x <= low if strict else x < low)
    bad_high = high is not None and (x >= high if strict else x > high)
    if bad_low or bad_high:
        lo = "(" if strict else "["
        hi = ")" if strict else "]"
        raise ConfigError(f"{path}: expected a number in {lo}{low if low is not None else '-inf'}"
                          f", {high if high is not None else 'inf'}{hi}, got {value!r}")
    return x


def optional(reader: Any, value: object, path: str, *args: Any, **kwargs: Any) -> Any:
    """``None`` for ``None``, else ``reader(value, path, ...)``."""
    return None if value is None else reader(value, path, *args, **kwargs)


def sequence(value: object, path: str) -> list[Any]:
    """A YAML list (a scalar is not wrapped)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"{path}: expected a list, got {value!r}")
    return list(value)


def names(value: object, path: str) -> tuple[str, ...]:
    """A list of distinct non-empty strings."""
    items = tuple(string(v, join(path, i)) for i, v in enumerate(sequence(value, path)))
    dupes = sorted({n for n in items if items.count(n) > 1})
    if dupes:
        raise ConfigError(f"{path}: duplicate names {dupes}")
    return items


def params(value: object, path: str, allowed: Iterable[str]) -> dict[str, Any]:
    """A mapping of keyword arguments whose keys are among ``allowed``."""
    m = mapping(value, path)
    check_keys(m, path, allowed)
    return m


def plain(value: object, path: str) -> Any:
    """Check that ``value`` is made of YAML scalars, lists and mappings only (JSON-able)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v, join(path, str(k))) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, join(path, i)) for i, v in enumerate(value)]
    raise ConfigError(f"{path}: unsupported value {value!r} of type {type(value).__name__}")


__all__ = ["ConfigError"]
