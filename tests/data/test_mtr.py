"""Tests of the Mulan multi-target regression loader on tiny ARFF files written here.

Targets are the last attributes; missing features are imputed, dropped or refused as
asked, missing targets become missing labels; text-valued nominal features are one-hot
encoded. The 14 published sets are checked when ``../shared/data`` is present.
"""

from __future__ import annotations

import gzip
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polytask.data._catalog import PUBLISHED, dataset_folder
from polytask.data._download import content_sha256, local_copy
from polytask.data.datasets import DATASETS, MTR_N_TARGETS, load_dataset, load_mtr

_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

_ARFF = """% multi-target toy
@relation 'toy-mtr'
@attribute x1 numeric
@attribute 'x two' real
@attribute colour {red,'dark green',blue}
@attribute level {1,2,3}
@attribute T1 numeric
@attribute T2 numeric
@data
1.0,?,red,1,10,100
3.0,4.0,blue,3,?,101
?,8.0,'dark green',2,12,?
5.0,6.0,red,2,13,103
"""
_X_RAW = np.array(
    [[1, np.nan, 0, 1], [3, 4, 2, 3], [np.nan, 8, 1, 2], [5, 6, 0, 2]], dtype=float
)  # colour as declaration index
_Y = np.array([[10, 100], [np.nan, 101], [12, np.nan], [13, 103]], dtype=float)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real = urllib.request.urlopen

    def guarded(url: Any, *args: Any, **kwargs: Any) -> Any:
        target = url if isinstance(url, str) else url.full_url
        if not target.startswith("file:"):
            raise AssertionError(f"a test tried to reach the network: {target}")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


def _write(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode()
    if gz:
        path, data = path.with_name(path.name + ".gz"), gzip.compress(data)
    path.write_bytes(data)
    return path


def _one_hot(X: np.ndarray) -> np.ndarray:
    colour = X[:, 2]
    block = np.where(np.isnan(colour)[:, None], np.nan, colour[:, None] == np.arange(3))
    return np.column_stack([X[:, :2], block, X[:, 3]])


@pytest.mark.parametrize("gz", [False, True])
def test_mean_imputation_onehot(tmp_path: Path, gz: bool) -> None:
    file = _write(tmp_path / "toy.arff", _ARFF, gz)
    data = load_mtr("toy", file, n_targets=2)
    assert data.form == "shared" and data.task_names == ("T1", "T2")
    assert set(data.kinds.values()) == {"regression"}
    assert data.feature_names == (
        "x1",
        "x two",
        "colour=red",
        "colour=dark green",
        "colour=blue",
        "level",
    )
    expected = _one_hot(_X_RAW)
    means = np.nanmean(expected, axis=0)
    expected = np.where(np.isnan(expected), means, expected)
    np.testing.assert_allclose(data.feature_matrix(), expected)
    assert data.feature_matrix()[2, 0] == pytest.approx(3.0)  # mean of 1, 3, 5
    np.testing.assert_array_equal(data.label_matrix(), _Y)  # missing targets stay NaN
    assert data.task_sizes == {"T1": 3, "T2": 3}


def test_codes_and_drop(tmp_path: Path) -> None:
    file = _write(tmp_path / "toy.arff", _ARFF)
    data = load_mtr("toy", tmp_path, n_targets=2, nominal="codes", impute="drop")
    keep = ~np.isnan(_X_RAW).any(axis=1)
    np.testing.assert_array_equal(data.feature_matrix(), _X_RAW[keep])
    np.testing.assert_array_equal(data.label_matrix(), _Y[keep])
    assert data.feature_names == ("x1", "x two", "colour", "level")
    clean = _write(tmp_path / "clean.arff", _ARFF.replace("?", "0"))
    for impute in ("mean", "drop", None):  # nothing missing: every choice agrees
        got = load_mtr("clean", clean, n_targets=2, impute=impute)  # type: ignore[arg-type]
        assert got.n_samples == 4 and not np.isnan(got.feature_matrix()).any()
    assert file.exists()


def test_impute_none_names_file_and_count(tmp_path: Path) -> None:
    file = _write(tmp_path / "toy.arff", _ARFF)
    with pytest.raises(
        ValueError, match=r"toy\.arff has 2 missing feature values \('\?'\) in 2 rows"
    ):
        load_mtr("toy", file, n_targets=2, impute=None)


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        (_ARFF, {"n_targets": 0}, r"n_targets must be an integer in \[1, 5\]"),
        (_ARFF, {"n_targets": 6}, r"n_targets must be an integer in \[1, 5\]"),
        (_ARFF, {}, "n_targets is required for the unregistered"),
        (_ARFF, {"n_targets": 4}, r"targets \['colour'\] are nominal with text values"),
        (_ARFF, {"n_targets": 2, "impute": "median"}, "impute must be 'mean', 'drop' or None"),
        (_ARFF, {"n_targets": 2, "nominal": "x"}, "nominal must be 'onehot' or 'codes'"),
        (_ARFF, {"n_targets": 2, "download": True}, "not registered, so it cannot be downloaded"),
        (
            _ARFF.replace("5.0,6.0,red", "5.0,?,red").replace("3.0,4.0", "3.0,?"),
            {"n_targets": 2, "impute": "drop"},
            r"every row has a missing feature value \(4 in all\)",
        ),
        (
            _ARFF.replace("3.0,4.0", "3.0,?").replace("?,8.0", "?,?").replace("5.0,6.0", "5.0,?"),
            {"n_targets": 2},
            "feature 'x two' has no observed value",
        ),
        ("x,y\n1,2\n", {"n_targets": 1}, "is this an ARFF file"),
        (_ARFF.replace("3.0,4.0,blue", "3.0,4.0,purple"), {"n_targets": 2}, "malformed ARFF"),
    ],
)
def test_errors(tmp_path: Path, text: str, kwargs: dict, match: str) -> None:
    file = _write(tmp_path / "toy.arff", text)
    with pytest.raises(ValueError, match=match):
        load_mtr("toy", file, **kwargs)


