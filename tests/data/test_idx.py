"""Tests of the IDX reader, the MNIST/Fashion-MNIST loaders and the two-item composites.

IDX files are written here byte by byte (magic, big-endian sizes, data); the area
resize is checked against an exact upsample-then-block-average reference and the
composites against a brute-force rebuild from their recorded partners and offsets.
The published files are checked when ``../shared/data`` is present.
"""

from __future__ import annotations

import gzip
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polytask.data import (
    area_resize,
    images_from_features,
    multi_fashion,
    multi_fashion_mnist,
    multi_mnist,
)
from polytask.data._catalog import PUBLISHED, dataset_folder
from polytask.data._download import content_sha256, local_copy
from polytask.data.datasets import (
    LabelledImages,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)

_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real = urllib.request.urlopen

    def guarded(url: Any, *args: Any, **kwargs: Any) -> Any:
        target = url if isinstance(url, str) else url.full_url
        if not target.startswith("file:"):
            raise AssertionError(f"a test tried to reach the network: {target}")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


def _idx(arr: np.ndarray) -> bytes:
    """IDX bytes of ``arr``, written independently of the reader."""
    header = bytes([0, 0, _CODES[arr.dtype.type], arr.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _write(path: Path, data: bytes, gz: bool = False) -> Path:
    if gz:
        path, data = path.with_name(path.name + ".gz"), gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("dtype", list(_CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path: Path, dtype: type, gz: bool) -> None:
    arr: np.ndarray = (np.arange(2 * 3 * 4).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype is np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    got = read_idx(_write(tmp_path / "a-idx3", _idx(arr), gz))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


def test_read_idx_big_endian_sizes(tmp_path: Path) -> None:
    header = bytes([0, 0, 0x08, 1]) + bytes([0, 0, 1, 4])  # 260 items, big-endian
    assert read_idx(_write(tmp_path / "l", header + bytes(260))).shape == (260,)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda b: b"\x01" + b[1:], "bad magic number"),
        (lambda b: b[:2] + b"\x07" + b[3:], "bad magic number"),
        (lambda b: b"", "bad magic number none"),
        (lambda b: b[:6], "header truncated"),
        (lambda b: b[:-1], r"shape \(2, 3\) \(6 bytes of data\) but the file holds 5 bytes"),
        (lambda b: b + b"\x00", "holds 7 bytes"),
    ],
)
def test_read_idx_corrupt(tmp_path: Path, damage: Any, match: str) -> None:
    good = _idx(np.zeros((2, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=match):
        read_idx(_write(tmp_path / "x-idx2-ubyte", damage(good)))


def test_read_idx_bad_gzip_and_missing(tmp_path: Path) -> None:
    file = _write(tmp_path / "x", _idx(np.zeros((50, 28, 28), np.uint8)), gz=True)
    file.write_bytes(file.read_bytes()[:-30])
    with pytest.raises(ValueError, match=r"x\.gz is not a valid gzip file"):
        read_idx(file)
    with pytest.raises(FileNotFoundError, match=r"IDX file .*nope not found"):
        read_idx(tmp_path / "nope")


def _mnist_dir(tmp_path: Path, prefix: str, n: int = 5, gz: bool = True, **bad: Any) -> Path:
    rng = np.random.default_rng(0)
    images = bad.get("images", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
    labels = bad.get("labels", (np.arange(n) % 10).astype(np.uint8))
    _write(tmp_path / f"{prefix}-images-idx3-ubyte", _idx(images), gz)
    _write(tmp_path / f"{prefix}-labels-idx1-ubyte", _idx(labels), gz)
    return tmp_path


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_and_fashion_tiny(tmp_path: Path, gz: bool) -> None:
    folder = _mnist_dir(tmp_path, "t10k", gz=gz)
    _mnist_dir(tmp_path, "train", n=3, gz=gz)
    expected = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    mnist = load_mnist(folder)
    np.testing.assert_array_equal(mnist.images, expected)
    assert mnist.labels.tolist() == [0, 1, 2, 3, 4] and mnist.labels.dtype == np.int64
    assert load_mnist(folder, split="train").n_images == 3  # local train files work too
    assert load_fashion_mnist(folder).n_images == 3
    assert load_fashion_mnist(folder, split="test").n_images == 5


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"labels": np.zeros(4, np.uint8)}, r"expected 5 unsigned-byte labels"),
        ({"labels": np.full(5, 10, np.uint8)}, r"labels must be classes 0-9, found 10"),
        ({"images": np.zeros((5, 784), np.uint8)}, r"expected unsigned-byte images \(idx3"),
        ({"images": np.zeros((5, 28, 28), np.int16)}, r"got int16"),
    ],
)
def test_load_mnist_inconsistent_files(tmp_path: Path, bad: dict, match: str) -> None:
    folder = _mnist_dir(tmp_path, "t10k", **bad)
    with pytest.raises(ValueError, match=match + ".*pmallari"):
        load_mnist(folder)


