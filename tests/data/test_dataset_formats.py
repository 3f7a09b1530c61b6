"""Tests of the dataset loaders on tiny files written here in each published format.

MAT v5 cell arrays (School), MoleculeNet CSV with gaps (Tox21), Mulan ARFF + XML; plain
and gzip-compressed; exact values, NaN positions, shapes, and one clear ``ValueError``
per corrupt input. No test reaches the network (``urlopen`` is guarded).
"""

from __future__ import annotations

import gzip
import io
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import scipy.io.arff

from polytask.data._containers import MultiTaskData
from polytask.data._formats import read_arff
from polytask.data.datasets import (
    TOX21_TASKS,
    MoleculeTasks,
    load_dataset,
    load_molecule_csv,
    load_mulan,
    load_school,
    load_tox21,
)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real = urllib.request.urlopen

    def guarded(url: Any, *args: Any, **kwargs: Any) -> Any:
        target = url if isinstance(url, str) else url.full_url
        if not target.startswith("file:"):
            raise AssertionError(f"a test tried to reach the network: {target}")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


def _write(path: Path, data: bytes, gz: bool) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def _cells(arrays: list[np.ndarray]) -> np.ndarray:
    out = np.empty((1, len(arrays)), dtype=object)
    for i, arr in enumerate(arrays):
        out[0, i] = arr
    return out


# ------------------------------------------------------------------------- School (.mat)


def _school_arrays(seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    sizes = [3, 5, 2]
    xs = [rng.integers(0, 255, size=(n, 4)).astype(np.uint8) for n in sizes]
    ys = [rng.integers(0, 80, size=(n, 1)).astype(np.uint8) for n in sizes]
    return xs, ys


@pytest.mark.parametrize("gz", [False, True])
def test_load_school_tiny(tmp_path: Path, gz: bool) -> None:
    xs, ys = _school_arrays()
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"X": _cells(xs), "Y": _cells(ys)})
    # the round trip stores MATLAB cell arrays, as in MALSAR's file
    assert scipy.io.whosmat(io.BytesIO(buffer.getvalue())) == [
        ("X", (1, 3), "cell"),
        ("Y", (1, 3), "cell"),
    ]
    file = _write(tmp_path / "school.mat", buffer.getvalue(), gz)
    data = load_school(file)
    assert isinstance(data, MultiTaskData) and data.form == "per_task"
    assert data.task_names == ("school_001", "school_002", "school_003")
    assert set(data.kinds.values()) == {"regression"}
    for name, x, y in zip(data.task_names, xs, ys, strict=True):
        X_t, y_t = data.task(name)
        assert X_t.dtype == np.float64
        np.testing.assert_array_equal(X_t, x.astype(float))
        np.testing.assert_array_equal(y_t, y.ravel().astype(float))
    assert load_school(tmp_path).n_samples == 10  # the folder works too


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"X": "cells", "Z": "cells"}, r"'Y' is missing"),
        ({"X": "cells", "Y": np.ones((3, 1))}, "must be a cell array"),
        ({"X": "cells", "Y": "short"}, "same positive number of tasks"),
        ({"X": "cells", "Y": "wrong_rows"}, "school_002"),
    ],
)
def test_load_school_wrong_variables(tmp_path: Path, content: dict, match: str) -> None:
    xs, ys = _school_arrays()
    values = {
        "cells": _cells(xs),
        "short": _cells(ys[:2]),
        "wrong_rows": _cells([ys[0], ys[0], ys[2]]),
    }
    mat = {k: values[v] if isinstance(v, str) else v for k, v in content.items()}
    scipy.io.savemat(tmp_path / "school.mat", mat)
    with pytest.raises(ValueError, match=match):
        load_school(tmp_path / "school.mat")