def test_missing_registered_file_names_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"mtr_mulan[/\\]enb\.arff.*tsoumakas/mulan"):
        load_dataset("enb", data_home=tmp_path, download=False)
    with pytest.raises(FileNotFoundError, match=r"toy\.arff .*not a registered dataset"):
        load_mtr("toy", tmp_path, n_targets=1)


def test_registry_has_the_14_sets() -> None:
    assert len(MTR_N_TARGETS) == 14
    for name, k in MTR_N_TARGETS.items():
        info = DATASETS[name]
        assert info.n_tasks == k and info.kind == "regression"
        assert dataset_folder(name, "/home").name == "mtr_mulan"


# --------------------------------------------------------------------- published files

_SHAPES = {  # rows x features, from PROVENANCE.md (osales: 413 attributes less 12 targets)
    "atp1d": (337, 411),
    "atp7d": (296, 411),
    "oes97": (334, 263),
    "oes10": (403, 298),
    "edm": (154, 16),
    "sf1": (323, 10),
    "sf2": (1066, 10),
    "jura": (359, 15),
    "wq": (1060, 16),
    "enb": (768, 8),
    "slump": (103, 7),
    "andro": (49, 30),
    "osales": (639, 401),
    "scpf": (1137, 23),
}


def _shared() -> Path:
    if not (_SHARED / "mtr_mulan").is_dir():
        pytest.skip("shared dataset folder 'mtr_mulan' not present beside the repository")
    return _SHARED


@pytest.mark.parametrize("name", sorted(_SHAPES))
def test_real_mtr(name: str) -> None:
    root = _shared()
    (remote,) = PUBLISHED[name].files
    local = local_copy(dataset_folder(name, root), remote.filename)
    assert local is not None and content_sha256(local) == remote.sha256
    data = load_mtr(name, data_home=root, download=False, nominal="codes")
    assert (data.n_samples, data.n_features) == _SHAPES[name]
    assert data.n_tasks == MTR_N_TARGETS[name] == DATASETS[name].n_tasks
    assert not np.isnan(data.label_matrix()).any()  # no target is missing in these files
    if name in ("osales", "scpf"):
        with pytest.raises(ValueError, match=r"\d+ missing feature values"):
            load_mtr(name, data_home=root, download=False, impute=None)


def test_real_missing_counts_and_onehot() -> None:
    root = _shared()
    assert load_mtr("scpf", data_home=root, download=False, impute="drop").n_samples == 143
    with pytest.raises(ValueError, match="every row has a missing feature value"):
        load_mtr("osales", data_home=root, download=False, impute="drop")
    with pytest.raises(ValueError, match="has 10012 missing feature values"):
        load_mtr("osales", data_home=root, download=False, impute=None)
    with pytest.raises(ValueError, match="has 9255 missing feature values"):
        load_mtr("scpf", data_home=root, download=False, impute=None)
    sf1 = load_mtr("sf1", data_home=root, download=False)
    assert sf1.n_features == 7 + 6 + 4 + 7  # three text nominals one-hot, 7 others
    assert sf1.task_names == ("c-class", "m-class", "x-class")
    enb = load_mtr("enb", data_home=root, download=False)
    assert enb.task_names == ("Y1", "Y2")
