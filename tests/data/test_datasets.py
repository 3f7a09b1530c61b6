"""Tests of the dataset registry, the checksummed download and the real published sets.

Formats are tested on tiny files in ``test_dataset_formats.py``. The real sets are checked
against their published shapes when ``../shared/data`` is present (skipped otherwise).
No test reaches the network: ``urllib.request.urlopen`` is guarded to ``file://`` URLs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import scipy.io.arff

from polytask.data import _catalog, _download
from polytask.data._catalog import MTR_N_TARGETS, MULAN_N_LABELS, PUBLISHED, Published
from polytask.data._download import content_sha256, ensure_file, fetch_file
from polytask.data._formats import read_arff
from polytask.data.datasets import (
    DATASETS,
    TOX21_TASKS,
    DatasetDownloadError,
    RemoteFile,
    download_dataset,
    get_data_home,
    list_datasets,
    load_dataset,
    load_mulan,
    load_tox21,
)

_REPO = Path(__file__).resolve().parents[2]


def _shared_data() -> Path | None:
    for candidate in (_REPO.parent / "shared" / "data", _REPO / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None


def _shared(name: str) -> Path:
    root = _shared_data()
    if root is None or not (root / name).is_dir():
        pytest.skip(f"shared dataset folder {name!r} not present beside the repository")
    return root


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real = urllib.request.urlopen

    def guarded(url: Any, *args: Any, **kwargs: Any) -> Any:
        target = url if isinstance(url, str) else url.full_url
        if not target.startswith("file:"):
            raise AssertionError(f"a test tried to reach the network: {target}")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes, gz: bool) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ data home, download


def test_data_home_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POLYTASK_DATA", str(tmp_path / "env"))
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert get_data_home() == tmp_path / "env"
    monkeypatch.delenv("POLYTASK_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_data_home() == tmp_path / "home" / ".polytask" / "data"


def test_fetch_good_checksum_places_file(tmp_path: Path) -> None:
    payload = b"smiles,a\nC,1\n" * 1000
    src = tmp_path / "remote.csv"
    src.write_bytes(payload)
    folder = tmp_path / "home" / "set"
    got = fetch_file(RemoteFile("set.csv", src.as_uri(), _sha(payload)), folder, source="here")
    assert got == folder / "set.csv"
    assert got.read_bytes() == payload
    assert sorted(p.name for p in folder.iterdir()) == ["set.csv"]


@pytest.mark.parametrize("scenario", ["bad_checksum", "unreachable", "interrupted"])
def test_fetch_failure_leaves_no_file(
    scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b"x" * 200_000
    src = tmp_path / "remote.bin"
    src.write_bytes(payload)
    expected = _sha(payload)
    url = src.as_uri()
    if scenario == "bad_checksum":
        expected = "0" * 64
    elif scenario == "unreachable":
        url = (tmp_path / "missing.bin").as_uri()
    else:

        class Broken(io.BytesIO):
            def read(self, size: int | None = -1) -> bytes:
                if self.tell() > 0:
                    raise ConnectionResetError("peer reset")
                return super().read(size)

            def __enter__(self) -> Broken:
                return self

        monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Broken(payload))
    folder = tmp_path / "home"
    remote = RemoteFile("set.bin", url, expected)
    with pytest.raises(DatasetDownloadError, match=r"set\.bin") as info:
        fetch_file(remote, folder, source="the test server")
    message = str(info.value)
    assert expected in message and "the test server" in message and "by hand" in message
    assert list(folder.iterdir()) == []


def test_ensure_file_modes(tmp_path: Path) -> None:
    payload = b"fresh"
    src = tmp_path / "remote.txt"
    src.write_bytes(payload)
    remote = RemoteFile("f.txt", src.as_uri(), _sha(payload))
    folder = tmp_path / "set"
    with pytest.raises(FileNotFoundError, match=r"f\.txt.*somewhere public"):
        ensure_file(remote, folder, source="somewhere public", download=False)
    assert not folder.exists()
    folder.mkdir()
    _write(folder / "f.txt", b"stale", gz=True)
    assert ensure_file(remote, folder, source="s", download=None) == folder / "f.txt.gz"
    assert ensure_file(remote, folder, source="s", download=True).read_bytes() == payload


def test_content_sha256_hashes_decompressed_bytes(tmp_path: Path) -> None:
    payload = b"0123456789" * 5000
    plain, packed = _write(tmp_path / "a", payload, False), _write(tmp_path / "b", payload, True)
    assert content_sha256(plain) == content_sha256(packed) == _sha(payload)
    packed.write_bytes(packed.read_bytes()[:-30])
    with pytest.raises(ValueError, match="not a valid gzip"):
        content_sha256(packed)


def _fake_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, files: dict) -> None:
    """Register ``name`` with ``file://`` copies of ``files`` (filename -> bytes)."""
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir(exist_ok=True)
    remotes = []
    for filename, data in files.items():
        (remote_dir / filename).write_bytes(data)
        remotes.append(RemoteFile(filename, (remote_dir / filename).as_uri(), _sha(data)))
    fake = dict(PUBLISHED)
    fake[name] = Published(tuple(remotes), "the fake home")
    monkeypatch.setattr(_catalog, "PUBLISHED", fake)


def test_load_tox21_downloads_from_public_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = ("smiles," + ",".join(TOX21_TASKS) + "\nCCO" + ",1" * 12 + "\n").encode()
    _fake_home(monkeypatch, tmp_path, "tox21", {"tox21.csv": payload})
    home = tmp_path / "home"
    mols = load_dataset("tox21", data_home=home)
    assert (home / "tox21" / "tox21.csv").read_bytes() == payload
    np.testing.assert_array_equal(mols.Y, np.ones((1, 12)))
    assert [r["found"] for r in list_datasets(home) if r["name"] == "tox21"] == [True]


