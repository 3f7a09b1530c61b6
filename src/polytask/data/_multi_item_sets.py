"""Registered two-item image sets: MultiMNIST, MultiFashion and Multi-(Fashion+MNIST).

Each loader reads its source images (:func:`load_mnist`, :func:`load_fashion_mnist`),
builds the composites of :mod:`polytask.data._multimnist` with a fixed seed (so a
configuration names one data set, not a new draw per run) and returns them as
:class:`MultiTaskData` ready for the experiment runner: ``784`` pixel features in
``[0, 1]`` (row-major ``28 × 28``, :func:`images_from_features` restores the images) and
two multiclass tasks, ``left`` and ``right``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from polytask.data._containers import MultiTaskData
from polytask.data._idx import LabelledImages, load_fashion_mnist, load_mnist
from polytask.data._multimnist import (
    MultiItemImages,
    multi_fashion,
    multi_fashion_mnist,
    multi_mnist,
)
from polytask.data._splits import RandomState, as_rng

PathArg = str | os.PathLike[str]
Split = Literal["train", "test", "both"]
Parts = MultiTaskData | tuple[MultiTaskData, MultiTaskData]


def _parts(split: object) -> tuple[Literal["train", "test"], ...]:
    if split == "both":
        return ("train", "test")
    if split in ("train", "test"):
        return (split,)  # type: ignore[return-value]
    raise ValueError(f"split must be 'train', 'test' or 'both', got {split!r}")


def _check_n_images(n_images: object) -> int | None:
    if n_images is None:
        return None
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 2:
        raise ValueError(f"n_images must be None or an integer >= 2, got {n_images!r}")
    return int(n_images)


def _subset(source: LabelledImages, n_images: int | None, rng: np.random.Generator
            ) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """At most ``n_images`` images drawn without replacement, in their original order."""
    if n_images is None or n_images >= source.n_images:
        return source.images, source.labels
    keep = np.sort(rng.choice(source.n_images, size=n_images, replace=False))
    return source.images[keep], source.labels[keep]


def _build(split: object, n_images: object, random_state: RandomState,
           make: Callable[[Literal["train", "test"], np.random.Generator], MultiItemImages]
           ) -> Parts:
    parts = _parts(split)
    _check_n_images(n_images)
    rng = as_rng(random_state)
    out = [make(part, rng).to_data() for part in parts]
    return (out[0], out[1]) if len(out) == 2 else out[0]


def load_multi_mnist(
    path: PathArg | None = None,
    split: Split = "test",
    *,
    n_images: int | None = None,
    max_shift: int = 4,
    random_state: RandomState = 0,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> Parts:
    """MultiMNIST as multi-task data: the left and the right digit of 28 × 28 composites.

    One composite per MNIST image (or per image of a random subset of ``n_images``), its
    partner another image of the same part (:func:`multi_mnist`).  polytask's shared
    copy holds only MNIST's 10,000 test images, hence the default ``split="test"``; the
    training files can be placed by hand (see :func:`load_mnist`).

    Parameters
    ----------
    path : str or path-like, optional
        Folder of the MNIST IDX files. Default: ``<data_home>/mnist/``.
    split : {"test", "train", "both"}, default="test"
        The MNIST part to compose; ``"both"`` gives ``(train, test)``.
    n_images : int or None, default=None
        Compose a random subset of this many images of each part (all when None).
    max_shift : int, default=4
        Largest shift of an item towards the centre, in pixels (0 to 8).
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the subset, the partners and the shifts; fixed by default so that the
        data set is the same in every run.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    MultiTaskData or tuple of MultiTaskData
        ``X`` of shape ``(n_images, 784)`` in ``[0, 1]`` and the multiclass tasks
        ``left`` and ``right`` (digits 0-9); ``(train, test)`` for ``split="both"``.

    Raises
    ------
    ValueError
        If ``split`` is unknown, ``n_images`` is not None or an integer >= 2,
        ``max_shift`` is out of range, or a file is not IDX.
    FileNotFoundError
        If a file is absent and cannot be downloaded.
    DatasetDownloadError
        If a download fails or its checksum does not match.

    References
    ----------
    Sabour, S., Frosst, N. & Hinton, G. E. (2017). Dynamic routing between capsules.
    NeurIPS 2017.

    Sener, O. & Koltun, V. (2018). Multi-task learning as multi-objective optimization.
    NeurIPS 2018.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> def idx(ndim, dims, payload):
    ...     return bytes([0, 0, 8, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     d = pathlib.Path(tmp)
    ...     _ = (d / "t10k-images-idx3-ubyte").write_bytes(idx(3, (3, 28, 28), bytes(2352)))
    ...     _ = (d / "t10k-labels-idx1-ubyte").write_bytes(idx(1, (3,), bytes([4, 2, 7])))
    ...     data = load_multi_mnist(d)
    >>> data.task_names, data.feature_matrix().shape, data.label_matrix()[:, 0].tolist()
    (('left', 'right'), (3, 784), [4.0, 2.0, 7.0])
    """
    size = _check_n_images(n_images)

    def make(part: Literal["train", "test"], rng: np.random.Generator) -> MultiItemImages:
        source = load_mnist(path, split=part, data_home=data_home, download=download,
                            timeout=timeout)
        return multi_mnist(*_subset(source, size, rng), random_state=rng, max_shift=max_shift)

    return _build(split, n_images, random_state, make)


def load_multi_fashion(
    path: PathArg | None = None,
    split: Split = "test",
    *,
    n_images: int | None = None,
    max_shift: int = 4,
    random_state: RandomState = 0,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> Parts:
    """MultiFashion as multi-task data: the left and the right Fashion-MNIST item.

    :func:`load_multi_mnist`'s construction on Fashion-MNIST (:func:`multi_fashion`):
    one composite per item of the part (60,000 train, 10,000 test), or of a random
    subset of ``n_images``.

    Parameters
    ----------
    path : str or path-like, optional
        Folder of the Fashion-MNIST IDX files. Default: ``<data_home>/fashion_mnist/``.
    split : {"test", "train", "both"}, default="test"
        The part to compose; ``"both"`` gives ``(train, test)``.
    n_images : int or None, default=None
        Compose a random subset of this many items of each part (all when None).
    max_shift : int, default=4
        Largest shift of an item towards the centre, in pixels (0 to 8).
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the subset, the partners and the shifts (fixed by default).
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    MultiTaskData or tuple of MultiTaskData
        As :func:`load_multi_mnist`, with clothing classes 0-9.

    Raises
    ------
    ValueError
        As :func:`load_multi_mnist`.
    FileNotFoundError
        If a file is absent and cannot be downloaded.
    DatasetDownloadError
        If a download fails or its checksum does not match.

    References
    ----------
    Lin, X., Zhen, H.-L., Li, Z., Zhang, Q. & Kwong, S. (2019). Pareto multi-task
    learning. NeurIPS 2019.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> def idx(ndim, dims, payload):
    ...     return bytes([0, 0, 8, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     d = pathlib.Path(tmp)
    ...     _ = (d / "t10k-images-idx3-ubyte").write_bytes(idx(3, (4, 28, 28), bytes(3136)))
    ...     _ = (d / "t10k-labels-idx1-ubyte").write_bytes(idx(1, (4,), bytes([0, 1, 8, 9])))
    ...     data = load_multi_fashion(d, n_images=2, random_state=1)
    >>> data.n_samples, data.kinds["right"]
    (2, 'multiclass')
    """
    size = _check_n_images(n_images)

    def make(part: Literal["train", "test"], rng: np.random.Generator) -> MultiItemImages:
        source = load_fashion_mnist(path, split=part, data_home=data_home, download=download,
                                    timeout=timeout)
        return multi_fashion(*_subset(source, size, rng), random_state=rng,
                             max_shift=max_shift)

    return _build(split, n_images, random_state, make)


def load_multi_fashion_mnist(
    mnist_path: PathArg | None = None,
    fashion_path: PathArg | None = None,
    split: Split = "test",
    *,
    n_images: int | None = None,
    max_shift: int = 4,
    random_state: RandomState = 0,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> Parts:
    """Multi-(Fashion+MNIST) as multi-task data: an MNIST digit left, a clothing item right.

    One composite per MNIST image of the part (or of a random subset of ``n_images``),
    its partner a Fashion-MNIST item of the same part drawn uniformly
    (:func:`multi_fashion_mnist`).  Needs both folders, ``mnist/`` and
    ``fashion_mnist/``; the default ``split="test"`` uses the 10,000 test images of each.

    Parameters
    ----------
    mnist_path, fashion_path : str or path-like, optional
        Folders of the MNIST and Fashion-MNIST IDX files. Default:
        ``<data_home>/mnist/`` and ``<data_home>/fashion_mnist/``.
    split : {"test", "train", "both"}, default="test"
        The part of both sets to compose; ``"both"`` gives ``(train, test)``.
    n_images : int or None, default=None
        Compose a random subset of this many MNIST images of each part (all when None).
    max_shift : int, default=4
        Largest shift of an item towards the centre, in pixels (0 to 8).
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the subset, the partners and the shifts (fixed by default).
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when a path is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    MultiTaskData or tuple of MultiTaskData
        As :func:`load_multi_mnist`: ``left`` is the digit, ``right`` the clothing class.

    Raises
    ------
    ValueError
        As :func:`load_multi_mnist`.
    FileNotFoundError
        If a file is absent and cannot be downloaded.
    DatasetDownloadError
        If a download fails or its checksum does not match.

    References
    ----------
    Lin, X., Zhen, H.-L., Li, Z., Zhang, Q. & Kwong, S. (2019). Pareto multi-task
    learning. NeurIPS 2019.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> def idx(ndim, dims, payload):
    ...     return bytes([0, 0, 8, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     m, f = pathlib.Path(tmp, "m"), pathlib.Path(tmp, "f")
    ...     for d, labels in ((m, [3, 5]), (f, [9, 9, 9])):
    ...         d.mkdir()
    ...         n = len(labels)
    ...         _ = (d / "t10k-images-idx3-ubyte").write_bytes(idx(3, (n, 28, 28), bytes(784 * n)))
    ...         _ = (d / "t10k-labels-idx1-ubyte").write_bytes(idx(1, (n,), bytes(labels)))
    ...     data = load_multi_fashion_mnist(m, f)
    >>> data.label_matrix().tolist()
    [[3.0, 9.0], [5.0, 9.0]]
    """
    size = _check_n_images(n_images)

    def make(part: Literal["train", "test"], rng: np.random.Generator) -> MultiItemImages:
        digits = load_mnist(mnist_path, split=part, data_home=data_home, download=download,
                            timeout=timeout)
        items = load_fashion_mnist(fashion_path, split=part, data_home=data_home,
                                   download=download, timeout=timeout)
        return multi_fashion_mnist(*_subset(digits, size, rng), items.images, items.labels,
                                   random_state=rng, max_shift=max_shift)

    return _build(split, n_images, random_state, make)


__all__ = ["load_multi_fashion", "load_multi_fashion_mnist", "load_multi_mnist"]
