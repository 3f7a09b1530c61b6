"""Loaders for classic multi-task learning datasets, read from their published formats.

polytask never ships these datasets. Each loader reads the user's local copy from
``<data_home>/<name>/`` (see :func:`get_data_home`), or downloads it from its public
home and checks its SHA-256 first. ``list_datasets`` backs ``polytask datasets``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from polytask._typing import TaskKind
from polytask.data._catalog import MTR_N_TARGETS, PUBLISHED, dataset_folder, dataset_paths
from polytask.data._census import CENSUS_TASKS, load_census_income
from polytask.data._conll import TaggedCorpus, load_conll2000
from polytask.data._download import DatasetDownloadError, RemoteFile, get_data_home, local_copy
from polytask.data._idx import LabelledImages, load_fashion_mnist, load_mnist, read_idx
from polytask.data._loaders import TOX21_TASKS, load_school, load_tox21
from polytask.data._moleculenet import CLINTOX_TASKS, load_clintox, load_sider, load_toxcast
from polytask.data._molecules import MoleculeTasks, load_molecule_csv
from polytask.data._mtr import load_mtr
from polytask.data._mulan import load_mulan
from polytask.data._multi_item_sets import (
    load_multi_fashion,
    load_multi_fashion_mnist,
    load_multi_mnist,
)

PathArg = str | os.PathLike[str]


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry of a named dataset.

    Parameters
    ----------
    name : str
        Registry key and name of the dataset's folder under the data home.
    n_tasks : int
        Number of tasks.
    n_samples : int
        Number of samples in all (all tasks, all splits; sentences for CoNLL-2000).
    kind : str
        Kind of every task (``"regression"``, ``"binary"`` or ``"multiclass"``).
    description : str
        One line on what the data are.
    files : tuple of RemoteFile
        The published files, with their URLs and SHA-256.
    source : str
        Where the data come from and can be obtained, for humans.
    loader : callable
        Function loading the dataset; accepts ``data_home`` and ``download``.
    sources : tuple of str, default=()
        For a set built from other registered sets (the two-item image composites):
        their names, whose folders hold ``files``; empty for a set with its own folder.

    Examples
    --------
    >>> info = DATASETS["school"]
    >>> info.n_tasks, info.n_samples, info.files[0].filename
    (139, 15362, 'school.mat')
    """

    name: str
    n_tasks: int
    n_samples: int
    kind: TaskKind
    description: str
    files: tuple[RemoteFile, ...]
    source: str
    loader: Callable[..., Any]
    sources: tuple[str, ...] = ()


def _info(
    name: str,
    *,
    n_tasks: int,
    n_samples: int,
    kind: TaskKind,
    description: str,
    loader: Callable[..., Any],
) -> DatasetInfo:
    published = PUBLISHED[name]
    return DatasetInfo(
        name, n_tasks, n_samples, kind, description, published.files, published.source, loader
    )


def _composite(name: str, sources: tuple[str, ...], n_samples: int, description: str,
               loader: Callable[..., Any]) -> DatasetInfo:
    files = tuple(f for src in sources for f in PUBLISHED[src].files)
    source = f"composites built by polytask from {' and '.join(sources)} (see their rows)"
    return DatasetInfo(name, 2, n_samples, "multiclass", description, files, source, loader,
                       sources)


_MTR_INFO = {
    "andro": (49, "water quality of the Thermaikos Gulf (andro)"),
    "atp1d": (337, "airline ticket prices, next day"),
    "atp7d": (296, "airline ticket prices, within 7 days"),
    "edm": (154, "electrical discharge machining controls"),
    "enb": (768, "building energy: heating and cooling loads"),
    "jura": (359, "heavy-metal concentrations in the Swiss Jura"),
    "oes10": (403, "US occupational employment survey 2010"),
    "oes97": (334, "US occupational employment survey 1997"),
    "osales": (639, "online product sales over 12 months, 10,012 missing features"),
    "scpf": (1137, "SeeClickFix issue views, votes, comments; 9,255 missing"),
    "sf1": (323, "solar flares 1969 (C, M, X classes)"),
    "sf2": (1066, "solar flares 1978 (C, M, X classes)"),
    "slump": (103, "concrete slump, flow and strength"),
    "wq": (1060, "river water quality (Slovenia), 14 taxa"),
}

