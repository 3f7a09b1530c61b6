"""Two-item image composites: MultiMNIST, MultiFashion and Multi-(Fashion+MNIST).

Each composite puts one item at the top-left and one at the bottom-right of a canvas
8 pixels wider than an item (36 × 36 for 28 × 28 items), each shifted by up to
``max_shift`` pixels towards the centre, keeps the brighter pixel where they overlap,
and shrinks the canvas back to the item size. The two tasks classify the left and the
right item.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from polytask.data._containers import MultiTaskData
from polytask.data._splits import RandomState, as_rng

_MARGIN = 8  # canvas side minus item side (36 - 28)
_CHUNK = 4096


@dataclass(frozen=True, eq=False)
class MultiItemImages:
    """Composite images with the class of their left and right item.

    Parameters
    ----------
    images : ndarray of float32 of shape (n_images, 1, side, side)
        Pixel intensities in [0, 1], one channel (the layout of torch's ``Conv2d``).
    left, right : ndarray of int64 of shape (n_images,)
        Class of the top-left and of the bottom-right item.
    partners : ndarray of int of shape (n_images,)
        Index of the right item in the set it was drawn from (the left item of
        composite ``i`` is item ``i``).
    offsets : ndarray of int of shape (n_images, 4)
        Canvas row and column of the left item's top-left corner, then of the right
        item's.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> pair = multi_mnist(rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
    ...                    np.arange(5), random_state=0)
    >>> data = pair.to_data()
    >>> data.task_names, data.n_features, images_from_features(data.feature_matrix()).shape
    (('left', 'right'), 784, (5, 1, 28, 28))
    """

    images: NDArray[np.float32]
    left: NDArray[np.int64]
    right: NDArray[np.int64]
    partners: NDArray[np.intp]
    offsets: NDArray[np.intp]

    @property
    def n_images(self) -> int:
        """Number of composite images."""
        return int(self.images.shape[0])

    def to_data(self) -> MultiTaskData:
        """Flatten the images into a shared-design :class:`MultiTaskData`.

        Returns
        -------
        MultiTaskData
            ``X`` of shape ``(n_images, side * side)`` (row-major pixels, features
            ``"pixel_<row>_<col>"``) and two multiclass tasks ``"left"`` and ``"right"``.
            :func:`images_from_features` turns ``X`` back into images.
        """
        n, _, h, w = self.images.shape
        names = [f"pixel_{r}_{c}" for r in range(h) for c in range(w)]
        Y = np.column_stack([self.left, self.right]).astype(np.float64)
        return MultiTaskData(
            self.images.reshape(n, h * w),
            Y,
            task_names=["left", "right"],
            kinds="multiclass",
            feature_names=names,
        )


def images_from_features(X: ArrayLike) -> NDArray[np.float32]:
    """Reshape flat square images ``(n, side * side)`` into ``(n, 1, side, side)`` float32.

    Parameters
    ----------
    X : array-like of shape (n_samples, side * side)
        Row-major pixels, as in :meth:`MultiItemImages.to_data`.

    Returns
    -------
    ndarray of float32 of shape (n_samples, 1, side, side)

    Raises
    ------
    ValueError
        If ``X`` is not 2-D or its width is not a perfect square.

    Examples
    --------
    >>> images_from_features(np.zeros((3, 784))).shape
    (3, 1, 28, 28)
    """
    arr = np.asarray(X, dtype=np.float32)
    side = math.isqrt(arr.shape[1]) if arr.ndim == 2 else -1
    if arr.ndim != 2 or side * side != arr.shape[1]:
        raise ValueError(
            f"X must have shape (n_samples, side * side) for square images, got {arr.shape}"
        )
    return arr.reshape(arr.shape[0], 1, side, side)


def _area_matrix(n_in: int, n_out: int) -> NDArray[np.float64]:
    """``(n_out, n_in)`` weights: output pixel ``i`` averages ``[i, i + 1) * n_in / n_out``."""
    scale = n_in / n_out
    edges = np.arange(n_out + 1) * scale
    lo = np.maximum(edges[:-1, None], np.arange(n_in)[None, :])
    hi = np.minimum(edges[1:, None], np.arange(1, n_in + 1)[None, :])
    return np.clip(hi - lo, 0.0, None) / scale


def area_resize(images: ArrayLike, size: int) -> NDArray[np.float32]:
    """Shrink square images by exact area averaging.

    Output pixel ``(i, j)`` covers the square ``[i s, (i+1) s) × [j s, (j+1) s)`` of the
    input (``s = side / size``) and is the mean of the input over it, each input pixel
    weighted by the area it shares with that square. This is a separable linear map
    ``A X Aᵀ``; it keeps the mean intensity and the range of the input.

    Parameters
    ----------
    images : array-like of shape (n_images, side, side)
        Input images.
    size : int
        Output side, at most ``side``.

    Returns
    -------
    ndarray of float32 of shape (n_images, size, size)

    Raises
    ------
    ValueError
        If ``images`` is not a stack of square images or ``size`` is not in [1, side].

    Examples
    --------
    >>> area_resize(np.ones((1, 36, 36)), 28).shape
    (1, 28, 28)
    """
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
        raise ValueError(f"images must have shape (n_images, side, side), got {arr.shape}")
    if not isinstance(size, Integral) or not 1 <= size <= arr.shape[1]:
        raise ValueError(f"size must be an integer in [1, {arr.shape[1]}], got {size!r}")
    A = _area_matrix(arr.shape[1], int(size)).astype(np.float32)
    return np.matmul(np.matmul(A, arr), A.T)


def _as_items(images: Any, labels: Any, name: str) -> tuple[NDArray[np.float32], NDArray]:
    arr = np.asarray(images)
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2] or arr.shape[0] == 0:
        raise ValueError(
            f"{name} images must have shape (n_images, side, side) with n_images >= 1, "
            f"got {arr.shape}"
        )
    if arr.dtype == np.uint8:
        items = arr.astype(np.float32) / 255.0
    elif arr.dtype.kind == "f" and np.all((arr >= 0) & (arr <= 1)):
        items = arr.astype(np.float32)
    else:
        raise ValueError(
            f"{name} images must be uint8 (0-255) or floats in [0, 1], got {arr.dtype}"
        )
    y = np.asarray(labels)
    if y.shape != (arr.shape[0],) or y.dtype.kind not in "iu" or (y.size and y.min() < 0):
        raise ValueError(
            f"{name} labels must be {arr.shape[0]} non-negative integers, got {y.dtype} of "
            f"shape {y.shape}"
        )
    return items, y.astype(np.int64)


def _compose(
    left: NDArray[np.float32],
    right: NDArray[np.float32],
    partners: NDArray[np.intp],
    offsets: NDArray[np.intp],
) -> NDArray[np.float32]:
    side = left.shape[1]
    out = np.empty((len(partners), 1, side, side), dtype=np.float32)
    for start in range(0, len(partners), _CHUNK):
        rows = slice(start, start + _CHUNK)
        off = offsets[rows]
        canvas = np.zeros((len(off), side + _MARGIN, side + _MARGIN), dtype=np.float32)
        for cols, source, index in ((0, left, np.arange(start, start + len(off))),
                                    (2, right, partners[rows])):  # fmt: skip
            for r, c in np.unique(off[:, cols : cols + 2], axis=0):
                hit = np.flatnonzero((off[:, cols] == r) & (off[:, cols + 1] == c))
                window = canvas[hit, r : r + side, c : c + side]
                canvas[hit, r : r + side, c : c + side] = np.maximum(window, source[index[hit]])
        out[rows, 0] = area_resize(canvas, side)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _check_shift(max_shift: Any) -> int:
    if (
        not isinstance(max_shift, Integral)
        or isinstance(max_shift, bool)
        or not 0 <= int(max_shift) <= _MARGIN
    ):
        raise ValueError(f"max_shift must be an integer in [0, {_MARGIN}], got {max_shift!r}")
    return int(max_shift)


def _build(
    left: tuple[NDArray[np.float32], NDArray[np.int64]],
    right: tuple[NDArray[np.float32], NDArray[np.int64]] | None,
    random_state: RandomState,
    max_shift: Any,
) -> MultiItemImages:
    shift = _check_shift(max_shift)
    rng = as_rng(random_state)
    n = left[0].shape[0]
    if right is None:
        if n < 2:
            raise ValueError(f"images must hold at least 2 images to pair them, got {n}")
        partners = (np.arange(n) + rng.integers(1, n, size=n)) % n  # uniform over j != i
        right = left
    else:
        if right[0].shape[1:] != left[0].shape[1:]:
            raise ValueError(
                f"both image sets must have the same image size, got {left[0].shape[1:]} "
                f"and {right[0].shape[1:]}"
            )
        partners = rng.integers(0, right[0].shape[0], size=n)
    draws = rng.integers(0, shift + 1, size=(n, 4))
    offsets = np.column_stack([draws[:, :2], _MARGIN - draws[:, 2:]]).astype(np.intp)
    images = _compose(left[0], right[0], partners.astype(np.intp), offsets)
    return MultiItemImages(images, left[1], right[1][partners], partners.astype(np.intp), offsets)


def multi_mnist(
    images: ArrayLike, labels: ArrayLike, random_state: RandomState = None, max_shift: int = 4
) -> MultiItemImages:
    """Build MultiMNIST: each image paired with a random other one, left and right.

    For every image ``i`` a partner ``j != i`` is drawn uniformly from the same set. On a
    zero canvas 8 pixels wider than an image (36 × 36 for MNIST), ``i`` is placed with
    its top-left corner at ``(a, b)`` and ``j`` at ``(8 - c, 8 - d)``, with ``a, b, c, d``
    drawn uniformly from ``{0, …, max_shift}``: ``i`` sits top-left, ``j`` bottom-right,
    each shifted by up to ``max_shift`` pixels towards the centre. Overlapping pixels
    keep the maximum, and the canvas is shrunk back to 28 × 28 by exact area averaging
    (:func:`area_resize`; Sener & Koltun's loader used bilinear interpolation). One
    composite per input image; the tasks are the classes of ``i`` (left) and ``j``
    (right).

    Parameters
    ----------
    images : array-like of shape (n_images, side, side)
        uint8 (0-255) or floats in [0, 1], e.g. :func:`load_mnist` ``.images``.
    labels : array-like of int of shape (n_images,)
        Class of each image.
    random_state : int, numpy.random.Generator or None
        Seed of the partners and shifts.
    max_shift : int, default=4
        Largest shift in pixels, in [0, 8]; 0 places the items exactly in the corners.

    Returns
    -------
    MultiItemImages
        ``images`` float32 of shape ``(n_images, 1, side, side)`` in [0, 1], ``left`` and
        ``right`` labels; ``.to_data()`` gives the flat :class:`MultiTaskData`.

    Raises
    ------
    ValueError
        If the images are not a stack of square uint8 or [0, 1] images, the labels do not
        match, fewer than two images are given, or ``max_shift`` is not in [0, 8].

    References
    ----------
    Sabour, S., Frosst, N. & Hinton, G. E. (2017). Dynamic routing between capsules.
    NeurIPS 2017 (MultiMNIST).

    Sener, O. & Koltun, V. (2018). Multi-task learning as multi-objective optimization.
    NeurIPS 2018.

    Lin, X., Zhen, H.-L., Li, Z., Zhang, Q. & Kwong, S. (2019). Pareto multi-task
    learning. NeurIPS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> digits = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    >>> pair = multi_mnist(digits, [0, 1, 2, 3], random_state=0)
    >>> pair.images.shape, pair.images.dtype.name, bool(pair.images.max() <= 1)
    ((4, 1, 28, 28), 'float32', True)
    >>> bool(np.all(pair.left == [0, 1, 2, 3])), bool(np.all(pair.partners != np.arange(4)))
    (True, True)
    """
    return _build(_as_items(images, labels, "MNIST"), None, random_state, max_shift)


def multi_fashion(
    images: ArrayLike, labels: ArrayLike, random_state: RandomState = None, max_shift: int = 4
) -> MultiItemImages:
    """Build MultiFashion: :func:`multi_mnist`'s construction on Fashion-MNIST items.

    Parameters
    ----------
    images : array-like of shape (n_images, side, side)
        uint8 (0-255) or floats in [0, 1], e.g. :func:`load_fashion_mnist` ``.images``.
    labels : array-like of int of shape (n_images,)
        Class of each item.
    random_state : int, numpy.random.Generator or None
        Seed of the partners and shifts.
    max_shift : int, default=4
        Largest shift in pixels, in [0, 8].

    Returns
    -------
    MultiItemImages
        As :func:`multi_mnist`.

    Raises
    ------
    ValueError
        As :func:`multi_mnist`.

    References
    ----------
    Lin, X., Zhen, H.-L., Li, Z., Zhang, Q. & Kwong, S. (2019). Pareto multi-task
    learning. NeurIPS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> items = np.zeros((3, 28, 28), dtype=np.uint8)
    >>> multi_fashion(items, [7, 8, 9], random_state=1).n_images
    3
    """
    return _build(_as_items(images, labels, "Fashion-MNIST"), None, random_state, max_shift)


def multi_fashion_mnist(
    mnist_images: ArrayLike,
    mnist_labels: ArrayLike,
    fashion_images: ArrayLike,
    fashion_labels: ArrayLike,
    random_state: RandomState = None,
    max_shift: int = 4,
) -> MultiItemImages:
    """Build Multi-(Fashion+MNIST): an MNIST digit top-left, a Fashion item bottom-right.

    One composite per MNIST image ``i``; its partner is a Fashion-MNIST item drawn
    uniformly. Placement, shifts, maximum and resizing are those of :func:`multi_mnist`.
    The tasks are the digit (``left``) and the clothing class (``right``).

    Parameters
    ----------
    mnist_images, fashion_images : array-like of shape (n, side, side)
        uint8 (0-255) or floats in [0, 1]; both sets with the same ``side``.
    mnist_labels, fashion_labels : array-like of int of shape (n,)
        Classes of the items of each set.
    random_state : int, numpy.random.Generator or None
        Seed of the partners and shifts.
    max_shift : int, default=4
        Largest shift in pixels, in [0, 8].

    Returns
    -------
    MultiItemImages
        As :func:`multi_mnist`; ``partners`` index the Fashion-MNIST set.

    Raises
    ------
    ValueError
        As :func:`multi_mnist`, or if the two sets' image sizes differ.

    References
    ----------
    Lin, X., Zhen, H.-L., Li, Z., Zhang, Q. & Kwong, S. (2019). Pareto multi-task
    learning. NeurIPS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> digits, items = np.zeros((2, 28, 28), np.uint8), np.ones((5, 28, 28), np.uint8)
    >>> pair = multi_fashion_mnist(digits, [1, 2], items, [0, 1, 2, 3, 4], random_state=0)
    >>> pair.left.tolist(), bool(np.all(pair.right == pair.partners))
    ([1, 2], True)
    """
    return _build(
        _as_items(mnist_images, mnist_labels, "MNIST"),
        _as_items(fashion_images, fashion_labels, "Fashion-MNIST"),
        random_state,
        max_shift,
    )
