"""Atomic, pickle-free checkpoints.

A checkpoint is a nested structure of tensors and plain Python values (``None``,
``bool``, ``int``, ``float``, ``str``, lists, tuples and dicts with string or integer
keys): model and optimizer ``state_dict``\\ s, RNG states as ``uint8`` tensors, and text
(the training history as JSON). :func:`save_checkpoint` refuses anything else before
writing, so :func:`load_checkpoint` can always read it back with
``torch.load(..., weights_only=True)``, which never runs arbitrary unpickling code.

Writes are atomic: the checkpoint goes to a temporary file in the same directory, is
flushed to disk, then renamed over the previous one with :func:`os.replace`. A crash at
any moment leaves either the old or the new checkpoint, never a torn file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

CHECKPOINT_NAME = "checkpoint.pt"
"""File name of the latest checkpoint inside a run directory."""

_SCALARS = (type(None), bool, int, float, str)


def check_serializable(obj: object, where: str = "checkpoint") -> None:
    """Raise unless ``obj`` holds only tensors and plain values.

    Parameters
    ----------
    obj : object
        The structure to check.
    where : str, default="checkpoint"
        Path of ``obj`` inside the checkpoint, for the message.

    Raises
    ------
    TypeError
        Naming the first offending entry, e.g. ``checkpoint['history']``.

    Examples
    --------
    >>> import torch
    >>> check_serializable({"w": torch.zeros(2), "epoch": 3, "log": ["a", 1.5]})
    >>> try:
    ...     check_serializable({"f": len})
    ... except TypeError as exc:
    ...     print(str(exc).split(";")[0])
    checkpoint['f'] is a builtin_function_or_method
    """
    if isinstance(obj, (Tensor, *_SCALARS)):
        return
    if isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            check_serializable(item, f"{where}[{i}]")
        return
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; "
                                "checkpoint keys must be str or int")
            check_serializable(value, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where} is a {type(obj).__name__}; a checkpoint holds only tensors, None, bool, "
        "int, float, str, list, tuple and dict"
    )


def _fsync_directory(directory: Path) -> None:
    """Flush a directory entry to disk where the platform allows it (POSIX)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; keep the mode of the file being replaced.
        os.chmod(tmp_name, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(path.parent)
    return path


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, ``os.replace``).

    Parameters
    ----------
    state : mapping of str to object
        Tensors and plain values only (see :func:`check_serializable`).
    path : path-like
        Destination; its directory is created if needed.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        If ``state`` holds an object that ``weights_only`` loading would refuse; nothing
        is written then.

    Examples
    --------
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_checkpoint({"w": torch.ones(2), "epoch": 1}, Path(d) / "ckpt.pt")
    ...     load_checkpoint(p)["epoch"]
    1
    """
    check_serializable(state)
    return _atomic_write(Path(path), lambda handle: torch.save(dict(state), handle))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`save_checkpoint`)."""
    return _atomic_write(Path(path), lambda handle: handle.write(text.encode("utf-8")))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(..., weights_only=True)`` onto the CPU.

    Parameters
    ----------
    path : path-like
        A file written by :func:`save_checkpoint`.

    Returns
    -------
    dict
        The saved state.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a checkpoint of tensors and plain values (for example a
        pickle of arbitrary objects, which is refused rather than executed).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(p)!r}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError/RuntimeError variants
        raise ValueError(
            f"cannot load the checkpoint {str(p)!r} with weights_only=True "
            f"(not a polytask checkpoint, or it holds arbitrary objects): {exc}"
        ) from exc
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(p)!r} holds a {type(state).__name__}, not a dict")
    return state


def rng_states(device: torch.device) -> dict[str, Tensor]:
    """The global torch RNG state (and CUDA's on a CUDA device), as ``uint8`` tensors."""
    states = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: Mapping[str, Tensor], device: torch.device) -> None:
    """Restore the states returned by :func:`rng_states`."""
    torch.set_rng_state(states["cpu"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def cpu_state_dict(module: torch.nn.Module) -> dict[str, Any]:
    """A detached CPU copy of ``module.state_dict()`` (e.g. the best model so far)."""
    out: dict[str, Any] = {}
    for key, value in module.state_dict().items():
        out[key] = value.detach().to("cpu", copy=True) if isinstance(value, Tensor) else value
    return out


__all__ = [
    "CHECKPOINT_NAME",
    "check_serializable",
    "cpu_state_dict",
    "load_checkpoint",
    "rng_states",
    "save_checkpoint",
    "set_rng_states",
    "write_text_atomic",
]