def test_load_mnist_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"split must be one of \['test', 'train'\]"):
        load_mnist(tmp_path, split="valid")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.*cannot download it"):
        load_mnist(tmp_path, split="train")
    with pytest.raises(FileNotFoundError, match=r"fashion_mnist[/\\]train-images.*zalando"):
        load_dataset("fashion_mnist", data_home=tmp_path, download=False)
    with pytest.raises(ValueError, match="images must be a uint8 array"):
        LabelledImages(np.zeros((2, 3)), np.zeros(2, int))  # type: ignore[arg-type]


# ------------------------------------------------------------------------- composites


def _reference_area(images: np.ndarray, size: int) -> np.ndarray:
    """Exact area average: upsample to a common multiple, then average blocks."""
    side = images.shape[1]
    lcm = np.lcm(side, size)
    up = images.repeat(lcm // side, axis=1).repeat(lcm // side, axis=2)
    k = lcm // size
    return up.reshape(len(images), size, k, size, k).mean(axis=(2, 4))


@pytest.mark.parametrize(("side", "size"), [(36, 28), (6, 4), (9, 3), (5, 5), (7, 2)])
def test_area_resize_matches_block_average(side: int, size: int) -> None:
    images = np.random.default_rng(side).random((3, side, side))
    got = area_resize(images, size)
    assert got.shape == (3, size, size) and got.dtype == np.float32
    np.testing.assert_allclose(got, _reference_area(images, size), atol=1e-6)
    np.testing.assert_allclose(got.mean(axis=(1, 2)), images.mean(axis=(1, 2)), atol=1e-6)


def test_area_resize_errors() -> None:
    with pytest.raises(ValueError, match="size must be an integer in"):
        area_resize(np.zeros((1, 4, 4)), 5)
    with pytest.raises(ValueError, match="side, side"):
        area_resize(np.zeros((1, 4, 3)), 2)


def _rebuild(left: np.ndarray, right: np.ndarray, i: int, j: int, off: np.ndarray) -> np.ndarray:
    """Brute-force composite of one pair: explicit canvas, loops over pixels."""
    canvas = np.zeros((36, 36))
    for (r0, c0), img in (((off[0], off[1]), left[i]), ((off[2], off[3]), right[j])):
        for r in range(28):
            for c in range(28):
                canvas[r0 + r, c0 + c] = max(canvas[r0 + r, c0 + c], img[r, c] / 255.0)
    return _reference_area(canvas[None], 28)[0]


@pytest.mark.parametrize("max_shift", [0, 2, 4])
def test_multi_mnist_rebuilds_from_partners_and_offsets(max_shift: int) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5, 9])
    pair = multi_mnist(images, labels, random_state=7, max_shift=max_shift)
    assert pair.images.shape == (6, 1, 28, 28) and pair.images.dtype == np.float32
    np.testing.assert_array_equal(pair.left, labels)
    np.testing.assert_array_equal(pair.right, labels[pair.partners])
    assert np.all(pair.partners != np.arange(6))
    off = pair.offsets
    assert off[:, :2].min() >= 0 and off[:, :2].max() <= max_shift
    assert off[:, 2:].min() >= 8 - max_shift and off[:, 2:].max() <= 8
    for i in range(6):
        expected = _rebuild(images, images, i, int(pair.partners[i]), off[i])
        np.testing.assert_allclose(pair.images[i, 0], expected, atol=1e-5)