DATASETS: Mapping[str, DatasetInfo] = MappingProxyType(
    {
        "school": _info(
            "school",
            n_tasks=139,
            n_samples=15362,
            kind="regression",
            description="ILEA exam scores of 15,362 students in 139 schools, one task per school",
            loader=load_school,
        ),
        "tox21": _info(
            "tox21",
            n_tasks=12,
            n_samples=7831,
            kind="binary",
            description="Tox21 toxicity assays (MoleculeNet): 7,831 SMILES x 12, 17 % missing",
            loader=load_tox21,
        ),
        "yeast": _info(
            "yeast",
            n_tasks=14,
            n_samples=2417,
            kind="binary",
            description="Yeast gene functional classes (Mulan): 103 features, 1,500/917 split",
            loader=functools.partial(load_mulan, "yeast"),
        ),
        "scene": _info(
            "scene",
            n_tasks=6,
            n_samples=2407,
            kind="binary",
            description="Scene image classes (Mulan): 294 features, 1,211/1,196 split",
            loader=functools.partial(load_mulan, "scene"),
        ),
        "emotions": _info(
            "emotions",
            n_tasks=6,
            n_samples=593,
            kind="binary",
            description="Music emotions (Mulan): 72 audio features, 391/202 split",
            loader=functools.partial(load_mulan, "emotions"),
        ),
        "sider": _info(
            "sider",
            n_tasks=27,
            n_samples=1427,
            kind="binary",
            description="SIDER drug side effects (MoleculeNet): 1,427 SMILES x 27 organ classes",
            loader=load_sider,
        ),
        "clintox": _info(
            "clintox",
            n_tasks=2,
            n_samples=1478,
            kind="binary",
            description="ClinTox (MoleculeNet): 1,478 SMILES, FDA approval and trial toxicity",
            loader=load_clintox,
        ),
        "toxcast": _info(
            "toxcast",
            n_tasks=617,
            n_samples=8615,
            kind="binary",
            description="ToxCast assays (MoleculeNet): 8,615 SMILES x 617, 71 % missing",
            loader=load_toxcast,
        ),
        "census_income": _info(
            "census_income",
            n_tasks=2,
            n_samples=99762,
            kind="binary",
            description="UCI Census-Income KDD test file: income > 50K and never married (MMoE)",
            loader=load_census_income,
        ),
        "mnist": _info(
            "mnist",
            n_tasks=2,
            n_samples=10000,
            kind="multiclass",
            description="MNIST test digits for MultiMNIST (left/right digit), see multi_mnist",
            loader=load_mnist,
        ),
        "fashion_mnist": _info(
            "fashion_mnist",
            n_tasks=2,
            n_samples=70000,
            kind="multiclass",
            description="Fashion-MNIST 60k/10k for MultiFashion (left/right item)",
            loader=load_fashion_mnist,
        ),
        "multi_mnist": _composite(
            "multi_mnist", ("mnist",), 10000,
            "MultiMNIST: left and right digit of 10,000 composites of MNIST test digits",
            load_multi_mnist),
        "multi_fashion": _composite(
            "multi_fashion", ("fashion_mnist",), 70000,
            "MultiFashion: left and right item, composites of Fashion-MNIST 60k/10k",
            load_multi_fashion),
        "multi_fashion_mnist": _composite(
            "multi_fashion_mnist", ("mnist", "fashion_mnist"), 10000,
            "Multi-(Fashion+MNIST): an MNIST digit left, a Fashion-MNIST item right",
            load_multi_fashion_mnist),
        "conll2000": _info(
            "conll2000",
            n_tasks=2,
            n_samples=10948,
            kind="multiclass",
            description="CoNLL-2000 WSJ sentences: POS tagging and chunking per token",
            loader=load_conll2000,
        ),
        **{
            name: _info(
                name,
                n_tasks=MTR_N_TARGETS[name],
                n_samples=n_samples,
                kind="regression",
                description=f"Mulan multi-target regression: {description}",
                loader=functools.partial(load_mtr, name),
            )
            for name, (n_samples, description) in _MTR_INFO.items()
        },
    }
)
"""Registry of the named datasets, keyed by name (read-only)."""