@pytest.mark.parametrize("damage", ["garbage", "truncated_gz"])
def test_load_school_corrupt(tmp_path: Path, damage: str) -> None:
    xs, ys = _school_arrays()
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"X": _cells(xs), "Y": _cells(ys)})
    if damage == "garbage":
        file = _write(tmp_path / "school.mat", b"not a mat file at all" * 20, False)
        match = r"school\.mat is not a readable MATLAB"
    else:
        file = _write(tmp_path / "school.mat", buffer.getvalue(), True)
        file.write_bytes(file.read_bytes()[: len(file.read_bytes()) // 2])
        match = r"school\.mat\.gz is not a valid gzip file"
    with pytest.raises(ValueError, match=match) as info:
        load_school(file)
    assert info.value.__cause__ is not None


def test_load_school_missing_names_path_and_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"school[/\\]school\.mat.*MALSAR"):
        load_dataset("school", data_home=tmp_path, download=False)
    with pytest.raises(FileNotFoundError, match=r"does not exist.*MALSAR"):
        load_school(tmp_path / "nowhere" / "school.mat")


# --------------------------------------------------------------------- Tox21 / molecules

_CSV = 'mol_id,smiles,t1,t2,t3\nm1,CCO,1,,0\nm2,c1ccccc1,,,1\nm3,"C(=O)O",0,1,\n'
_CSV_Y = np.array([[1, np.nan, 0], [np.nan, np.nan, 1], [0, 1, np.nan]])


@pytest.mark.parametrize("gz", [False, True])
def test_load_molecule_csv_gaps(tmp_path: Path, gz: bool) -> None:
    file = _write(tmp_path / "mols.csv", _CSV.encode(), gz)
    mols = load_molecule_csv(file)
    assert mols.smiles == ("CCO", "c1ccccc1", "C(=O)O")
    assert mols.task_names == ("t1", "t2", "t3")
    np.testing.assert_array_equal(mols.Y, _CSV_Y)  # NaN positions compared too
    assert mols.missing_fraction == pytest.approx(4 / 9)
    assert not mols.Y.flags.writeable


def test_load_molecule_csv_task_columns_order(tmp_path: Path) -> None:
    file = _write(tmp_path / "mols.csv", _CSV.encode(), False)
    mols = load_molecule_csv(file, task_columns=["t3", "t1"])
    np.testing.assert_array_equal(mols.Y, _CSV_Y[:, [2, 0]])


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        ("smiles,t1\nCCO,2\n", {}, r"row 2, task 't1'.*expected 0, 1 or empty"),
        ("smiles,t1\nCCO,abc\n", {"kind": "regression"}, "expected a number or empty"),
        ("smiles,t1\n,1\n", {}, "empty SMILES"),
        ("smiles,t1\nCCO,1\nCC\n", {}, r"row 3: expected 2 comma-separated fields"),
        ("smiles,t1\nCCO,1\n", {"task_columns": ["t9"]}, r"task_columns \['t9'\]"),
        ("smi,t1\nCCO,1\n", {}, "smiles_column 'smiles' not in the CSV header"),
        ("smiles\nCCO\n", {}, "no task column"),
        ("", {}, "is empty"),
    ],
)
def test_load_molecule_csv_errors(tmp_path: Path, text: str, kwargs: dict, match: str) -> None:
    file = _write(tmp_path / "bad.csv", text.encode(), False)
    with pytest.raises(ValueError, match=match):
        load_molecule_csv(file, **kwargs)


def test_load_molecule_csv_truncated_gz(tmp_path: Path) -> None:
    file = _write(tmp_path / "mols.csv", _CSV.encode() * 50, True)
    file.write_bytes(file.read_bytes()[:-20])
    with pytest.raises(ValueError, match=r"mols\.csv\.gz is not a valid gzip file"):
        load_molecule_csv(file)


