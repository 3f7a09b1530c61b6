"""Loaders of the MoleculeNet sets SIDER, ClinTox and ToxCast (Tox21 is in ``_loaders.py``).

Each reads the published CSV (a ``smiles`` column plus one 0/1 column per task, an empty
cell meaning "not measured") through :func:`load_molecule_csv`. Featurise the SMILES with
:func:`polytask.data.morgan_fingerprints` (ECFP4, the MoleculeNet protocol) and split
them with :func:`polytask.data.scaffold_split` or :func:`polytask.data.random_split`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import overload

from numpy.typing import ArrayLike

from polytask.data._catalog import dataset_paths
from polytask.data._containers import MultiTaskData
from polytask.data._molecules import MoleculeTasks, load_molecule_csv

PathArg = str | os.PathLike[str]
Featurizer = Callable[[Sequence[str]], ArrayLike]

CLINTOX_TASKS: tuple[str, ...] = ("FDA_APPROVED", "CT_TOX")
"""The two ClinTox tasks: approved by the FDA; failed clinical trials for toxicity."""

_FILES = {"sider": "sider.csv", "clintox": "clintox.csv", "toxcast": "toxcast_data.csv"}


def _load(
    name: str,
    path: PathArg | None,
    featurize: Featurizer | None,
    data_home: PathArg | None,
    download: bool | None,
    timeout: float,
    task_columns: Sequence[str] | None = None,
) -> MoleculeTasks | MultiTaskData:
    (file,) = dataset_paths(name, [_FILES[name]], path, data_home, download, timeout)
    molecules = load_molecule_csv(file, task_columns=task_columns)
    if featurize is None:
        return molecules
    return molecules.to_data(featurize(molecules.smiles))


@overload
def load_sider(
    path: PathArg | None = None,
    *,
    featurize: None = None,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MoleculeTasks: ...
@overload
def load_sider(
    path: PathArg | None = None,
    *,
    featurize: Featurizer,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MultiTaskData: ...
def load_sider(
    path: PathArg | None = None,
    *,
    featurize: Featurizer | None = None,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MoleculeTasks | MultiTaskData:
    """Load SIDER (MoleculeNet): 1,427 marketed drugs, 27 binary side-effect classes.

    The tasks are the MedDRA system organ classes (``"Hepatobiliary disorders"``,
    ``"Cardiac disorders"``, …), named after the CSV columns; no label is missing.

    Parameters
    ----------
    path : str or path-like, optional
        ``sider.csv`` (plain or ``.gz``) or its folder. Default: ``<data_home>/sider/``.
    featurize : callable, optional
        Maps the sequence of SMILES to an ``(n_molecules, n_features)`` matrix, e.g.
        ``lambda s: morgan_fingerprints(s)[0]``; the result is then a
        :class:`MultiTaskData`.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    MoleculeTasks or MultiTaskData
        SMILES with the ``(1427, 27)`` label matrix; or, with ``featurize``, the
        shared-design dataset of 27 binary tasks.

    Raises
    ------
    FileNotFoundError
        If the file is absent and ``download=False``.
    DatasetDownloadError
        If the download fails or its checksum does not match.
    ValueError
        If the file is not a CSV with a ``smiles`` column, or a label is not 0, 1 or empty.

    References
    ----------
    Kuhn, M. et al. (2016). The SIDER database of drugs and side effects. Nucleic Acids
    Research 44(D1), D1075-D1079.

    Wu, Z. et al. (2018). MoleculeNet: a benchmark for molecular machine learning.
    Chemical Science 9(2), 513-530.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp) / "sider.csv"
    ...     _ = f.write_text('smiles,Cardiac disorders,"Injury, poisoning"\\nCCO,1,0\\n')
    ...     mols = load_sider(f)
    >>> mols.task_names, mols.Y.tolist()
    (('Cardiac disorders', 'Injury, poisoning'), [[1.0, 0.0]])
    """
    return _load("sider", path, featurize, data_home, download, timeout)


@overload
def load_clintox(
    path: PathArg | None = None,
    *,
    featurize: None = None,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MoleculeTasks: ...
@overload
def load_clintox(
    path: PathArg | None = None,
    *,
    featurize: Featurizer,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MultiTaskData: ...
def load_clintox(
    path: PathArg | None = None,
    *,
    featurize: Featurizer | None = None,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MoleculeTasks | MultiTaskData:
    """Load ClinTox (MoleculeNet): 1,478 drugs, tasks ``FDA_APPROVED`` and ``CT_TOX``.

    ``FDA_APPROVED``: the drug was approved; ``CT_TOX``: it failed clinical trials for
    toxicity. No label is missing. The file is chemprop's RDKit-parsable subset of the
    1,491-row DeepChem file.

    Parameters
    ----------
    path : str or path-like, optional
        ``clintox.csv`` (plain or ``.gz``) or its folder. Default: ``<data_home>/clintox/``.
    featurize : callable, optional
        Maps the sequence of SMILES to an ``(n_molecules, n_features)`` matrix; the
        result is then a :class:`MultiTaskData`.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    MoleculeTasks or MultiTaskData
        SMILES with the ``(1478, 2)`` label matrix (columns :data:`CLINTOX_TASKS`); or,
        with ``featurize``, the shared-design dataset of 2 binary tasks.

    Raises
    ------
    FileNotFoundError
        If the file is absent and ``download=False``.
    DatasetDownloadError
        If the download fails or its checksum does not match.
    ValueError
        If the file lacks the ``smiles``, ``FDA_APPROVED`` or ``CT_TOX`` column, or a
        label is not 0, 1 or empty.

    References
    ----------
    Gayvert, K. M., Madhukar, N. S. & Elemento, O. (2016). A data-driven approach to
    predicting successes and failures of clinical trials. Cell Chemical Biology 23(10),
    1294-1301.

    Wu, Z. et al. (2018). MoleculeNet: a benchmark for molecular machine learning.
    Chemical Science 9(2), 513-530.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp) / "clintox.csv"
    ...     _ = f.write_text("smiles,FDA_APPROVED,CT_TOX\\nCCO,1,0\\nCC,0,1\\n")
    ...     mols = load_clintox(f)
    >>> mols.task_names, mols.Y.shape
    (('FDA_APPROVED', 'CT_TOX'), (2, 2))
    """
    return _load("clintox", path, featurize, data_home, download, timeout, CLINTOX_TASKS)


@overload
def load_toxcast(
    path: PathArg | None = None,
    *,
    featurize: None = None,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MoleculeTasks: ...
@overload
def load_toxcast(
    path: PathArg | None = None,
    *,
    featurize: Featurizer,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MultiTaskData: ...
def load_toxcast(
    path: PathArg | None = None,
    *,
    featurize: Featurizer | None = None,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MoleculeTasks | MultiTaskData:
    """Load ToxCast (MoleculeNet): 8,615 molecules, 617 binary in-vitro assay endpoints.

    Only 28.9 % of the label matrix is observed (50 to 7,950 labels per task); missing
    labels are NaN. The tasks are named after the CSV columns (``ACEA_T47D_80hr_Negative``
    …); RDKit parses 8,597 of the 8,615 SMILES.

    Parameters
    ----------
    path : str or path-like, optional
        ``toxcast_data.csv`` (plain or ``.gz``) or its folder. Default:
        ``<data_home>/toxcast/``.
    featurize : callable, optional
        Maps the sequence of SMILES to an ``(n_molecules, n_features)`` matrix; the
        result is then a :class:`MultiTaskData`.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    MoleculeTasks or MultiTaskData
        SMILES with the ``(8615, 617)`` label matrix (NaN = missing); or, with
        ``featurize``, the shared-design dataset of 617 binary tasks.

    Raises
    ------
    FileNotFoundError
        If the file is absent and ``download=False``.
    DatasetDownloadError
        If the download fails or its checksum does not match.
    ValueError
        If the file is not a CSV with a ``smiles`` column, or a label is not 0, 1 or empty.

    References
    ----------
    Richard, A. M. et al. (2016). ToxCast chemical landscape: paving the road to 21st
    century toxicology. Chemical Research in Toxicology 29(8), 1225-1251.

    Wu, Z. et al. (2018). MoleculeNet: a benchmark for molecular machine learning.
    Chemical Science 9(2), 513-530.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp) / "toxcast_data.csv"
    ...     _ = f.write_text("smiles,A_up,B_dn\\nCCO,1.0,\\n")
    ...     mols = load_toxcast(f)
    >>> mols.task_names, round(mols.missing_fraction, 2)
    (('A_up', 'B_dn'), 0.5)
    """
    return _load("toxcast", path, featurize, data_home, download, timeout)
