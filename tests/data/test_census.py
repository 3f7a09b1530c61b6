"""Tests of the Census-Income (KDD) loader on tiny files in the published layout.

Headerless CSV, 42 columns, values with a leading space; the one-hot encoding is
checked against ``pandas.get_dummies``. The published test file is checked when
``../shared/data`` is present. No test reaches the network.
"""

from __future__ import annotations

import gzip
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from polytask.data._catalog import PUBLISHED, dataset_folder
from polytask.data._census import CENSUS_CATEGORICAL, CENSUS_COLUMNS, CENSUS_NUMERIC
from polytask.data._download import content_sha256, local_copy
from polytask.data.datasets import CENSUS_TASKS, load_census_income, load_dataset

_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real = urllib.request.urlopen

    def guarded(url: Any, *args: Any, **kwargs: Any) -> Any:
        target = url if isinstance(url, str) else url.full_url
        if not target.startswith("file:"):
            raise AssertionError(f"a test tried to reach the network: {target}")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


def _rows(n: int = 6, seed: int = 0) -> list[dict[str, str]]:
    """Random rows: numbers in numeric columns, a few levels in text columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row = {}
        for column in CENSUS_COLUMNS:
            if column == "instance_weight":
                row[column] = "1032.38"
            elif column in CENSUS_NUMERIC:
                row[column] = str(int(rng.integers(0, 100)))
            elif column in ("det_ind_code", "det_occ_code"):
                row[column] = str(int(rng.choice([0, 2, 10, 37])))
            else:
                row[column] = str(rng.choice(["Not in universe", "?", "Level B", "Level A"]))
        row["marital_stat"] = "Never married" if i % 2 else "Married-civilian spouse present"
        row["income_50k"] = "50000+." if i % 3 == 0 else "- 50000."
        rows.append(row)
    return rows


def _text(rows: list[dict[str, str]]) -> str:
    # the published layout: comma, then a space before every value
    return "".join(", ".join(r[c] for c in CENSUS_COLUMNS) + "\n" for r in rows)


def _write(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode()
    if gz:
        path, data = path.with_name(path.name + ".gz"), gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_onehot_matches_pandas_get_dummies(tmp_path: Path, gz: bool) -> None:
    rows = _rows()
    file = _write(tmp_path / "census-income.test", _text(rows), gz)
    data = load_census_income(file)
    assert data.form == "shared" and data.task_names == CENSUS_TASKS == ("income", "never_married")
    assert set(data.kinds.values()) == {"binary"}
    np.testing.assert_array_equal(
        data.label_matrix(),
        [
            [float(r["income_50k"] == "50000+."), float(r["marital_stat"] == "Never married")]
            for r in rows
        ],
    )
    frame = pd.DataFrame(rows)
    numeric = frame[list(CENSUS_NUMERIC)].astype(float)
    dummies = pd.get_dummies(frame[list(CENSUS_CATEGORICAL)], prefix_sep="=").astype(float)
    reference = pd.concat([numeric, dummies], axis=1)
    got = pd.DataFrame(data.feature_matrix(), columns=list(data.feature_names))
    assert set(got.columns) == set(reference.columns)
    pd.testing.assert_frame_equal(got[reference.columns], reference, check_dtype=False)
    assert list(data.feature_names[: len(CENSUS_NUMERIC)]) == list(CENSUS_NUMERIC)
    dropped = {"instance_weight", "marital_stat", "income_50k"}
    assert not any(name.split("=")[0] in dropped for name in data.feature_names)


def test_categories_sorted_codes_numerically(tmp_path: Path) -> None:
    rows = _rows(8)
    file = _write(tmp_path / "census-income.test", _text(rows))
    names = [n for n in load_census_income(file).feature_names if n.startswith("det_ind_code=")]
    codes = [int(n.split("=")[1]) for n in names]
    assert codes == sorted(codes) and len(codes) == len({r["det_ind_code"] for r in rows})


def test_codes_encoding(tmp_path: Path) -> None:
    rows = _rows()
    file = _write(tmp_path / "census-income.test", _text(rows))
    data = load_census_income(file, encoding="codes")
    assert data.feature_names == (*CENSUS_NUMERIC, *CENSUS_CATEGORICAL)
    X = data.feature_matrix()
    for j, column in enumerate(CENSUS_CATEGORICAL, start=len(CENSUS_NUMERIC)):
        values = {r[column] for r in rows}
        levels = sorted(values, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
        np.testing.assert_array_equal(X[:, j], [levels.index(r[column]) for r in rows])


def test_trailing_spaces_are_stripped(tmp_path: Path) -> None:
    rows = _rows(2)
    rows[0]["citizenship"] = "Native- Born in the United States "
    rows[1]["citizenship"] = "Native- Born in the United States"
    data = load_census_income(_write(tmp_path / "c.test", _text(rows)))
    assert [n for n in data.feature_names if n.startswith("citizenship")] == [
        "citizenship=Native- Born in the United States"
    ]


def test_seeded_50_25_25_protocol(tmp_path: Path) -> None:
    data = load_census_income(_write(tmp_path / "c.test", _text(_rows(40))))
    parts = data.train_val_test_split(0.5, 0.25, random_state=0)
    assert [p.n_samples for p in parts] == [20, 10, 10]
    again = data.train_val_test_split(0.5, 0.25, random_state=0)
    np.testing.assert_array_equal(parts[2].feature_matrix(), again[2].feature_matrix())


def _corrupt(kind: str) -> str:
    rows = _rows(3)
    if kind == "income":
        rows[1]["income_50k"] = "50000-"
    elif kind == "number":
        rows[2]["age"] = "old"
    elif kind == "empty":
        rows[1]["education"] = ""
    text = _text(rows)
    if kind == "short":
        text = text.replace(", 1032.38", "", 3)
    elif kind == "long":
        lines = text.splitlines(keepends=True)
        text = lines[0] + lines[1].replace("\n", ", extra\n") + lines[2]
    return text


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("income", r"line 2, column 'income_50k': '50000-' is neither"),
        ("number", r"line 3, column 'age': 'old' is not a number"),
        ("empty", r"line 2, column 'education' is empty"),
        ("short", r"has 41 columns; expected the headerless UCI census-income.*keras-mmoe"),
        ("long", r"could not be parsed.*42 comma-separated columns"),
    ],
)
def test_corrupt_files(tmp_path: Path, kind: str, match: str) -> None:
    file = _write(tmp_path / "census-income.test", _corrupt(kind))
    with pytest.raises(ValueError, match=match):
        load_census_income(file)


def test_truncated_gzip_and_missing_file(tmp_path: Path) -> None:
    file = _write(tmp_path / "census-income.test", _text(_rows(50)), gz=True)
    file.write_bytes(file.read_bytes()[:-40])
    with pytest.raises(ValueError, match=r"census-income\.test\.gz is not a valid gzip file"):
        load_census_income(file)
    with pytest.raises(
        FileNotFoundError, match=r"census_income_kdd[/\\]census-income\.test.*keras-mmoe"
    ):
        load_dataset("census_income", data_home=tmp_path, download=False)
    with pytest.raises(ValueError, match="encoding must be 'onehot' or 'codes'"):
        load_census_income(file, encoding="ordinal")  # type: ignore[arg-type]


def _shared() -> Path:
    if not (_SHARED / "census_income_kdd").is_dir():
        pytest.skip("shared dataset folder 'census_income_kdd' not present beside the repository")
    return _SHARED


def test_recorded_checksum_matches_shared_copy() -> None:
    (remote,) = PUBLISHED["census_income"].files
    local = local_copy(dataset_folder("census_income", _shared()), remote.filename)
    assert local is not None and content_sha256(local) == remote.sha256


def test_real_census_income() -> None:
    data = load_dataset("census_income", data_home=_shared(), download=False)
    assert (data.n_samples, data.n_tasks) == (99762, 2)
    Y = data.label_matrix()
    assert int(Y[:, 0].sum()) == 6186  # PROVENANCE.md: 6.2 % earn more than 50K
    assert abs(Y[:, 1].mean() - 0.432) < 0.0005  # 43.2 % never married
    X, names = data.feature_matrix(), data.feature_names
    assert X[:, names.index("year")].min() == 94 and X[:, names.index("year")].max() == 95
    for column in CENSUS_CATEGORICAL:  # every row has exactly one level of each column
        block = [j for j, name in enumerate(names) if name.startswith(column + "=")]
        np.testing.assert_array_equal(X[:, block].sum(axis=1), np.ones(99762))
    assert data.n_features == len(CENSUS_NUMERIC) + sum("=" in name for name in names)
    train, val, test = data.train_val_test_split(0.5, 0.25, random_state=0)
    assert (train.n_samples, val.n_samples, test.n_samples) == (49881, 24941, 24940)