def test_molecule_tasks_to_data(tmp_path: Path) -> None:
    mols = load_molecule_csv(_write(tmp_path / "m.csv", _CSV.encode(), False))
    features = np.arange(6.0).reshape(3, 2)
    data = mols.to_data(features, feature_names=["f0", "f1"])
    assert data.form == "shared" and data.task_names == mols.task_names
    assert set(data.kinds.values()) == {"binary"}
    np.testing.assert_array_equal(data.feature_matrix(), features)
    np.testing.assert_array_equal(data.label_matrix(), _CSV_Y)
    with pytest.raises(ValueError, match=r"n_molecules=3, got shape \(2, 2\)"):
        mols.to_data(features[:2])
    with pytest.raises(ValueError, match=r"Y must have shape"):
        MoleculeTasks(("C",), np.zeros((2, 1)), ("t",))


def _tox21_csv(rows: list[tuple[str, list[str]]]) -> bytes:
    lines = ["smiles," + ",".join(TOX21_TASKS)]
    lines += [smi + "," + ",".join(labels) for smi, labels in rows]
    return ("\n".join(lines) + "\n").encode()


def test_load_tox21_tiny_and_featurize(tmp_path: Path) -> None:
    labels = [["1", ""] * 6, ["", "0"] * 6]
    file = _write(tmp_path / "tox21.csv", _tox21_csv([("CCO", labels[0]), ("CC", labels[1])]), True)
    mols = load_tox21(file)
    expected = np.array([[np.nan if v == "" else float(v) for v in row] for row in labels])
    np.testing.assert_array_equal(mols.Y, expected)
    assert mols.task_names == TOX21_TASKS
    seen: list[Any] = []

    def featurize(smiles: Any) -> np.ndarray:
        seen.append(tuple(smiles))
        return np.array([[len(s)] for s in smiles], dtype=float)

    data = load_tox21(tmp_path, featurize=featurize)
    assert seen == [("CCO", "CC")]
    np.testing.assert_array_equal(data.feature_matrix(), [[3.0], [2.0]])
    np.testing.assert_array_equal(data.label_matrix(), expected)


def test_load_tox21_missing_assay_column(tmp_path: Path) -> None:
    text = _tox21_csv([("CCO", ["0"] * 12)]).decode().replace(",SR-p53", ",other")
    file = _write(tmp_path / "tox21.csv", text.encode(), False)
    with pytest.raises(ValueError, match=r"\['SR-p53'\] not in the CSV header"):
        load_tox21(file)


# ------------------------------------------------------------------------- Mulan / ARFF

_ARFF = """% a comment
@relation 'tiny multi-label'
@attribute f1 numeric
@attribute 'feature two' real
@attribute colour {red,green}
@attribute B {0,1}
@attribute A {0,1}
@data
0.5,-1,green,1,0
% another comment
1.5,2e-1,red,0,?

-3,4,green,1,1
"""
_SPARSE = _ARFF.replace("0.5,-1,green,1,0", "{0 0.5, 1 -1, 2 green, 3 1}").replace(
    "-3,4,green,1,1", "{0 -3,1 4,2 green,3 1,4 1}"
)
_XML = (
    '<?xml version="1.0"?><labels xmlns="http://mulan.sourceforge.net/labels">'
    '<label name="A"></label><label name="B"></label></labels>'
)
_ARFF_X = np.array([[0.5, -1, 1], [1.5, 0.2, 0], [-3, 4, 1]])
_ARFF_Y = np.array([[1, 0], [0, np.nan], [1, 1]])  # columns B, A (ARFF order)


def _mulan_dir(
    tmp_path: Path,
    arff: str = _ARFF,
    xml: str | None = _XML,
    gz: bool = False,
    test_arff: str | None = None,
) -> Path:
    folder = tmp_path / "toy"
    folder.mkdir(exist_ok=True)
    _write(folder / "toy-train.arff", arff.encode(), gz)
    _write(folder / "toy-test.arff", (test_arff or arff).encode(), gz)
    if xml is not None:
        (folder / "toy.xml").write_text(xml)
    return folder