def test_multi_mnist_is_seeded() -> None:
    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    labels = np.arange(20) % 10
    a, b = multi_mnist(images, labels, random_state=3), multi_mnist(images, labels, random_state=3)
    np.testing.assert_array_equal(a.images, b.images)
    c = multi_mnist(images, labels, random_state=4)
    assert not np.array_equal(a.partners, c.partners)
    # floats in [0, 1] give the same composite as the uint8 images they come from
    d = multi_fashion(images / 255.0, labels, random_state=3)
    np.testing.assert_allclose(d.images, a.images, atol=1e-6)


def test_multi_fashion_mnist_and_flat_view() -> None:
    rng = np.random.default_rng(2)
    digits = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    items = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    pair = multi_fashion_mnist(digits, [0, 1, 2, 3], items, np.arange(7), random_state=0)
    assert pair.left.tolist() == [0, 1, 2, 3] and pair.partners.max() < 7
    np.testing.assert_array_equal(pair.right, pair.partners)
    for i in range(4):
        expected = _rebuild(digits, items, i, int(pair.partners[i]), pair.offsets[i])
        np.testing.assert_allclose(pair.images[i, 0], expected, atol=1e-5)
    data = pair.to_data()
    assert data.task_names == ("left", "right") and set(data.kinds.values()) == {"multiclass"}
    assert data.feature_names[29] == "pixel_1_1"
    np.testing.assert_array_equal(images_from_features(data.feature_matrix()), pair.images)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda z: multi_mnist(z, [0, 1], max_shift=9),
            r"max_shift must be an integer in \[0, 8\]",
        ),
        (
            lambda z: multi_mnist(z, [0, 1], max_shift=1.5),  # type: ignore[arg-type]
            "max_shift must be an integer",
        ),
        (lambda z: multi_mnist(z[:1], [0]), "at least 2 images"),
        (lambda z: multi_mnist(z, [0]), r"MNIST labels must be 2 non-negative integers"),
        (lambda z: multi_mnist(z * 3.0, [0, 1]), r"uint8 \(0-255\) or floats in \[0, 1\]"),
        (lambda z: multi_fashion(z[:, :, :27], [0, 1]), "side, side"),
        (
            lambda z: multi_fashion_mnist(z, [0, 1], z[:, :20, :20], [0, 1]),
            "same image size",
        ),
        (lambda z: images_from_features(np.zeros((2, 783))), "square images"),
    ],
)
def test_composite_errors(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(np.full((2, 28, 28), 0.5))


# ---------------------------------------------------------------------- published files


def _shared(folder: str) -> Path:
    if not (_SHARED / folder).is_dir():
        pytest.skip(f"shared dataset folder {folder!r} not present beside the repository")
    return _SHARED


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_recorded_checksums_match_shared_copies(name: str) -> None:
    root = _shared(name)
    for remote in PUBLISHED[name].files:
        local = local_copy(dataset_folder(name, root), remote.filename)
        assert local is not None and content_sha256(local) == remote.sha256


def test_real_mnist_and_multi_mnist() -> None:
    mnist = load_dataset("mnist", data_home=_shared("mnist"), download=False)
    assert mnist.images.shape == (10000, 28, 28)
    counts = np.bincount(mnist.labels)
    assert (counts.min(), counts.max(), counts[0], counts[1]) == (892, 1135, 980, 1135)
    pair = multi_mnist(mnist.images, mnist.labels, random_state=0)
    assert pair.images.shape == (10000, 1, 28, 28)
    assert 0.0 <= pair.images.min() and pair.images.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(pair.left), counts)


def test_real_fashion_mnist() -> None:
    train = load_fashion_mnist(data_home=_shared("fashion_mnist"), download=False)
    test = load_fashion_mnist(data_home=_SHARED, split="test", download=False)
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    np.testing.assert_array_equal(np.bincount(train.labels), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(test.labels), np.full(10, 1000))
    assert round(float(train.images.mean()), 2) == 72.94  # PROVENANCE.md
