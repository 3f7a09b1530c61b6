"""Tests of molecule featurisation and splits, and of the SIDER/ClinTox/ToxCast loaders.

RDKit is an optional dependency: the tests that need it skip without it (CI installs
the ``chem`` extra). Loaders are tested on tiny CSV files written here; the published
files are checked when ``../shared/data`` is present. No test reaches the network.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polytask.data import _catalog
from polytask.data._catalog import PUBLISHED, Published, dataset_folder
from polytask.data._chem import morgan_fingerprints, random_split, scaffold_split
from polytask.data._download import content_sha256, local_copy
from polytask.data.datasets import (
    CLINTOX_TASKS,
    DatasetDownloadError,
    RemoteFile,
    load_clintox,
    load_dataset,
    load_sider,
    load_toxcast,
)

_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
_MOLS = ["CCO", "OCC", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "C1CCCCC1N", "N#Cc1ccncc1"]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real = urllib.request.urlopen

    def guarded(url: Any, *args: Any, **kwargs: Any) -> Any:
        target = url if isinstance(url, str) else url.full_url
        if not target.startswith("file:"):
            raise AssertionError(f"a test tried to reach the network: {target}")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


def _shared(folder: str) -> Path:
    if not (_SHARED / folder).is_dir():
        pytest.skip(f"shared dataset folder {folder!r} not present beside the repository")
    return _SHARED


# ----------------------------------------------------------------------- fingerprints


@pytest.mark.parametrize(("radius", "n_bits"), [(0, 64), (1, 512), (2, 1024), (3, 2048)])
def test_morgan_matches_rdkit_legacy_bitvect(radius: int, n_bits: int) -> None:
    pytest.importorskip("rdkit")
    from rdkit import Chem, rdBase
    from rdkit.Chem import AllChem

    X, ok = morgan_fingerprints(_MOLS, radius=radius, n_bits=n_bits)
    assert X.shape == (len(_MOLS), n_bits) and X.dtype == np.uint8 and ok.all()
    for row, smi in zip(X, _MOLS, strict=True):
        with rdBase.BlockLogs():  # the legacy API is deprecated but independent code
            mol = Chem.MolFromSmiles(smi)
            ref = AllChem.GetMorganFingerprintAsBitVect(mol, radius, n_bits)  # type: ignore[attr-defined]
        assert set(np.flatnonzero(row)) == set(ref.GetOnBits())


def test_morgan_properties() -> None:
    pytest.importorskip("rdkit")
    X, _ = morgan_fingerprints(_MOLS)
    np.testing.assert_array_equal(X[0], X[1])  # same molecule written two ways
    assert set(np.unique(X)) <= {0, 1}
    # radius 0 hashes atom environments only: ethanol has 3 distinct heavy atoms
    X0, _ = morgan_fingerprints(["CCO"], radius=0, n_bits=4096)
    assert X0.sum() == 3
    small, big = morgan_fingerprints(_MOLS, radius=1)[0], morgan_fingerprints(_MOLS, radius=2)[0]
    assert np.all(big >= small)  # larger radius only adds environments


def test_morgan_reports_failures_without_crashing() -> None:
    pytest.importorskip("rdkit")
    smiles = ["CCO", "not-a-smiles", "C1CC", "", "c1ccccc1"]
    with pytest.warns(UserWarning, match=r"could not parse 3 of 5 SMILES"):
        X, ok = morgan_fingerprints(smiles)
    assert ok.tolist() == [True, False, False, False, True]
    assert not X[~ok].any() and X[ok].sum(axis=1).min() > 0


def test_morgan_no_warning_when_all_parse() -> None:
    pytest.importorskip("rdkit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X, ok = morgan_fingerprints(["CCO"])
    assert X.shape == (1, 1024) and bool(ok.all()) and X.sum() > 0


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (("CCO",), TypeError, "smiles must be a sequence of str"),
        (([1, 2],), TypeError, r"smiles\[0\] must be a str"),
        ((["CCO"], -1), ValueError, "radius must be an integer >= 0"),
        ((["CCO"], 2, 0), ValueError, "n_bits must be an integer >= 1"),
    ],
)
def test_morgan_bad_arguments(args: tuple, error: type, match: str) -> None:
    pytest.importorskip("rdkit")
    with pytest.raises(error, match=match):
        morgan_fingerprints(*args)


def test_missing_rdkit_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rdkit", None)  # makes `import rdkit` fail
    with pytest.raises(ImportError, match=r"pip install polytask\[chem\]"):
        morgan_fingerprints(["CCO"])
    with pytest.raises(ImportError, match=r"pip install polytask\[chem\]"):
        scaffold_split(["CCO"])


# ------------------------------------------------------------------------------ splits


@pytest.mark.parametrize(
    ("n", "fractions"), [(10, (0.8, 0.1, 0.1)), (7, (0.5, 0.5)), (3, (0.8, 0.1, 0.1))]
)
def test_random_split_is_a_seeded_partition(n: int, fractions: tuple) -> None:
    parts = random_split(n, fractions, random_state=3)
    assert len(parts) == len(fractions) and all(len(p) >= 1 for p in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    assert all(np.all(np.diff(p) > 0) for p in parts)
    again = random_split(n, fractions, random_state=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    sizes = [len(p) for p in parts]
    assert (
        sum(sizes) == n and max(abs(s - f * n) for s, f in zip(sizes, fractions, strict=True)) < 2
    )


def test_random_split_seeds_differ() -> None:
    assert not np.array_equal(
        random_split(100, random_state=0)[0], random_split(100, random_state=1)[0]
    )


@pytest.mark.parametrize(
    ("n", "fractions", "match"),
    [
        (10, (0.8, 0.3), "sum to 1"),
        (10, (1.0,), "at least two"),
        (10, (0.9, 0.0, 0.1), "positive"),
        (2, (0.8, 0.1, 0.1), r"n must be an integer >= 3"),
    ],
)
def test_random_split_errors(n: int, fractions: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        random_split(n, fractions)


def _reference_scaffold_split(smiles: list[str]) -> list[set[int]]:
    """DeepChem's three-way rule written out directly, for comparison."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    groups: dict[str, list[int]] = {}
    for i, smi in enumerate(smiles):
        key = MurckoScaffold.MurckoScaffoldSmiles(mol=Chem.MolFromSmiles(smi))
        groups.setdefault(key, []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (-len(g), g[0]))
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    n = len(smiles)
    for group in ordered:
        if len(train) + len(group) > 0.8 * n:
            if len(train) + len(valid) + len(group) > 0.9 * n:
                test += group
            else:
                valid += group
        else:
            train += group
    return [set(train), set(valid), set(test)]