@pytest.mark.parametrize("arff", [_ARFF, _SPARSE], ids=["dense", "sparse"])
@pytest.mark.parametrize("gz", [False, True])
def test_load_mulan_tiny(tmp_path: Path, arff: str, gz: bool) -> None:
    folder = _mulan_dir(tmp_path, arff, gz=gz)
    train, test = load_mulan("toy", folder, split="both")
    for data in (train, test, load_mulan("toy", folder, split="test")):
        assert data.form == "shared"
        assert data.task_names == ("B", "A")
        assert data.feature_names == ("f1", "feature two", "colour")
        assert set(data.kinds.values()) == {"binary"}
        np.testing.assert_array_equal(data.feature_matrix(), _ARFF_X)
        np.testing.assert_array_equal(data.label_matrix(), _ARFF_Y)


def test_read_arff_matches_scipy_reference(tmp_path: Path) -> None:
    text = _ARFF.replace("'feature two'", "f2")
    ours = read_arff(_write(tmp_path / "t.arff", text.encode(), False))
    ref, meta = scipy.io.arff.loadarff(io.StringIO(text))
    assert ours.names == tuple(meta.names())
    for j, name in enumerate(meta.names()):
        col = ref[name]
        if meta[name][0] == "nominal":
            levels = list(meta[name][1])
            as_num = all(v.lstrip("-").isdigit() for v in levels)
            col = np.array(
                [
                    np.nan if v == b"?" else (float(v) if as_num else levels.index(v.decode()))
                    for v in col
                ]
            )
        np.testing.assert_array_equal(ours.data[:, j], col)


def test_load_mulan_label_fallback(tmp_path: Path) -> None:
    folder = _mulan_dir(tmp_path, xml=None)
    data = load_mulan("toy", folder, n_labels=1)
    assert data.task_names == ("A",) and data.n_features == 4
    with pytest.raises(ValueError, match=r"label file \(\.xml\) is absent.*n_labels"):
        load_mulan("toy", folder)
    with pytest.raises(ValueError, match=r"n_labels must be in \[1, 4\]"):
        load_mulan("toy", folder, n_labels=5)


@pytest.mark.parametrize(
    ("arff", "xml", "match"),
    [
        (
            _ARFF.replace("@attribute A {0,1}", "@attribute Z {0,1}"),
            _XML,
            r"lacks the label attributes \['A'\] listed in .*toy\.xml",
        ),
        (_ARFF.replace("-3,4,green,1,1", "-3,4,green,1,0.5"), _XML, "malformed ARFF data row"),
        (
            _ARFF.replace("@attribute A {0,1}", "@attribute A numeric").replace(
                "-3,4,green,1,1", "-3,4,green,1,2"
            ),
            _XML,
            r"task 'A': label 2.0 is not 0 or 1",
        ),
        (_ARFF.replace("real", "string"), _XML, "only numeric and nominal"),
        (_ARFF.replace("@data", "garbage line"), _XML, "expected an ARFF header line"),
        ("a,b\n1,2\n", _XML, "is this an ARFF file"),
        (_ARFF, "<labels><label name='A'>", "not a valid Mulan label XML"),
        (_ARFF, "<labels></labels>", "no <label name=...>"),
    ],
)
def test_load_mulan_corrupt(tmp_path: Path, arff: str, xml: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_mulan("toy", _mulan_dir(tmp_path, arff, xml))


def test_load_mulan_split_errors(tmp_path: Path) -> None:
    folder = _mulan_dir(tmp_path, test_arff=_ARFF.replace("@attribute f1", "@attribute g1"))
    with pytest.raises(ValueError, match="attributes differ"):
        load_mulan("toy", folder, split="both")
    with pytest.raises(ValueError, match="split must be 'train', 'test' or 'both'"):
        load_mulan("toy", folder, split="valid")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="not registered, so it cannot be downloaded"):
        load_mulan("toy", folder, download=True)
    with pytest.raises(FileNotFoundError, match=r"nope-train\.arff.*not a registered"):
        load_mulan("nope", folder)