def test_download_dataset_mulan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arff = b"@relation r\n@attribute f numeric\n@attribute Class1 {0,1}\n@data\n0.5,1\n1,0\n"
    files = {
        "yeast-train.arff": arff,
        "yeast-test.arff": arff,
        "yeast.xml": b'<labels><label name="Class1"></label></labels>',
    }
    _fake_home(monkeypatch, tmp_path, "yeast", files)
    paths = download_dataset("yeast", data_home=tmp_path / "home")
    assert [p.read_bytes() for p in paths] == list(files.values())
    assert load_dataset("yeast", data_home=tmp_path / "home", split="test").task_names == (
        "Class1",
    )


# ------------------------------------------------------------------------------ registry


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist2'.*'school'.*'yeast'"):
        load_dataset("mnist2")


def test_registry_entries_are_consistent() -> None:
    expected = {"school", "tox21", "yeast", "scene", "emotions", "sider", "clintox",
                "toxcast", "census_income", "mnist", "fashion_mnist", "conll2000",
                "multi_mnist", "multi_fashion", "multi_fashion_mnist"}
    assert set(DATASETS) == expected | set(MTR_N_TARGETS)
    for name, info in DATASETS.items():
        assert info.name == name and callable(info.loader) and info.source
        assert info.files and all(len(f.sha256) == 64 for f in info.files)
        assert all(f.url.startswith("https://") for f in info.files)
        if name in MULAN_N_LABELS:
            assert MULAN_N_LABELS[name] == info.n_tasks


def test_list_datasets_reports_local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYTASK_DATA", str(tmp_path))
    rows = list_datasets()
    assert [r["name"] for r in rows] == list(DATASETS)
    assert not any(r["found"] for r in rows)
    (tmp_path / "school").mkdir()
    _write(tmp_path / "school" / "school.mat", b"x", gz=True)
    row = next(r for r in list_datasets() if r["name"] == "school")
    assert row == {
        "name": "school",
        "tasks": 139,
        "samples": 15362,
        "kind": "regression",
        "found": True,
        "path": tmp_path / "school",
        "source": DATASETS["school"].source,
    }


# ------------------------------------------------------------------ real, published sets


@pytest.mark.parametrize(
    "remote", [f for info in DATASETS.values() for f in info.files], ids=lambda f: f.filename
)
def test_recorded_checksums_match_shared_copies(remote: RemoteFile) -> None:
    name = next(n for n, info in DATASETS.items() if remote in info.files)
    root = _shared_data()
    folder = _catalog.dataset_folder(name, root) if root is not None else None
    if folder is None or not folder.is_dir():
        pytest.skip(f"shared dataset folder of {name!r} not present beside the repository")
    local = _download.local_copy(folder, remote.filename)
    assert local is not None, f"{remote.filename} missing from {folder}"
    assert content_sha256(local) == remote.sha256


def test_real_school() -> None:
    data = load_dataset("school", data_home=_shared("school"), download=False)
    sizes = list(data.task_sizes.values())
    assert (data.n_tasks, data.n_samples, data.n_features) == (139, 15362, 28)
    assert (min(sizes), max(sizes)) == (22, 251)
    assert data.task_names[0] == "school_001" and data.task_names[-1] == "school_139"


def test_real_tox21() -> None:
    mols = load_tox21(data_home=_shared("tox21"), download=False)
    assert mols.Y.shape == (7831, 12) and len(set(mols.smiles)) == 7831
    assert mols.task_names == TOX21_TASKS
    assert abs(100 * mols.missing_fraction - 17.1) <= 0.1
    assert set(np.unique(mols.Y[~np.isnan(mols.Y)])) == {0.0, 1.0}


@pytest.mark.parametrize(
    ("name", "n_train", "n_test", "n_features", "n_labels"),
    [("yeast", 1500, 917, 103, 14), ("scene", 1211, 1196, 294, 6), ("emotions", 391, 202, 72, 6)],
)
def test_real_mulan(name: str, n_train: int, n_test: int, n_features: int, n_labels: int) -> None:
    train, test = load_dataset(name, data_home=_shared(name), download=False, split="both")
    assert (train.n_samples, test.n_samples) == (n_train, n_test)
    assert train.n_features == test.n_features == n_features
    assert train.n_tasks == test.n_tasks == n_labels
    if name == "yeast":
        assert train.task_names == tuple(f"Class{i}" for i in range(1, 15))


def test_real_yeast_matches_scipy_and_fallback(tmp_path: Path) -> None:
    root = _shared("yeast")
    file = root / "yeast" / "yeast-train.arff.gz"
    ref, meta = scipy.io.arff.loadarff(io.StringIO(gzip.decompress(file.read_bytes()).decode()))
    ours = read_arff(file)
    expected = np.column_stack([ref[n].astype(float) for n in meta.names()])
    np.testing.assert_allclose(ours.data, expected, rtol=0, atol=0)
    # without the .xml (and offline) the registered label count is used
    folder = tmp_path / "yeast"
    folder.mkdir()
    shutil.copy(file, folder / file.name)
    data = load_mulan("yeast", folder, download=False)
    assert data.task_names == tuple(f"Class{i}" for i in range(1, 15))
    np.testing.assert_array_equal(data.label_matrix(), expected[:, -14:])
