"""UCI Census-Income (KDD): the two-task benchmark of MMoE (income > 50K, never married)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from polytask.data._catalog import PUBLISHED, dataset_paths
from polytask.data._containers import MultiTaskData
from polytask.data._formats import read_bytes

if TYPE_CHECKING:
    import pandas as pd

PathArg = str | os.PathLike[str]

CENSUS_COLUMNS: tuple[str, ...] = (
    "age", "class_worker", "det_ind_code", "det_occ_code", "education", "wage_per_hour",
    "hs_college", "marital_stat", "major_ind_code", "major_occ_code", "race", "hisp_origin",
    "sex", "union_member", "unemp_reason", "full_or_part_emp", "capital_gains",
    "capital_losses", "stock_dividends", "tax_filer_stat", "region_prev_res",
    "state_prev_res", "det_hh_fam_stat", "det_hh_summ", "instance_weight", "mig_chg_msa",
    "mig_chg_reg", "mig_move_reg", "mig_same", "mig_prev_sunbelt", "num_emp",
    "fam_under_18", "country_father", "country_mother", "country_self", "citizenship",
    "own_or_self", "vet_question", "vet_benefits", "weeks_worked", "year", "income_50k",
)  # fmt: skip
"""The 42 columns of the headerless census-income files, in file order."""

CENSUS_CATEGORICAL: tuple[str, ...] = (
    "class_worker", "det_ind_code", "det_occ_code", "education", "hs_college",
    "major_ind_code", "major_occ_code", "race", "hisp_origin", "sex", "union_member",
    "unemp_reason", "full_or_part_emp", "tax_filer_stat", "region_prev_res",
    "state_prev_res", "det_hh_fam_stat", "det_hh_summ", "mig_chg_msa", "mig_chg_reg",
    "mig_move_reg", "mig_same", "mig_prev_sunbelt", "fam_under_18", "country_father",
    "country_mother", "country_self", "citizenship", "vet_question",
)  # fmt: skip
"""The 29 categorical feature columns (every text column except the two label sources,
plus the industry and occupation codes ``det_ind_code`` and ``det_occ_code``)."""

CENSUS_NUMERIC: tuple[str, ...] = (
    "age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends",
    "num_emp", "own_or_self", "vet_benefits", "weeks_worked", "year",
)  # fmt: skip
"""The 10 numeric feature columns, kept raw (not standardised)."""

CENSUS_TASKS: tuple[str, ...] = ("income", "never_married")
"""The two binary tasks: income above 50,000 USD; marital status "Never married"."""

_INCOME = {"- 50000.": 0.0, "50000+.": 1.0}
_NEVER_MARRIED = "Never married"


_TEXT = frozenset(CENSUS_CATEGORICAL) | {"marital_stat", "income_50k"}


def _natural(value: str) -> tuple[int, int, str]:
    """Sort key: integer codes numerically, before text in lexicographic order."""
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def _expected() -> str:
    return (
        f"expected the headerless UCI census-income (KDD) CSV with {len(CENSUS_COLUMNS)} "
        f"comma-separated columns per row; it can be obtained from "
        f"{PUBLISHED['census_income'].source}"
    )


def _read_frame(file: Path) -> pd.DataFrame:
    import pandas as pd  # imported here: polytask.data does not need pandas to import

    text_columns = {i: str for i, name in enumerate(CENSUS_COLUMNS) if name in _TEXT}
    try:
        frame = pd.read_csv(
            io.BytesIO(read_bytes(file)),
            header=None,
            dtype=text_columns,  # type: ignore[arg-type]
            na_filter=False,
            skipinitialspace=True,
            encoding="latin-1",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{file} could not be parsed ({str(err).strip()}); {_expected()}") from err
    if frame.shape[1] != len(CENSUS_COLUMNS):
        raise ValueError(f"{file} has {frame.shape[1]} columns; {_expected()}")
    frame.columns = list(CENSUS_COLUMNS)
    return frame


def _categories(frame: pd.DataFrame, file: Path, column: str) -> tuple[list[str], NDArray[np.intp]]:
    """Categories of a text column (stripped, natural order) and each row's index in them."""
    import pandas as pd

    codes, uniques = pd.factorize(frame[column])
    stripped = np.array([str(u).strip() for u in uniques])
    if "" in stripped:
        row = int(np.flatnonzero(stripped[codes] == "")[0])
        raise ValueError(
            f"{file}, line {row + 1}, column {column!r} is empty (is the row short or the "
            f"file truncated?); {_expected()}"
        )
    cats, inverse = np.unique(stripped, return_inverse=True)
    order = sorted(range(len(cats)), key=lambda k: _natural(str(cats[k])))
    rank = np.empty(len(cats), dtype=np.intp)
    rank[order] = np.arange(len(cats))
    return [str(cats[k]) for k in order], rank[inverse.ravel()][codes]


def _numeric(frame: pd.DataFrame, file: Path, column: str) -> NDArray[np.float64]:
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{file}, line {row + 1}, column {column!r}: {frame[column].iloc[row]!r} is not a "
            f"number; {_expected()}"
        )
    return values


