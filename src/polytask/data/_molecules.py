"""Molecule property tables (MoleculeNet CSV layout): SMILES plus one column per task."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from polytask._typing import FloatArray, TaskKind
from polytask.data._containers import MultiTaskData
from polytask.data._formats import read_csv_rows

_MISSING = frozenset({"", "nan", "na", "none"})


@dataclass(frozen=True, eq=False)
class MoleculeTasks:
    """Molecules (as SMILES) with a label matrix where NaN marks a missing label.

    Featurisation is left to the caller (e.g. Morgan fingerprints from RDKit); pass
    the resulting matrix to :meth:`to_data` to get a :class:`MultiTaskData`.

    Parameters
    ----------
    smiles : tuple of str
        One SMILES string per molecule, length ``n_molecules``.
    Y : ndarray of shape (n_molecules, n_tasks)
        Labels, NaN where the molecule was not measured in that task. Read-only.
    task_names : tuple of str
        Names of the ``n_tasks`` columns of ``Y``.
    kind : {"binary", "regression"}, default="binary"
        Kind of every task.

    Examples
    --------
    >>> import numpy as np
    >>> mols = MoleculeTasks(("C", "CC"), np.array([[1.0, np.nan], [0.0, 1.0]]), ("a", "b"))
    >>> mols.n_molecules, mols.n_tasks, round(mols.missing_fraction, 2)
    (2, 2, 0.25)
    """

    smiles: tuple[str, ...]
    Y: FloatArray
    task_names: tuple[str, ...]
    kind: TaskKind = "binary"

    def __post_init__(self) -> None:
        Y = np.array(self.Y, dtype=np.float64)
        if Y.ndim != 2 or Y.shape != (len(self.smiles), len(self.task_names)):
            raise ValueError(
                f"Y must have shape (n_molecules, n_tasks) = "
                f"({len(self.smiles)}, {len(self.task_names)}), got {Y.shape}"
            )
        Y.setflags(write=False)
        object.__setattr__(self, "Y", Y)
        object.__setattr__(self, "smiles", tuple(self.smiles))
        object.__setattr__(self, "task_names", tuple(self.task_names))

    @property
    def n_molecules(self) -> int:
        """Number of molecules (rows of ``Y``)."""
        return len(self.smiles)

    @property
    def n_tasks(self) -> int:
        """Number of tasks (columns of ``Y``)."""
        return len(self.task_names)

    @property
    def missing_fraction(self) -> float:
        """Fraction of the label matrix that is missing (NaN)."""
        return float(np.isnan(self.Y).mean()) if self.Y.size else 0.0

    def to_data(
        self, features: ArrayLike, feature_names: Sequence[str] | None = None
    ) -> MultiTaskData:
        """Combine a feature matrix with the labels into a shared-design dataset.

        Parameters
        ----------
        features : array-like of shape (n_molecules, n_features)
            One row per molecule, in the order of ``smiles``.
        feature_names : sequence of str, optional
            Names of the ``n_features`` columns.

        Returns
        -------
        MultiTaskData
            Shared design ``X = features`` and label matrix ``Y`` (NaN = missing), one
            task of kind ``self.kind`` per column.

        Raises
        ------
        ValueError
            If ``features`` is not 2-D with one row per molecule.

        Examples
        --------
        >>> import numpy as np
        >>> mols = MoleculeTasks(("C", "CC"), np.array([[1.0, np.nan], [0.0, 1.0]]), ("a", "b"))
        >>> data = mols.to_data(np.eye(2))
        >>> type(data).__name__
        'MultiTaskData'
        """
        X = np.asarray(features, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] != self.n_molecules:
            raise ValueError(
                f"features must have shape (n_molecules, n_features) with n_molecules="
                f"{self.n_molecules}, got shape {X.shape}"
            )
        return MultiTaskData(
            X,
            np.array(self.Y),
            task_names=list(self.task_names),
            kinds=self.kind,
            feature_names=None if feature_names is None else list(feature_names),
        )


def _parse_label(path: Path, text: str, lineno: int, column: str, kind: TaskKind) -> float:
    token = text.strip()
    if token.lower() in _MISSING:
        return math.nan
    try:
        value = float(token)
    except ValueError:
        value = math.nan
        ok = False
    else:
        ok = math.isfinite(value) and (kind != "binary" or value in (0.0, 1.0))
    if not ok:
        expected = "0, 1 or empty" if kind == "binary" else "a number or empty"
        raise ValueError(
            f"{path}, row {lineno}, task {column!r}: label {text!r} is invalid; expected {expected}"
        )
    return value


def load_molecule_csv(
    path: str | os.PathLike[str],
    smiles_column: str = "smiles",
    task_columns: Sequence[str] | None = None,
    kind: TaskKind = "binary",
) -> MoleculeTasks:
    """Read a MoleculeNet-style CSV: a SMILES column plus one column per task.

    Parameters
    ----------
    path : str or path-like
        CSV file, plain or gzip-compressed.
    smiles_column : str, default="smiles"
        Name of the column holding the SMILES strings.
    task_columns : sequence of str, optional
        Task columns to read, in this order. Default: every column except
        ``smiles_column`` and a ``mol_id`` column.
    kind : {"binary", "regression"}, default="binary"
        Kind of the tasks; binary labels must be 0 or 1.

    Returns
    -------
    MoleculeTasks
        SMILES and the ``(n_molecules, n_tasks)`` label matrix, NaN where a cell is
        empty (or ``nan``/``NA``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a valid CSV, a requested column is missing, a SMILES is empty
        or a label is not a number (0/1 for binary tasks).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp) / "mols.csv"
    ...     _ = f.write_text("smiles,t1,t2\\nCCO,1,\\nc1ccccc1,0,1\\n")
    ...     mols = load_molecule_csv(f)
    >>> mols.task_names, mols.Y.shape, int(mols.Y[1, 1])
    (('t1', 't2'), (2, 2), 1)
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"molecule CSV file {file} not found")
    header, rows = read_csv_rows(file)
    if smiles_column not in header:
        raise ValueError(f"{file}: smiles_column {smiles_column!r} not in the CSV header {header}")
    if task_columns is None:
        tasks = [h for h in header if h not in (smiles_column, "mol_id")]
    else:
        tasks = list(task_columns)
        missing = [t for t in tasks if t not in header]
        if missing:
            raise ValueError(f"{file}: task_columns {missing} not in the CSV header {header}")
    if not tasks:
        raise ValueError(f"{file}: no task column besides {smiles_column!r}")
    s_col = header.index(smiles_column)
    t_cols = [header.index(t) for t in tasks]
    smiles: list[str] = []
    Y = np.empty((len(rows), len(tasks)))
    for i, row in enumerate(rows):
        smi = row[s_col].strip()
        if not smi:
            raise ValueError(f"{file}, row {i + 2}: empty SMILES in column {smiles_column!r}")
        smiles.append(smi)
        Y[i] = [
            _parse_label(file, row[c], i + 2, t, kind) for c, t in zip(t_cols, tasks, strict=True)
        ]
    return MoleculeTasks(tuple(smiles), Y, tuple(tasks), kind=kind)
