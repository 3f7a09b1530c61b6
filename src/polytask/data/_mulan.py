"""Mulan multi-label ARFF files turned into one binary task per label."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, overload

import numpy as np

from polytask.data._catalog import MULAN_N_LABELS, PUBLISHED, dataset_paths
from polytask.data._containers import MultiTaskData
from polytask.data._download import DatasetDownloadError
from polytask.data._formats import ArffTable, read_arff, read_mulan_labels

PathArg = str | os.PathLike[str]


def _label_names(table: ArffTable, file: Path, xml: Path | None, n_labels: int | None) -> list[str]:
    """Label attributes of ``table`` in ARFF order."""
    if xml is not None:
        listed = read_mulan_labels(xml)
        missing = [name for name in listed if name not in table.names]
        if missing:
            raise ValueError(
                f"{file} lacks the label attributes {missing} listed in {xml}; expected a "
                f"Mulan ARFF file whose attributes include every label of the XML header"
            )
        wanted = set(listed)
        return [name for name in table.names if name in wanted]
    if n_labels is None:
        raise ValueError(
            f"cannot tell the labels of {file}: the Mulan label file (.xml) is absent; place "
            f"it beside the ARFF file or pass n_labels (labels are the last attributes)"
        )
    if not 0 < n_labels < len(table.names):
        raise ValueError(
            f"n_labels must be in [1, {len(table.names) - 1}] for {file} "
            f"({len(table.names)} attributes), got {n_labels}"
        )
    return list(table.names[-n_labels:])


def load_mulan_files(
    arffs: Sequence[Path], xml: Path | None, n_labels: int | None = None
) -> list[MultiTaskData]:
    """Read Mulan ARFF files into shared-design datasets with one binary task per label.

    Parameters
    ----------
    arffs : sequence of pathlib.Path
        ARFF files (e.g. the train and test split); they must share their attributes.
    xml : pathlib.Path or None
        Mulan label-header file naming the label attributes. When ``None``, the last
        ``n_labels`` attributes are the labels.
    n_labels : int, optional
        Number of trailing label attributes, used only when ``xml`` is ``None``.

    Returns
    -------
    list of MultiTaskData
        One dataset per ARFF file: features are the non-label attributes, tasks the
        labels (in ARFF order), kind ``"binary"``.

    Raises
    ------
    ValueError
        If a file is malformed, lacks a label, has no feature, holds a label other
        than 0/1/missing, or its attributes differ from the first file's.
    """
    out = []
    reference: tuple[str, ...] | None = None
    labels: list[str] = []
    for file in arffs:
        table = read_arff(file)
        if reference is None:
            reference = table.names
            labels = _label_names(table, file, xml, n_labels)
        elif table.names != reference:
            raise ValueError(
                f"{file}: attributes differ from those of {arffs[0]}; the splits of a Mulan "
                f"dataset must share their attributes"
            )
        label_set = set(labels)
        is_label = np.array([name in label_set for name in table.names])
        features = [name for name, lab in zip(table.names, is_label, strict=True) if not lab]
        if not features:
            raise ValueError(f"{file}: every attribute is a label; expected feature attributes")
        label_idx = [table.names.index(name) for name in labels]
        Y = table.data[:, label_idx]
        bad = ~(np.isnan(Y) | (Y == 0.0) | (Y == 1.0))
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{file}, data row {row + 1}, task {labels[col]!r}: label {float(Y[row, col])!r} "
                f"is not 0 or 1"
            )
        out.append(
            MultiTaskData(
                np.ascontiguousarray(table.data[:, ~is_label]),
                np.ascontiguousarray(Y),
                task_names=labels,
                kinds="binary",
                feature_names=features,
            )
        )
    return out


@overload
def load_mulan(
    name: str,
    path: PathArg | None = None,
    split: Literal["train", "test"] = "train",
    *,
    data_home: PathArg | None = None,
    download: bool | None = None,
    n_labels: int | None = None,
    timeout: float = 60.0,
) -> MultiTaskData: ...
@overload
def load_mulan(
    name: str,
    path: PathArg | None,
    split: Literal["both"],
    *,
    data_home: PathArg | None = None,
    download: bool | None = None,
    n_labels: int | None = None,
    timeout: float = 60.0,
) -> tuple[MultiTaskData, MultiTaskData]: ...
@overload
def load_mulan(
    name: str,
    path: PathArg | None = None,
    *,
    split: Literal["both"],
    data_home: PathArg | None = None,
    download: bool | None = None,
    n_labels: int | None = None,
    timeout: float = 60.0,
) -> tuple[MultiTaskData, MultiTaskData]: ...
def load_mulan(
    name: str,
    path: PathArg | None = None,
    split: Literal["train", "test", "both"] = "train",
    *,
    data_home: PathArg | None = None,
    download: bool | None = None,
    n_labels: int | None = None,
    timeout: float = 60.0,
) -> MultiTaskData | tuple[MultiTaskData, MultiTaskData]:
    """Load a Mulan multi-label benchmark (ARFF + label XML) as one binary task per label.

    Reads ``<name>-train.arff``, ``<name>-test.arff`` (plain or ``.gz``) and the label
    header ``<name>.xml`` from ``path`` (default ``<data_home>/<name>/``). Registered
    sets (``yeast``, ``scene``, ``emotions``) are downloaded when absent. Tasks follow
    the order of the label attributes in the ARFF file; all other attributes are the
    shared features.

    Parameters
    ----------
    name : str
        File stem, e.g. ``"yeast"``; any Mulan set works when its files are local.
    path : str or path-like, optional
        Folder holding the files.
    split : {"train", "test", "both"}, default="train"
        Which published split to return; ``"both"`` returns ``(train, test)``.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    n_labels : int, optional
        When the ``.xml`` file is absent, take the last ``n_labels`` attributes as
        labels (default for registered sets: their number of tasks).
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    MultiTaskData or tuple of MultiTaskData
        Shared design ``X`` of shape ``(n_samples, n_features)`` and binary label
        matrix ``Y`` of shape ``(n_samples, n_labels)``; a ``(train, test)`` pair for
        ``split="both"``.

    Raises
    ------
    ValueError
        If ``split`` is invalid, a file is malformed, the ARFF lacks a label listed in
        the XML, a label is not 0/1, or the labels cannot be identified.
    FileNotFoundError
        If a needed file is absent and cannot be downloaded.
    DatasetDownloadError
        If a download fails or its checksum does not match.

    References
    ----------
    Tsoumakas, G., Spyromitros-Xioufis, E., Vilcek, J. & Vlahavas, I. (2011). Mulan: a
    Java library for multi-label learning. JMLR 12, 2411-2414.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> arff = ("@relation r\\n@attribute f1 numeric\\n@attribute L1 {0,1}\\n"
    ...         "@attribute L2 {0,1}\\n@data\\n0.5,1,0\\n-1.0,0,1\\n")
    >>> xml = '<labels><label name="L1"></label><label name="L2"></label></labels>'
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     d = pathlib.Path(tmp)
    ...     for split in ("train", "test"):
    ...         _ = (d / f"toy-{split}.arff").write_text(arff)
    ...     _ = (d / "toy.xml").write_text(xml)
    ...     train, test = load_mulan("toy", d, split="both")
    >>> type(train).__name__
    'MultiTaskData'
    """
    if split not in ("train", "test", "both"):
        raise ValueError(f"split must be 'train', 'test' or 'both', got {split!r}")
    if name not in PUBLISHED:
        if download:
            raise ValueError(
                f"download=True, but Mulan dataset {name!r} is not registered, so it cannot "
                f"be downloaded; registered: {sorted(MULAN_N_LABELS)}"
            )
        download = False
    if n_labels is None:
        n_labels = MULAN_N_LABELS.get(name)
    splits = ("train", "test") if split == "both" else (split,)
    arff_names = [f"{name}-{s}.arff" for s in splits]
    arffs = dataset_paths(name, arff_names, path, data_home, download, timeout)
    xml: Path | None
    try:
        (xml,) = dataset_paths(name, [f"{name}.xml"], arffs[0].parent, None, download, timeout)
    except (FileNotFoundError, DatasetDownloadError):
        xml = None  # fall back to the last n_labels attributes
    parts = load_mulan_files(arffs, xml, n_labels=n_labels)
    return (parts[0], parts[1]) if split == "both" else parts[0]
