"""The IDX format of MNIST and Fashion-MNIST, and loaders of both image sets.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian unsigned 32-bit size per dimension, then the values in
row-major order, big-endian. MNIST's images are ``idx3`` (``n × 28 × 28``, unsigned
bytes) and its labels ``idx1`` (``n`` unsigned bytes); files are usually gzip-compressed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from polytask.data._catalog import PUBLISHED, dataset_paths
from polytask.data._formats import read_bytes

PathArg = str | os.PathLike[str]

_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike[str]) -> NDArray[np.generic]:
    """Read an IDX file (plain or gzip-compressed) into a NumPy array.

    Parameters
    ----------
    path : str or path-like
        The file, e.g. ``t10k-images-idx3-ubyte.gz``.

    Returns
    -------
    ndarray
        Array of the file's shape and type, in native byte order (``uint8`` for MNIST).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is a corrupt gzip, its magic number is not an IDX one, or its size
        does not match the dimensions in its header (a truncated file).

    References
    ----------
    LeCun, Y., Cortes, C. & Burges, C. J. C. The MNIST database of handwritten digits,
    "file formats" section (yann.lecun.com/exdb/mnist).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> header = bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp) / "tiny-idx2-ubyte"
    ...     _ = f.write_bytes(header + bytes(range(6)))
    ...     read_idx(f).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"IDX file {file} not found")
    raw = read_bytes(file)
    expected = "expected an IDX file (magic 0x00 0x00 <type> <ndim>, as MNIST's)"
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise ValueError(f"{file}: bad magic number {raw[:4].hex() or 'none'}; {expected}")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise ValueError(f"{file}: header truncated ({len(raw)} bytes); {expected}")
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - start != size:
        raise ValueError(
            f"{file}: header announces shape {shape} ({size} bytes of data) but the file "
            f"holds {len(raw) - start} bytes after the header (truncated or corrupt)"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=start).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


@dataclass(frozen=True, eq=False)
class LabelledImages:
    """Grey-scale images with one class label each (MNIST, Fashion-MNIST).

    Parameters
    ----------
    images : ndarray of uint8 of shape (n_images, height, width)
        Pixel intensities 0-255.
    labels : ndarray of int64 of shape (n_images,)
        Class indices 0-9.

    Examples
    --------
    >>> import numpy as np
    >>> imgs = LabelledImages(np.zeros((2, 28, 28), np.uint8), np.array([3, 7]))
    >>> imgs.n_images, imgs.labels.dtype.name
    (2, 'int64')
    """

    images: NDArray[np.uint8]
    labels: NDArray[np.int64]

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        labels = np.asarray(self.labels)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"images must be a uint8 array of shape (n_images, height, width), got "
                f"{images.dtype} of shape {images.shape}"
            )
        if labels.shape != (images.shape[0],) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"labels must be integers of shape ({images.shape[0]},), got {labels.dtype} "
                f"of shape {labels.shape}"
            )
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels.astype(np.int64))

    @property
    def n_images(self) -> int:
        """Number of images."""
        return int(self.images.shape[0])


def _load_pair(name: str, images: Path, labels: Path) -> LabelledImages:
    hint = f"the {name} files can be obtained from {PUBLISHED[name].source}"
    X, y = read_idx(images), read_idx(labels)
    if X.ndim != 3 or X.dtype != np.uint8:
        raise ValueError(
            f"{images}: expected unsigned-byte images (idx3-ubyte) of shape (n, rows, cols), "
            f"got {X.dtype} of shape {X.shape}; {hint}"
        )
    if y.ndim != 1 or y.dtype != np.uint8 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{labels}: expected {X.shape[0]} unsigned-byte labels (idx1-ubyte) to match "
            f"{images.name}, got {y.dtype} of shape {y.shape}; {hint}"
        )
    if y.size and int(y.max()) > 9:
        raise ValueError(f"{labels}: labels must be classes 0-9, found {int(y.max())}; {hint}")
    return LabelledImages(X.astype(np.uint8, copy=False), y.astype(np.int64))


