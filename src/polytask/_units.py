"""Finished units of a run directory: one JSON file each, written atomically.

A *unit* is one training whose result does not depend on any other: a (setting, model,
seed) of a benchmark, a relatedness measurement of one seed, one group training.  When
it finishes, its record is written to ``units/<part>/.../seed-<s>.json`` through a
temporary file and :func:`os.replace`, so a file is either absent or complete.  The
record holds a *key*, the hash of everything the unit's result depends on; a rerun
reuses a record whose key matches and redoes the unit otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNIT_FORMAT = 1


def unit_key(spec: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``spec`` (everything a unit depends on).

    Examples
    --------
    >>> unit_key({"a": 1, "b": [2]}) == unit_key({"b": [2], "a": 1})
    True
    """
    text = json.dumps({"format": UNIT_FORMAT, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


MAX_SLUG = 80
"""Longest slug: file systems limit a name to 255 bytes, and units nest several."""


def slug(text: str) -> str:
    """A file-name-safe version of ``text``; a short hash keeps distinct texts distinct.

    Texts longer than :data:`MAX_SLUG` keep their first characters and a longer hash.

    Examples
    --------
    >>> slug("mmoe-upgrad"), slug("STL ridge")[:10], slug("STL ridge") != slug("STL_ridge")
    ('mmoe-upgrad', 'STL_ridge-', True)
    >>> long = "_".join(f"school_{i:03d}" for i in range(60))
    >>> len(slug(long)), slug(long) != slug(long + "_school_060")
    (80, True)
    """
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "unit"
    if clean == text and len(clean) <= MAX_SLUG:
        return clean
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if len(clean) > MAX_SLUG:  # e.g. a group of 59 tasks: keep a readable head, then a hash
        return f"{clean[:MAX_SLUG - 17]}-{digest[:16]}"
    return f"{clean}-{digest[:6]}"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = pathlib.Path(tmp) / "a" / "b.json"
    ...     write_atomic(p, "{}")
    ...     p.read_text()
    '{}'
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:  # default permissions (umask)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Unit:
    """One independent training of a run.

    Attributes
    ----------
    parts : tuple of str
        Folder names below ``units/`` (e.g. setting and method).
    seed : int
        The seed.
    key : str
        Hash of everything the result depends on.
    label : str
        Human-readable name, for messages and the progress bar.
    """

    parts: tuple[str, ...]
    seed: int
    key: str
    label: str


class UnitStore:
    """The finished units of a run directory.

    Parameters
    ----------
    root : Path
        The ``units`` folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     store = UnitStore(pathlib.Path(tmp))
    ...     u = Unit(("default", "STL"), 0, unit_key({"m": "STL"}), "STL seed 0")
    ...     before = store.load(u)
    ...     _ = store.save(u, {"rows": []})
    ...     after = store.load(u)
    >>> before is None, after["rows"], after["seed"]
    (True, [], 0)
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, unit: Unit) -> Path:
        """Where ``unit``'s record lives."""
        folder = self.root.joinpath(*(slug(p) for p in unit.parts))
        return folder / f"seed-{unit.seed}.json"

    def load(self, unit: Unit) -> dict[str, Any] | None:
        """The record of ``unit`` if it finished with the same key, else None."""
        path = self.path(unit)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(record, dict) or record.get("key") != unit.key:
            return None
        return record

    def save(self, unit: Unit, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write ``record`` (plus the unit's key, parts and seed) atomically; return it."""
        full = {**record, "key": unit.key, "parts": list(unit.parts), "seed": unit.seed,
                "label": unit.label}
        path = self.path(unit)
        text = json.dumps(full, indent=1, sort_keys=True, default=_jsonable)
        write_atomic(path, text)
        return dict(json.loads(text))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Sequence):
        return list(value)
    return str(value)


__all__ = ["Unit", "UnitStore", "slug", "unit_key", "write_atomic"]
