"""Input stems: turn raw inputs (images, token ids) into a flat vector for the MLP parts.

A *stem* is the first module of a model built from a configuration file: it maps the
raw input ``(batch, in_features)`` to ``(batch, out_features)`` features, and the MLP
encoders, experts or towers start from ``out_features`` instead of ``in_features``.
Two stems exist, each described by a small YAML mapping:

- ``{type: lenet, channels: [10, 20], image: [28, 28]}``: the LeNet-style network of
  the MultiMNIST experiments, for flattened one-channel images (:class:`LeNetStem`);
- ``{type: embedding, n_ids: 20007, dim: 50}``: one embedding table for rows of integer
  ids stored as floats, e.g. token windows (:class:`EmbeddingStem`).

:func:`parse_stem` validates such a mapping without building anything (errors name the
key, ``stem.<key>``); :func:`make_stem` builds the module for a given input width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import torch
from torch import Tensor, nn

_KERNEL = 5
_POOL = 2


class StemSpecError(ValueError):
    """An invalid stem description; ``key`` is the offending key path (``stem.dim``).

    Parameters
    ----------
    key : str
        Dotted path of the key, starting with ``stem``.
    reason : str
        What is wrong and what was expected.

    Examples
    --------
    >>> err = StemSpecError("stem.dim", "expected an integer >= 1, got 0")
    >>> str(err), isinstance(err, ValueError)
    ('stem.dim: expected an integer >= 1, got 0', True)
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def _positive(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StemSpecError(key, f"expected an integer >= 1, got {value!r}")
    return value


def _pair(value: object, key: str) -> tuple[int, int]:
    """Two positive integers (one integer means a square)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise StemSpecError(key, f"expected a list of two integers >= 1, got {value!r}")
    first, second = (_positive(v, f"{key}[{i}]") for i, v in enumerate(value))
    return first, second


def _lenet_side(side: int) -> int:
    """Side length after conv5x5 → maxpool2 → conv5x5 → maxpool2 (0 if too small)."""
    for _ in range(2):
        side = max(side - (_KERNEL - 1), 0) // _POOL
    return side


@dataclass(frozen=True)
class LeNetSpec:
    """A validated ``{type: lenet}`` stem: two 5×5 convolutions, each max-pooled by 2.

    Parameters
    ----------
    channels : tuple of (int, int), default=(10, 20)
        Output channels of the two convolutions.
    image : tuple of (int, int), default=(28, 28)
        Image height and width; the input is ``(batch, height * width)``, row-major.

    Examples
    --------
    >>> spec = LeNetSpec()
    >>> spec.in_features, spec.out_features
    (784, 320)
    """

    channels: tuple[int, int] = (10, 20)
    image: tuple[int, int] = (28, 28)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", _pair(self.channels, "stem.channels"))
        object.__setattr__(self, "image", _pair(self.image, "stem.image"))
        height, width = self.image
        if min(_lenet_side(height), _lenet_side(width)) < 1:
            raise StemSpecError(
                "stem.image", f"each side must be at least 16 pixels for two 5x5 "
                f"convolutions and 2x2 poolings, got {list(self.image)}")

    @property
    def in_features(self) -> int:
        """int: The input width the stem needs, ``height * width``."""
        return self.image[0] * self.image[1]

    @property
    def out_features(self) -> int:
        """int: ``channels[1]`` times the side lengths left after the two poolings."""
        return self.channels[1] * _lenet_side(self.image[0]) * _lenet_side(self.image[1])


@dataclass(frozen=True)
class EmbeddingSpec:
    """A validated ``{type: embedding}`` stem: one table of ``n_ids`` vectors of ``dim``.

    Parameters
    ----------
    n_ids : int
        Number of ids; inputs must lie in ``[0, n_ids)``.
    dim : int
        Embedding size; a row of ``k`` ids becomes ``k * dim`` features.

    Examples
    --------
    >>> spec = EmbeddingSpec(n_ids=100, dim=8)
    >>> spec.in_features is None, spec.out_features_for(10)
    (True, 80)
    """

    n_ids: int
    dim: int

    def __post_init__(self) -> None:
        _positive(self.n_ids, "stem.n_ids")
        _positive(self.dim, "stem.dim")

    @property
    def in_features(self) -> int | None:
        """None: any number of id columns works."""
        return None

    def out_features_for(self, in_features: int) -> int:
        """Output width ``in_features * dim`` for ``in_features`` id columns."""
        return in_features * self.dim


StemSpec: TypeAlias = LeNetSpec | EmbeddingSpec
_KEYS: dict[str, tuple[str, ...]] = {
    "lenet": ("type", "channels", "image"),
    "embedding": ("type", "n_ids", "dim"),
}


def parse_stem(spec: object) -> StemSpec:
    """Validate a stem description (a mapping from a configuration file).

    Parameters
    ----------
    spec : mapping or LeNetSpec or EmbeddingSpec
        ``{type: lenet, channels: [c1, c2], image: [height, width]}`` (both keys
        optional, default ``[10, 20]`` and ``[28, 28]``; one integer for ``image`` is a
        square) or ``{type: embedding, n_ids: int, dim: int}``.

    Returns
    -------
    LeNetSpec or EmbeddingSpec

    Raises
    ------
    StemSpecError
        A ``ValueError`` whose ``key`` names the offending key (``stem.type``,
        ``stem.channels[1]``, ...): not a mapping, unknown type or key, a missing key,
        a value of the wrong type or range, or an image too small for LeNet.

    Examples
    --------
    >>> parse_stem({"type": "embedding", "n_ids": 50, "dim": 4})
    EmbeddingSpec(n_ids=50, dim=4)
    >>> parse_stem({"type": "lenet", "image": 36}).out_features
    720
    """
    if isinstance(spec, (LeNetSpec, EmbeddingSpec)):
        return spec
    if not isinstance(spec, Mapping):
        raise StemSpecError("stem", f"expected a mapping with a 'type' key (one of "
                            f"{sorted(_KEYS)}), got {type(spec).__name__} {spec!r}")
    kind = spec.get("type")
    if kind not in _KEYS:
        raise StemSpecError("stem.type", f"expected one of {sorted(_KEYS)}, got {kind!r}")
    for key in spec:
        if key not in _KEYS[kind]:
            raise StemSpecError(f"stem.{key}", f"unknown key for a {kind} stem; known: "
                                f"{list(_KEYS[kind])}")
    if kind == "lenet":
        return LeNetSpec(channels=_pair(spec.get("channels", (10, 20)), "stem.channels"),
                         image=_pair(spec.get("image", (28, 28)), "stem.image"))
    for key in ("n_ids", "dim"):
        if key not in spec:
            raise StemSpecError(f"stem.{key}", "required for an embedding stem")
    return EmbeddingSpec(n_ids=spec["n_ids"], dim=spec["dim"])


def make_stem(spec: Mapping[str, Any] | StemSpec, in_features: int) -> tuple[nn.Module, int]:
    """Build a fresh stem for inputs of width ``in_features``.

    Parameters
    ----------
    spec : mapping or LeNetSpec or EmbeddingSpec
        As in :func:`parse_stem`.
    in_features : int
        Width of the raw input rows.

    Returns
    -------
    module : nn.Module
        ``(batch, in_features) -> (batch, out_features)``.
    out_features : int
        Width of the stem's output, where the MLP parts start.

    Raises
    ------
    StemSpecError
        If ``spec`` is invalid, or a LeNet stem's ``image`` does not have
        ``in_features`` pixels (the message names ``stem.image``).
    ValueError
        If ``in_features`` is not a positive integer.

    Examples
    --------
    >>> module, width = make_stem({"type": "lenet"}, 784)
    >>> type(module).__name__, width
    ('LeNetStem', 320)
    >>> module, width = make_stem({"type": "embedding", "n_ids": 30, "dim": 4}, 5)
    >>> type(module).__name__, width
    ('EmbeddingStem', 20)
    """
    parsed = parse_stem(spec)
    if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
        raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
    if isinstance(parsed, LeNetSpec):
        if parsed.in_features != in_features:
            raise StemSpecError(
                "stem.image", f"{list(parsed.image)} means {parsed.in_features} input "
                f"features (height * width, one channel) but the data have {in_features}")
        lenet = LeNetStem(image=parsed.image, channels=parsed.channels)
        return lenet, lenet.out_features
    emb = EmbeddingStem(parsed.n_ids, parsed.dim, in_features)
    return emb, emb.out_features


class LeNetStem(nn.Module):
    """LeNet-style convolutional stem for flattened one-channel images.

    ``conv5x5(1 → c1) → maxpool2 → ReLU → conv5x5(c1 → c2) → maxpool2 → ReLU →
    flatten``; with the defaults a 28×28 image gives ``20 * 4 * 4 = 320`` features,
    the shared encoder of the MultiMNIST experiments of MGDA and Pareto MTL.

    Parameters
    ----------
    image : tuple of (int, int), default=(28, 28)
        Height and width; each at least 16.
    channels : tuple of (int, int), default=(10, 20)
        Output channels of the two convolutions.

    Attributes
    ----------
    in_features, out_features : int
        ``height * width`` and the flattened output width.

    Raises
    ------
    StemSpecError
        If ``image`` or ``channels`` is invalid (a ``ValueError`` naming the key).

    References
    ----------
    .. [1] LeCun, Y., Bottou, L., Bengio, Y., & Haffner, P. (1998). Gradient-based
       learning applied to document recognition. *Proceedings of the IEEE*, 86(11).
    .. [2] Sener, O., & Koltun, V. (2018). Multi-task learning as multi-objective
       optimization. *NeurIPS*.
    .. [3] Lin, X., Zhen, H.-L., Li, Z., Zhang, Q., & Kwong, S. (2019). Pareto multi-task
       learning. *NeurIPS*.

    Examples
    --------
    >>> import torch
    >>> stem = LeNetStem()
    >>> tuple(stem(torch.zeros(3, 784)).shape)
    (3, 320)
    """

    def __init__(self, image: tuple[int, int] = (28, 28),
                 channels: tuple[int, int] = (10, 20)) -> None:
        spec = LeNetSpec(channels=_pair(channels, "stem.channels"),
                         image=_pair(image, "stem.image"))
        super().__init__()
        self.image = spec.image
        self.in_features = spec.in_features
        self.out_features = spec.out_features
        c1, c2 = spec.channels
        self.layers = nn.Sequential(
            nn.Conv2d(1, c1, _KERNEL), nn.MaxPool2d(_POOL), nn.ReLU(),
            nn.Conv2d(c1, c2, _KERNEL), nn.MaxPool2d(_POOL), nn.ReLU(),
            nn.Flatten(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(batch, height * width)`` (or ``(batch, 1, height, width)``) pixels.

        Parameters
        ----------
        x : Tensor
            Row-major pixels of one-channel images.

        Returns
        -------
        Tensor of shape (batch, out_features)

        Raises
        ------
        ValueError
            If ``x`` has another shape (the message names ``stem.image``).
        """
        height, width = self.image
        if tuple(x.shape[1:]) not in ((self.in_features,), (1, height, width)):
            raise ValueError(
                f"stem.image: the LeNet stem expects inputs of shape (batch, "
                f"{self.in_features}) (a {height}x{width} image, flattened row-major), "
                f"got {tuple(x.shape)}")
        out: Tensor = self.layers(x.reshape(x.shape[0], 1, height, width))
        return out


class EmbeddingStem(nn.Module):
    """One embedding table for rows of integer ids stored as floats, flattened.

    A row ``(i_1, ..., i_k)`` becomes ``[E[i_1]; ...; E[i_k]]``, ``k * dim`` features,
    with one table ``E`` of ``n_ids`` rows for every column (word and feature ids share
    the id space). Ids are checked at every call (one reduction): all must be integers
    in ``[0, n_ids)``.

    Parameters
    ----------
    n_ids : int
        Size of the id space.
    dim : int
        Embedding size.
    n_positions : int
        Number of id columns ``k`` of an input row.

    Attributes
    ----------
    embedding : nn.Embedding
        The table, ``(n_ids, dim)``.
    in_features, out_features : int
        ``k`` and ``k * dim``.

    Raises
    ------
    StemSpecError
        If ``n_ids`` or ``dim`` is not a positive integer (a ``ValueError``).
    ValueError
        If ``n_positions`` is not a positive integer.

    References
    ----------
    .. [1] Collobert, R., Weston, J., Bottou, L., Karlen, M., Kavukcuoglu, K., & Kuksa, P.
       (2011). Natural language processing (almost) from scratch. *JMLR*, 12, 2493-2537.

    Examples
    --------
    >>> import torch
    >>> stem = EmbeddingStem(n_ids=10, dim=3, n_positions=4)
    >>> tuple(stem(torch.tensor([[0.0, 1.0, 2.0, 9.0]])).shape)
    (1, 12)
    """

    def __init__(self, n_ids: int, dim: int, n_positions: int) -> None:
        spec = EmbeddingSpec(n_ids=n_ids, dim=dim)
        if isinstance(n_positions, bool) or not isinstance(n_positions, int) or n_positions < 1:
            raise ValueError(f"n_positions must be a positive integer, got {n_positions!r}")
        super().__init__()
        self.embedding = nn.Embedding(spec.n_ids, spec.dim)
        self.in_features = n_positions
        self.out_features = spec.out_features_for(n_positions)

    def forward(self, x: Tensor) -> Tensor:
        """Embed every id of ``x`` ``(batch, k)`` and concatenate, ``(batch, k * dim)``.

        Parameters
        ----------
        x : Tensor
            Integer ids, as a float or integer tensor.

        Returns
        -------
        Tensor of shape (batch, k * dim)

        Raises
        ------
        ValueError
            If ``x`` is not ``(batch, k)``, holds a non-integer (e.g. standardised
            inputs), or an id outside ``[0, n_ids)`` (the message names ``stem.n_ids``).
        """
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"the embedding stem expects ids of shape (batch, "
                             f"{self.in_features}), got {tuple(x.shape)}")
        n_ids = self.embedding.num_embeddings
        bad = (x < 0) | (x >= n_ids)
        if torch.is_floating_point(x):
            bad = bad | (x != torch.floor(x))
        if bool(bad.any()):
            raise ValueError(self._describe(x, n_ids))
        flat: Tensor = self.embedding(x.long()).reshape(x.shape[0], -1)
        return flat

    @staticmethod
    def _describe(x: Tensor, n_ids: int) -> str:
        if torch.is_floating_point(x) and bool((x != torch.floor(x)).any()):
            return ("the embedding stem expects integer ids stored as floats, got "
                    "non-integer values (standardising the inputs destroys the ids)")
        return (f"stem.n_ids: ids must lie in [0, {n_ids}), got values from "
                f"{float(x.min()):g} to {float(x.max()):g}")


__all__ = [
    "EmbeddingSpec",
    "EmbeddingStem",
    "LeNetSpec",
    "LeNetStem",
    "StemSpec",
    "StemSpecError",
    "make_stem",
    "parse_stem",
]