def _labels(frame: pd.DataFrame, file: Path) -> NDArray[np.float64]:
    cats, codes = _categories(frame, file, "income_50k")
    unknown = [c for c in cats if c not in _INCOME]
    if unknown:
        row = int(np.flatnonzero(codes == cats.index(unknown[0]))[0])
        raise ValueError(
            f"{file}, line {row + 1}, column 'income_50k': {unknown[0]!r} is neither "
            f"'- 50000.' nor '50000+.'"
        )
    income = np.array([_INCOME[c] for c in cats])[codes]
    cats, codes = _categories(frame, file, "marital_stat")
    never = np.array([c == _NEVER_MARRIED for c in cats], dtype=np.float64)[codes]
    return np.column_stack([income, never])


def load_census_income(
    path: PathArg | None = None,
    *,
    encoding: Literal["onehot", "codes"] = "onehot",
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MultiTaskData:
    """Load UCI Census-Income (KDD) as two binary tasks on a shared design (MMoE's group 1).

    Tasks, in this order: ``"income"`` (``income_50k`` is ``"50000+."``: income above
    50,000 USD, 6.2 % positive in the test file) and ``"never_married"``
    (``marital_stat`` is ``"Never married"``, 43.2 %), as in Ma et al. (2018).

    Features: the 10 numeric columns :data:`CENSUS_NUMERIC` kept raw (standardise them
    yourself if your model needs it), then the 29 categorical columns
    :data:`CENSUS_CATEGORICAL` (every text column and the two detailed industry and
    occupation codes), one-hot encoded by default. Dropped: the label sources
    ``income_50k`` and ``marital_stat``, and ``instance_weight``, a survey sampling
    weight (how many people a row stands for) rather than an attribute of the person.
    Values are stripped of surrounding spaces; ``"?"`` (not asked) is a category of its
    own. The categories are those present in the file, integer codes sorted
    numerically, text sorted alphabetically; align ``feature_names`` when combining
    files.

    Only the 99,762-row test file is published with polytask's benchmarks (the MMoE
    paper trains on the separate 199,523-row training file). The benchmark protocol
    splits it 50/25/25 at random with a fixed seed:
    ``train, val, test = data.train_val_test_split(0.5, 0.25, random_state=0)``.

    Parameters
    ----------
    path : str or path-like, optional
        ``census-income.test`` (plain or ``.gz``; the training file ``census-income.data``
        has the same layout), or its folder. Default: ``<data_home>/census_income_kdd/``.
    encoding : {"onehot", "codes"}, default="onehot"
        ``"onehot"``: one 0/1 column per category (about 500 columns, 400 MB for the
        test file); ``"codes"``: one column per categorical variable holding the
        category's index (for embedding layers or trees).
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    MultiTaskData
        ``X`` of shape ``(n_samples, 10 + n_encoded)``, feature names ``"age"``, …,
        ``"education=Bachelors degree(BA AB BS)"`` (one-hot) or the column names
        (codes); ``Y`` of shape ``(n_samples, 2)``, tasks :data:`CENSUS_TASKS`.

    Raises
    ------
    FileNotFoundError
        If the file is absent and ``download=False``.
    DatasetDownloadError
        If the download fails or its checksum does not match.
    ValueError
        If ``encoding`` is unknown, the file is not a 42-column CSV, a field is empty, a
        numeric field is not a number, or ``income_50k`` holds an unknown value.

    References
    ----------
    Ma, J., Zhao, Z., Yi, X., Chen, J., Hong, L. & Chi, E. H. (2018). Modeling task
    relationships in multi-task learning with multi-gate mixture-of-experts. KDD 2018.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> row = ("38, Private, 6, 36, Children, 0, Not in universe, Never married"
    ...        + ", x" * 8 + ", 0, 0, 0" + ", x" * 5 + ", 1032.38" + ", x" * 5 + ", 4"
    ...        + ", x" * 5 + ", 0, x, 2, 12, 95, 50000+.")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp) / "census-income.test"
    ...     _ = f.write_text(row + "\\n")
    ...     data = load_census_income(f)
    >>> data.task_names, data.label_matrix().tolist(), data.n_features
    (('income', 'never_married'), [[1.0, 1.0]], 39)
    """
    if encoding not in ("onehot", "codes"):
        raise ValueError(f"encoding must be 'onehot' or 'codes', got {encoding!r}")
    (file,) = dataset_paths(
        "census_income", ["census-income.test"], path, data_home, download, timeout
    )
    frame = _read_frame(file)
    Y = _labels(frame, file)
    numeric = [_numeric(frame, file, column) for column in CENSUS_NUMERIC]
    encoded = [_categories(frame, file, column) for column in CENSUS_CATEGORICAL]
    n = len(frame)
    names = list(CENSUS_NUMERIC)
    if encoding == "codes":
        X = np.column_stack([*numeric, *(codes for _, codes in encoded)]).astype(np.float64)
        names += list(CENSUS_CATEGORICAL)
    else:
        width = len(numeric) + sum(len(cats) for cats, _ in encoded)
        X = np.zeros((n, width), dtype=np.float64)
        X[:, : len(numeric)] = np.column_stack(numeric)
        offset = len(numeric)
        rows = np.arange(n)
        for column, (cats, codes) in zip(CENSUS_CATEGORICAL, encoded, strict=True):
            X[rows, offset + codes] = 1.0
            names += [f"{column}={cat}" for cat in cats]
            offset += len(cats)
    return MultiTaskData(X, Y, task_names=CENSUS_TASKS, kinds="binary", feature_names=names)