_SCAFFOLD_MOLS = [
    "c1ccccc1C", "c1ccccc1O", "c1ccccc1N", "c1ccccc1CC", "c1ccccc1Cl", "c1ccccc1F",
    "C1CCCCC1O", "C1CCCCC1N", "C1CC1C", "c1ccncc1C", "CCO", "CCN", "c1ccc2ccccc2c1",
    "O=C1CCCN1", "c1ccoc1", "c1ccsc1C", "C1CCNCC1C", "c1ccccc1-c1ccccc1",
]  # fmt: skip


def test_scaffold_split_matches_reference_rule() -> None:
    pytest.importorskip("rdkit")
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    parts = scaffold_split(_SCAFFOLD_MOLS)
    assert [set(p.tolist()) for p in parts] == _reference_scaffold_split(_SCAFFOLD_MOLS)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(len(_SCAFFOLD_MOLS)))
    scaffolds = [
        MurckoScaffold.MurckoScaffoldSmiles(mol=Chem.MolFromSmiles(s)) for s in _SCAFFOLD_MOLS
    ]
    seen = [{scaffolds[i] for i in p} for p in parts]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert "c1ccccc1" in seen[0]  # the largest scaffold group trains


def test_scaffold_split_general_fractions_and_failures() -> None:
    pytest.importorskip("rdkit")
    two = scaffold_split(_SCAFFOLD_MOLS, (0.5, 0.5))
    assert len(two) == 2 and sum(len(p) for p in two) == len(_SCAFFOLD_MOLS)
    assert len(scaffold_split(_SCAFFOLD_MOLS, (1.0, 0.0))[1]) == 0  # zero share allowed
    with pytest.warns(UserWarning, match="could not parse 2 of"):
        parts = scaffold_split([*_SCAFFOLD_MOLS, "bad(", "bad("])
    placed = np.concatenate(parts)
    assert sorted(placed.tolist()) == list(range(len(_SCAFFOLD_MOLS) + 2))
    with pytest.raises(ValueError, match="sum to 1"):
        scaffold_split(_SCAFFOLD_MOLS, (0.5, 0.4))
    with pytest.raises(TypeError, match="fractions must be a sequence"):
        scaffold_split(_SCAFFOLD_MOLS, 0.8)  # type: ignore[arg-type]


# --------------------------------------------------------------- SIDER/ClinTox/ToxCast


def _write(path: Path, text: str, gz: bool) -> Path:
    data = text.encode()
    if gz:
        path, data = path.with_name(path.name + ".gz"), gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_moleculenet_loaders_tiny(tmp_path: Path, gz: bool) -> None:
    sider = _write(
        tmp_path / "sider.csv", 'smiles,Eye disorders,"Injury, x"\nCCO,1,0\nCC,0,1\n', gz
    )
    mols = load_sider(sider)
    assert mols.task_names == ("Eye disorders", "Injury, x")
    np.testing.assert_array_equal(mols.Y, [[1, 0], [0, 1]])
    clintox = _write(tmp_path / "clintox.csv", "smiles,CT_TOX,FDA_APPROVED\nCCO,1,0\n", gz)
    assert load_clintox(clintox).task_names == CLINTOX_TASKS  # registry order, not file order
    np.testing.assert_array_equal(load_clintox(tmp_path).Y, [[0, 1]])
    toxcast = _write(tmp_path / "toxcast_data.csv", "smiles,a,b,c\nCCO,1.0,,0.0\nCN,,0,1\n", gz)
    np.testing.assert_array_equal(load_toxcast(toxcast).Y, [[1, np.nan, 0], [np.nan, 0, 1]])
    data = load_toxcast(toxcast, featurize=lambda s: [[len(x)] for x in s])
    np.testing.assert_array_equal(data.feature_matrix(), [[3.0], [2.0]])
    assert set(data.kinds.values()) == {"binary"}


