"""Loaders of the School (MALSAR ``.mat``) and Tox21 (MoleculeNet CSV) datasets."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import overload

import numpy as np
from numpy.typing import ArrayLike

from polytask.data._catalog import dataset_paths
from polytask.data._containers import MultiTaskData
from polytask.data._formats import read_mat_cells
from polytask.data._molecules import MoleculeTasks, load_molecule_csv

PathArg = str | os.PathLike[str]
Featurizer = Callable[[Sequence[str]], ArrayLike]


def load_school(
    path: PathArg | None = None,
    *,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MultiTaskData:
    """Load the School exam-score data (139 schools, 15,362 students) from MALSAR's file.

    One regression task per school: predict a student's exam score from 28 numeric
    attributes. The file is MALSAR's ``school.mat``: MATLAB cell arrays ``X`` and ``Y``
    (1 × 139) with ``X{t}`` of shape ``(n_t, 28)`` and ``Y{t}`` of shape ``(n_t, 1)``.

    Parameters
    ----------
    path : str or path-like, optional
        The ``school.mat`` file (or ``.mat.gz``), or its folder. Default:
        ``<data_home>/school/``.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    MultiTaskData
        Per-task design with tasks ``"school_001"`` … ``"school_139"`` (float64 arrays,
        ``X_t`` of shape ``(n_t, 28)``), kind ``"regression"``.

    Raises
    ------
    FileNotFoundError
        If the file is absent and ``download=False``.
    DatasetDownloadError
        If the download fails or its checksum does not match.
    ValueError
        If the file is not a MAT file with cell arrays ``X`` and ``Y`` of matching sizes.

    References
    ----------
    Argyriou, A., Evgeniou, T. & Pontil, M. (2008). Convex multi-task feature learning.
    Machine Learning 73(3), 243-272.

    Zhou, J., Chen, J. & Ye, J. (2011). MALSAR: Multi-tAsk Learning via StructurAl
    Regularization. Arizona State University.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, scipy.io
    >>> cells = lambda arrays: np.array([arrays], dtype=object)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp) / "school.mat"
    ...     scipy.io.savemat(f, {"X": cells([np.ones((3, 2)), np.zeros((4, 2))]),
    ...                          "Y": cells([np.ones((3, 1)), np.ones((4, 1))])})
    ...     data = load_school(f)
    >>> type(data).__name__
    'MultiTaskData'
    """
    (file,) = dataset_paths("school", ["school.mat"], path, data_home, download, timeout)
    return _read_school(file)


def _read_school(file: Path) -> MultiTaskData:
    cells = read_mat_cells(file, ("X", "Y"))
    xs, ys = cells["X"], cells["Y"]
    if len(xs) != len(ys) or not xs:
        raise ValueError(
            f"{file}: cell arrays X and Y must have the same positive number of tasks, "
            f"got {len(xs)} and {len(ys)}"
        )
    width = max(3, len(str(len(xs))))
    n_features = xs[0].shape[1]
    tasks = {}
    for t, (x, y) in enumerate(zip(xs, ys, strict=True)):
        name = f"school_{t + 1:0{width}d}"
        if x.shape[1] != n_features or y.size != x.shape[0] or min(y.shape) > 1:
            raise ValueError(
                f"{file}, task {name}: expected X{{t}} of shape (n_t, {n_features}) and Y{{t}} "
                f"of shape (n_t, 1), got {x.shape} and {y.shape}"
            )
        tasks[name] = (x.astype(np.float64), y.astype(np.float64).ravel())
    return MultiTaskData.from_tasks(tasks, kinds="regression")


TOX21_TASKS: tuple[str, ...] = (
    "NR-AR",
    "NR-AR-LBD",
    "NR-AhR",
    "NR-Aromatase",
    "NR-ER",
    "NR-ER-LBD",
    "NR-PPAR-gamma",
    "SR-ARE",
    "SR-ATAD5",
    "SR-HSE",
    "SR-MMP",
    "SR-p53",
)
"""The 12 Tox21 assays, in the column order of the MoleculeNet CSV."""


@overload
def load_tox21(
    path: PathArg | None = None,
    featurize: None = None,
    *,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MoleculeTasks: ...
@overload
def load_tox21(
    path: PathArg | None,
    featurize: Featurizer,
    *,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MultiTaskData: ...
@overload
def load_tox21(
    path: PathArg | None = None,
    *,
    featurize: Featurizer,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MultiTaskData: ...
def load_tox21(
    path: PathArg | None = None,
    featurize: Featurizer | None = None,
    *,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MoleculeTasks | MultiTaskData:
    """Load Tox21 (MoleculeNet version): 7,831 molecules, 12 binary toxicity assays.

    Reads the CSV published by MoleculeNet/chemprop (``smiles`` plus 12 assay columns,
    an empty cell meaning "not measured"; about 17 % of the labels are missing).

    Parameters
    ----------
    path : str or path-like, optional
        ``tox21.csv`` or ``tox21.csv.gz``, or its folder. Default: ``<data_home>/tox21/``.
    featurize : callable, optional
        Maps the sequence of SMILES to an ``(n_molecules, n_features)`` matrix (e.g.
        Morgan fingerprints). When given, the result is a :class:`MultiTaskData`.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    MoleculeTasks or MultiTaskData
        SMILES with the ``(7831, 12)`` label matrix (NaN = missing); or, with
        ``featurize``, the shared-design dataset of 12 binary tasks.

    Raises
    ------
    FileNotFoundError
        If the file is absent and ``download=False``.
    DatasetDownloadError
        If the download fails or its checksum does not match.
    ValueError
        If the file is not a CSV with ``smiles`` and the 12 assay columns, or a label is
        not 0, 1 or empty.

    References
    ----------
    Wu, Z. et al. (2018). MoleculeNet: a benchmark for molecular machine learning.
    Chemical Science 9(2), 513-530.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> header = "smiles," + ",".join(TOX21_TASKS)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp) / "tox21.csv"
    ...     _ = f.write_text(header + "\\nCCO" + ",0" * 11 + ",\\n")
    ...     mols = load_tox21(f)
    >>> mols.Y.shape, mols.smiles
    ((1, 12), ('CCO',))
    """
    (file,) = dataset_paths("tox21", ["tox21.csv"], path, data_home, download, timeout)
    molecules = load_molecule_csv(file, task_columns=TOX21_TASKS)
    if featurize is None:
        return molecules
    return molecules.to_data(featurize(molecules.smiles))