def _split_files(split: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    if split not in allowed:
        raise ValueError(f"split must be one of {list(allowed)}, got {split!r}")
    prefix = "t10k" if split == "test" else "train"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def load_mnist(
    path: PathArg | None = None,
    split: Literal["train", "test"] = "test",
    *,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> LabelledImages:
    """Load MNIST handwritten digits from the original IDX files.

    polytask's benchmarks hold only the 10,000-image test split, so it is the default
    and the only registered (downloadable) one; ``split="train"`` reads
    ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (plain or ``.gz``) that
    you place in the folder yourself. Build MultiMNIST with :func:`multi_mnist`.

    Parameters
    ----------
    path : str or path-like, optional
        Folder holding the files. Default: ``<data_home>/mnist/``.
    split : {"test", "train"}, default="test"
        Which published split to read.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    LabelledImages
        ``images`` uint8 of shape ``(10000, 28, 28)`` and ``labels`` 0-9 for the test split.

    Raises
    ------
    FileNotFoundError
        If a file is absent and cannot be downloaded.
    DatasetDownloadError
        If a download fails or its checksum does not match.
    ValueError
        If ``split`` is unknown, a file is not IDX, or images and labels disagree.

    References
    ----------
    LeCun, Y., Bottou, L., Bengio, Y. & Haffner, P. (1998). Gradient-based learning
    applied to document recognition. Proceedings of the IEEE 86(11), 2278-2324.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> def idx(code_ndim, dims, payload):
    ...     return bytes([0, 0, 8, code_ndim]) + b"".join(
    ...         d.to_bytes(4, "big") for d in dims) + payload
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     d = pathlib.Path(tmp)
    ...     _ = (d / "t10k-images-idx3-ubyte").write_bytes(idx(3, (2, 28, 28), bytes(1568)))
    ...     _ = (d / "t10k-labels-idx1-ubyte").write_bytes(idx(1, (2,), bytes([4, 2])))
    ...     mnist = load_mnist(d)
    >>> mnist.images.shape, mnist.labels.tolist()
    ((2, 28, 28), [4, 2])
    """
    files = _split_files(split, ("test", "train"))
    images, labels = dataset_paths("mnist", list(files), path, data_home, download, timeout)
    return _load_pair("mnist", images, labels)


def load_fashion_mnist(
    path: PathArg | None = None,
    split: Literal["train", "test"] = "train",
    *,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> LabelledImages:
    """Load Fashion-MNIST (Zalando's 28 × 28 clothing images, 10 classes) from IDX files.

    Classes: 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt,
    7 sneaker, 8 bag, 9 ankle boot. Build MultiFashion with :func:`multi_fashion` and
    Multi-(Fashion+MNIST) with :func:`multi_fashion_mnist`.

    Parameters
    ----------
    path : str or path-like, optional
        Folder holding the files. Default: ``<data_home>/fashion_mnist/``.
    split : {"train", "test"}, default="train"
        60,000 training or 10,000 test images.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    LabelledImages
        ``images`` uint8 of shape ``(n, 28, 28)`` and ``labels`` 0-9.

    Raises
    ------
    FileNotFoundError
        If a file is absent and cannot be downloaded.
    DatasetDownloadError
        If a download fails or its checksum does not match.
    ValueError
        If ``split`` is unknown, a file is not IDX, or images and labels disagree.

    References
    ----------
    Xiao, H., Rasul, K. & Vollgraf, R. (2017). Fashion-MNIST: a novel image dataset for
    benchmarking machine learning algorithms. arXiv:1708.07747.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> def idx(ndim, dims, payload):
    ...     return bytes([0, 0, 8, ndim]) + b"".join(
    ...         d.to_bytes(4, "big") for d in dims) + payload
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     d = pathlib.Path(tmp)
    ...     _ = (d / "t10k-images-idx3-ubyte").write_bytes(idx(3, (1, 28, 28), bytes(784)))
    ...     _ = (d / "t10k-labels-idx1-ubyte").write_bytes(idx(1, (1,), bytes([9])))
    ...     fashion = load_fashion_mnist(d, split="test")
    >>> fashion.n_images, fashion.labels.tolist()
    (1, [9])
    """
    files = _split_files(split, ("train", "test"))
    images, labels = dataset_paths("fashion_mnist", list(files), path, data_home, download, timeout)
    return _load_pair("fashion_mnist", images, labels)