def test_moleculenet_loader_errors(tmp_path: Path) -> None:
    bad = _write(tmp_path / "clintox.csv", "smiles,FDA_APPROVED\nCCO,1\n", False)
    with pytest.raises(ValueError, match=r"\['CT_TOX'\] not in the CSV header"):
        load_clintox(bad)
    with pytest.raises(FileNotFoundError, match=r"sider[/\\]sider\.csv.*deepchem"):
        load_dataset("sider", data_home=tmp_path, download=False)
    with pytest.raises(FileNotFoundError, match=r"does not exist.*toxcast"):
        load_toxcast(tmp_path / "nowhere.csv")


def _served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: bytes, sha: str) -> None:
    """Publish ``text`` gzip-compressed at a file:// URL as the 'sider' set."""
    remote = tmp_path / "remote" / "sider.csv.gz"
    remote.parent.mkdir()
    remote.write_bytes(gzip.compress(text))
    fake = dict(PUBLISHED)
    fake["sider"] = Published((RemoteFile("sider.csv", remote.as_uri(), sha),), "the fake home")
    monkeypatch.setattr(_catalog, "PUBLISHED", fake)


def test_gzip_served_download_checks_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b"smiles,a\nCCO,1\n"
    _served(tmp_path, monkeypatch, payload, hashlib.sha256(payload).hexdigest())
    home = tmp_path / "home"
    (home / "sider").mkdir(parents=True)
    (home / "sider" / "sider.csv").write_text("smiles,a\nCC,0\n")  # stale plain copy
    assert load_sider(data_home=home).smiles == ("CC",)  # found locally: no download
    mols = load_sider(data_home=home, download=True)  # fresh copy replaces the stale one
    assert mols.smiles == ("CCO",)
    assert sorted(p.name for p in (home / "sider").iterdir()) == ["sider.csv.gz"]


def test_gzip_served_download_bad_checksum_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _served(tmp_path, monkeypatch, b"smiles,a\nCCO,1\n", "0" * 64)
    home = tmp_path / "home"
    with pytest.raises(DatasetDownloadError, match=r"checksum mismatch for sider\.csv.*by hand"):
        load_sider(data_home=home)
    assert list((home / "sider").iterdir()) == []
    (tmp_path / "remote" / "sider.csv.gz").write_bytes(b"smiles,a\nCCO,1\n")  # not gzip
    with pytest.raises(DatasetDownloadError, match="did not send gzip-compressed bytes"):
        load_sider(data_home=home)
    assert list((home / "sider").iterdir()) == []


@pytest.mark.parametrize("name", ["sider", "clintox", "toxcast"])
def test_recorded_checksums_match_shared_copies(name: str) -> None:
    root = _shared(name)
    for remote in PUBLISHED[name].files:
        local = local_copy(dataset_folder(name, root), remote.filename)
        assert local is not None and content_sha256(local) == remote.sha256


@pytest.mark.parametrize(
    ("name", "shape", "labelled", "positive"),
    [
        ("sider", (1427, 27), 1.0, 0.568),
        ("clintox", (1478, 2), 1.0, None),
        ("toxcast", (8615, 617), 0.289, 0.083),
    ],
)
def test_real_moleculenet(name: str, shape: tuple, labelled: float, positive: float | None) -> None:
    mols = load_dataset(name, data_home=_shared(name), download=False)
    assert mols.Y.shape == shape and len(mols.smiles) == shape[0]
    assert abs((1 - mols.missing_fraction) - labelled) < 0.001
    observed = mols.Y[~np.isnan(mols.Y)]
    assert set(np.unique(observed)) == {0.0, 1.0}
    if positive is not None:
        assert abs(observed.mean() - positive) < 0.001


def test_real_sider_fingerprints_and_scaffold_split() -> None:
    pytest.importorskip("rdkit")
    mols = load_sider(data_home=_shared("sider"), download=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # RDKit parses all 1,427 (PROVENANCE.md)
        data = load_sider(
            data_home=_SHARED, download=False, featurize=lambda s: morgan_fingerprints(s)[0]
        )
    assert (data.n_samples, data.n_features, data.n_tasks) == (1427, 1024, 27)
    train, valid, test = scaffold_split(mols.smiles)
    assert len(train) + len(valid) + len(test) == 1427
    assert len(train) <= 0.8 * 1427 and len(train) + len(valid) <= 0.9 * 1427
    assert len(train) > 0.75 * 1427 and len(test) > 0