def _known(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {sorted(DATASETS)}")
    return DATASETS[name]


def list_datasets(data_home: PathArg | None = None) -> list[dict[str, Any]]:
    """Describe the registered datasets and whether their files are present locally.

    Parameters
    ----------
    data_home : str or path-like, optional
        Data home to look in (see :func:`get_data_home`).

    Returns
    -------
    list of dict
        One row per dataset with keys ``name``, ``tasks``, ``samples``, ``kind``,
        ``found`` (all files present, plain or ``.gz``), ``path`` (the dataset's
        folder, a :class:`pathlib.Path`; for a set built from others, the folder of
        the first of its :attr:`DatasetInfo.sources`) and ``source``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     rows = list_datasets(tmp)
    >>> [(r["name"], r["found"]) for r in rows][:2]
    [('school', False), ('tox21', False)]
    """
    home = get_data_home(data_home)
    rows = []
    for info in DATASETS.values():
        homes = [(src, PUBLISHED[src].files) for src in info.sources] or [(info.name, info.files)]
        folder = dataset_folder(homes[0][0], home)
        found = all(local_copy(dataset_folder(src, home), f.filename) is not None
                    for src, files in homes for f in files)
        rows.append(
            {
                "name": info.name,
                "tasks": info.n_tasks,
                "samples": info.n_samples,
                "kind": info.kind,
                "found": found,
                "path": folder,
                "source": info.source,
            }
        )
    return rows


def load_dataset(
    name: str,
    data_home: PathArg | None = None,
    download: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Load a registered dataset by name.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS` (``"school"``, ``"tox21"``, ``"yeast"``, ``"enb"`` …).
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`).
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    **kwargs
        Passed to the dataset's loader (e.g. ``split="test"`` or ``featurize=...``).

    Returns
    -------
    object
        What the dataset's loader returns (usually a :class:`MultiTaskData`).

    Raises
    ------
    ValueError
        If ``name`` is not registered (the message lists the known names).

    Examples
    --------
    >>> load_dataset("no-such-set")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown dataset 'no-such-set'; known datasets: [...]
    """
    info = _known(name)
    return info.loader(data_home=data_home, download=download, **kwargs)


def download_dataset(
    name: str, data_home: PathArg | None = None, *, force: bool = False, timeout: float = 60.0
) -> list[Path]:
    """Download the files of a registered dataset that are not present locally.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`).
    force : bool, default=False
        Download every file again even if a local copy exists.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    list of pathlib.Path
        Local paths of the dataset's files.

    Raises
    ------
    ValueError
        If ``name`` is not registered.
    DatasetDownloadError
        If a download fails or its checksum does not match.

    Examples
    --------
    >>> download_dataset("no-such-set")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown dataset 'no-such-set'; known datasets: [...]
    """
    info = _known(name)
    mode = True if force else None
    return [path for src in info.sources or (name,)
            for path in dataset_paths(src, [f.filename for f in PUBLISHED[src].files], None,
                                      data_home, mode, timeout)]


__all__ = [
    "CENSUS_TASKS",
    "CLINTOX_TASKS",
    "DATASETS",
    "MTR_N_TARGETS",
    "TOX21_TASKS",
    "DatasetDownloadError",
    "DatasetInfo",
    "LabelledImages",
    "MoleculeTasks",
    "RemoteFile",
    "TaggedCorpus",
    "download_dataset",
    "get_data_home",
    "list_datasets",
    "load_census_income",
    "load_clintox",
    "load_conll2000",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "load_molecule_csv",
    "load_mtr",
    "load_mulan",
    "load_multi_fashion",
    "load_multi_fashion_mnist",
    "load_multi_mnist",
    "load_school",
    "load_sider",
    "load_tox21",
    "load_toxcast",
    "read_idx",
]
