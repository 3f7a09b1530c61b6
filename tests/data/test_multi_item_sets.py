"""Registered two-item image sets: MultiMNIST, MultiFashion, Multi-(Fashion+MNIST)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polytask.data import MultiTaskData, images_from_features
from polytask.data._multi_item_sets import (
    load_multi_fashion,
    load_multi_fashion_mnist,
    load_multi_mnist,
)
from polytask.data.datasets import DATASETS, download_dataset, list_datasets, load_dataset

_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
COMPOSITES = {"multi_mnist": ("mnist",), "multi_fashion": ("fashion_mnist",),
              "multi_fashion_mnist": ("mnist", "fashion_mnist")}


def _idx(ndim: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, 8, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload


def _write_set(folder: Path, prefix: str, labels: list[int], seed: int) -> np.ndarray:
    """IDX files of random 28 × 28 images with the given labels; returns the images."""
    folder.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(seed).integers(0, 256, (len(labels), 28, 28), np.uint8)
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        _idx(3, (len(labels), 28, 28), images.tobytes()))
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        _idx(1, (len(labels),), bytes(labels)))
    return images


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    """A data home with MNIST (test: digits 0-9) and Fashion-MNIST (train and test)."""
    _write_set(tmp_path / "mnist", "t10k", list(range(10)), 0)
    _write_set(tmp_path / "fashion_mnist", "t10k", [9, 8, 7, 6, 5, 4], 1)
    _write_set(tmp_path / "fashion_mnist", "train", [3] * 8, 2)
    return tmp_path


def _check_images(data: MultiTaskData, n: int) -> None:
    X = data.feature_matrix()
    assert data.task_names == ("left", "right") and X.shape == (n, 784)
    assert data.kinds == {"left": "multiclass", "right": "multiclass"}
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert images_from_features(X).shape == (n, 1, 28, 28)


def test_multi_mnist_one_composite_per_digit(home: Path) -> None:
    data = load_multi_mnist(data_home=home, download=False)
    assert isinstance(data, MultiTaskData)
    _check_images(data, 10)
    left, right = data.label_matrix().T
    assert left.tolist() == list(range(10))  # composite i holds digit i at the top left
    assert np.all(left != right)  # its partner is another image (labels are distinct)


def test_composition_is_fixed_by_random_state(home: Path) -> None:
    a, b = (load_multi_mnist(data_home=home, random_state=0) for _ in range(2))
    c = load_multi_mnist(data_home=home, random_state=1)
    assert isinstance(a, MultiTaskData) and isinstance(b, MultiTaskData)
    assert isinstance(c, MultiTaskData)
    assert np.array_equal(a.feature_matrix(), b.feature_matrix())
    assert not np.array_equal(a.feature_matrix(), c.feature_matrix())


@pytest.mark.parametrize("n_images", [2, 5, 9])
def test_n_images_draws_a_subset_in_order(home: Path, n_images: int) -> None:
    data = load_multi_mnist(data_home=home, n_images=n_images, random_state=3)
    assert isinstance(data, MultiTaskData)
    left = data.label_matrix()[:, 0]
    assert left.size == n_images and np.all(np.diff(left) > 0)  # distinct digits, in order
    big = load_multi_mnist(data_home=home, n_images=50)
    assert isinstance(big, MultiTaskData) and big.n_samples == 10  # at most every image


def test_multi_fashion_parts(home: Path) -> None:
    test = load_multi_fashion(data_home=home)
    assert isinstance(test, MultiTaskData)
    _check_images(test, 6)
    assert test.label_matrix()[:, 0].tolist() == [9, 8, 7, 6, 5, 4]
    pair = load_multi_fashion(data_home=home, split="both", n_images=4)
    assert isinstance(pair, tuple)
    train, test4 = pair
    assert (train.n_samples, test4.n_samples) == (4, 4)
    assert set(train.label_matrix().ravel()) == {3.0}


def test_multi_fashion_mnist_pairs_a_digit_with_an_item(home: Path) -> None:
    data = load_multi_fashion_mnist(data_home=home)
    assert isinstance(data, MultiTaskData)
    _check_images(data, 10)
    left, right = data.label_matrix().T
    assert left.tolist() == list(range(10))
    assert set(right) <= {9, 8, 7, 6, 5, 4}
    folders = load_multi_fashion_mnist(home / "mnist", home / "fashion_mnist", n_images=3)
    assert isinstance(folders, MultiTaskData) and folders.n_samples == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"split": "val"}, r"split must be 'train', 'test' or 'both', got 'val'"),
        ({"n_images": 1}, r"n_images must be None or an integer >= 2, got 1"),
        ({"n_images": True}, r"n_images must be None or an integer >= 2, got True"),
        ({"n_images": 2.5}, r"n_images must be None or an integer >= 2, got 2.5"),
        ({"max_shift": 9}, r"max_shift must be an integer in \[0, 8\]"),
    ],
)
@pytest.mark.parametrize("loader", [load_multi_mnist, load_multi_fashion,
                                    load_multi_fashion_mnist])
def test_errors_name_the_argument(home: Path, loader, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        loader(data_home=home, download=False, **kwargs)


def test_mnist_training_files_are_needed_for_its_train_split(home: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_multi_mnist(data_home=home, split="train", download=False)


# ------------------------------------------------------------------------------ registry


@pytest.mark.parametrize(("name", "sources"), COMPOSITES.items())
def test_registry_entries_list_their_sources(name: str, sources: tuple[str, ...]) -> None:
    info = DATASETS[name]
    assert info.sources == sources and (info.n_tasks, info.kind) == (2, "multiclass")
    assert info.files == tuple(f for s in sources for f in DATASETS[s].files)
    assert all(s in info.source for s in sources)


@pytest.mark.parametrize("name", COMPOSITES)
def test_load_dataset_returns_runner_data(home: Path, name: str) -> None:
    data = load_dataset(name, data_home=home, download=False, n_images=4)
    assert isinstance(data, MultiTaskData)
    _check_images(data, 4)


def test_list_datasets_looks_in_the_source_folders(tmp_path: Path) -> None:
    _write_set(tmp_path / "mnist", "t10k", [1, 2], 0)
    rows = {r["name"]: r for r in list_datasets(tmp_path)}
    assert rows["multi_mnist"]["found"] and rows["mnist"]["found"]
    assert not rows["multi_fashion_mnist"]["found"]  # Fashion-MNIST is absent
    assert rows["multi_mnist"]["path"] == rows["multi_fashion_mnist"]["path"] == tmp_path / "mnist"
    assert rows["multi_fashion"]["path"] == tmp_path / "fashion_mnist"


def test_download_dataset_fetches_every_source(home: Path) -> None:
    _write_set(home / "fashion_mnist", "train", [0, 1], 3)  # all files present: no network
    paths = download_dataset("multi_fashion_mnist", data_home=home)
    assert [p.parent.name for p in paths] == ["mnist"] * 2 + ["fashion_mnist"] * 4
    assert all(p.is_file() for p in paths)


@pytest.mark.skipif(not (_SHARED / "fashion_mnist").is_dir() or not (_SHARED / "mnist").is_dir(),
                    reason="shared MNIST / Fashion-MNIST copies not available")
def test_real_multi_fashion_mnist() -> None:
    data = load_dataset("multi_fashion_mnist", data_home=_SHARED, download=False)
    _check_images(data, 10000)
    counts = np.bincount(data.label_matrix().astype(int).ravel(), minlength=10)
    assert counts.sum() == 20000 and counts.min() > 1500  # both sets hold all ten classes
