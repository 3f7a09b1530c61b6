"""Mulan multi-target regression sets (ARFF): one regression task per target attribute."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from polytask.data._catalog import MTR_N_TARGETS, PUBLISHED, dataset_paths
from polytask.data._containers import MultiTaskData
from polytask.data._formats import _ATTR, ArffTable, _split_values, _unquote, read_arff, read_text

PathArg = str | os.PathLike[str]
Impute = Literal["mean", "drop"] | None


def _text_levels(file: Path) -> dict[str, list[str]]:
    """Nominal attributes whose declared values are not all numbers, with their values.

    :func:`read_arff` stores such a value as its 0-based index in the declaration.
    """
    levels: dict[str, list[str]] = {}
    for line in read_text(file).splitlines():
        stripped = line.strip()
        if stripped.lower().startswith("@data"):
            break
        match = _ATTR.match(stripped) if stripped.lower().startswith("@attribute") else None
        if match is None or not match.group(2).strip().startswith("{"):
            continue
        values = _split_values(match.group(2).strip()[1:-1])
        try:
            [float(v) for v in values]
        except ValueError:
            levels[_unquote(match.group(1))] = values
    return levels


def _features(
    table: ArffTable, n_features: int, levels: dict[str, list[str]]
) -> tuple[NDArray[np.float64], list[str]]:
    """Feature matrix with the nominal attributes in ``levels`` one-hot encoded."""
    data = np.asarray(table.data, dtype=np.float64)
    blocks: list[NDArray[np.float64]] = []
    names: list[str] = []
    for j, name in enumerate(table.names[:n_features]):
        column = data[:, j]
        if name not in levels:
            blocks.append(column[:, None])
            names.append(name)
            continue
        one_hot = (column[:, None] == np.arange(len(levels[name]))[None, :]).astype(float)
        one_hot[np.isnan(column)] = np.nan
        blocks.append(one_hot)
        names += [f"{name}={level}" for level in levels[name]]
    X = np.hstack(blocks) if blocks else np.empty((data.shape[0], 0))
    return X, names


def _impute(
    X: NDArray[np.float64], Y: NDArray[np.float64], file: Path, impute: Impute, names: list[str]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    missing = np.isnan(X)
    if not missing.any():
        return X, Y
    count, rows = int(missing.sum()), int(missing.any(axis=1).sum())
    if impute is None:
        raise ValueError(
            f"{file} has {count} missing feature values ('?') in {rows} rows; pass "
            f"impute='mean' (column means) or impute='drop' (drop those rows)"
        )
    if impute == "drop":
        keep = ~missing.any(axis=1)
        if not keep.any():
            raise ValueError(
                f"{file}: every row has a missing feature value ({count} in all), so "
                f"impute='drop' leaves no sample; use impute='mean'"
            )
        return X[keep], Y[keep]
    empty = np.flatnonzero(missing.all(axis=0))
    if empty.size:
        raise ValueError(
            f"{file}: feature {names[int(empty[0])]!r} has no observed value, so "
            f"impute='mean' cannot fill it"
        )
    filled = np.where(missing, np.nanmean(X, axis=0), X)
    return filled, Y


def load_mtr(
    name: str,
    path: PathArg | None = None,
    *,
    impute: Impute = "mean",
    nominal: Literal["onehot", "codes"] = "onehot",
    n_targets: int | None = None,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> MultiTaskData:
    """Load a Mulan multi-target regression set: one regression task per target.

    The file is ``<name>.arff`` (plain or ``.gz``); its targets are the last
    ``n_targets`` attributes (registered sets: :data:`MTR_N_TARGETS`, e.g. ``enb`` ends
    with ``Y1, Y2``) and every other attribute is a shared feature. Missing values
    (``?``) occur only in ``osales`` (10,012 feature cells) and ``scpf`` (9,255):

    * a missing **target** is a missing label (NaN in ``Y``), masked by every model;
    * missing **features** must be resolved, because :class:`MultiTaskData` holds finite
      features only: ``impute="mean"`` (default) replaces them with the column mean of
      the observed rows of the file (computed on the whole file, hence a mild leak
      under cross-validation); ``impute="drop"`` drops the rows concerned (every row of
      ``osales`` has one, so it fails there); ``impute=None`` raises an error that
      names the file and the count.

    Nominal features with text values (``sf1``, ``sf2``) are one-hot encoded by
    default; nominal features declared with numbers (``{1,2,3}``) keep their number.

    Parameters
    ----------
    name : str
        Set name: ``andro``, ``atp1d``, ``atp7d``, ``edm``, ``enb``, ``jura``, ``oes10``,
        ``oes97``, ``osales``, ``scpf``, ``sf1``, ``sf2``, ``slump``, ``wq``; any other
        name works for a local file when ``n_targets`` is given.
    path : str or path-like, optional
        The ARFF file or its folder. Default: ``<data_home>/mtr_mulan/``.
    impute : {"mean", "drop", None}, default="mean"
        What to do with missing feature values (see above).
    nominal : {"onehot", "codes"}, default="onehot"
        Encoding of text-valued nominal features: one 0/1 column per declared value
        (named ``"attr=value"``), or the value's 0-based index in the declaration.
    n_targets : int, optional
        Number of trailing target attributes; default: the registered count.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    MultiTaskData
        Shared design ``X`` of shape ``(n_samples, n_features)`` and targets ``Y`` of
        shape ``(n_samples, n_targets)``, tasks named after the target attributes, kind
        ``"regression"``.

    Raises
    ------
    ValueError
        If ``impute``, ``nominal`` or ``n_targets`` is invalid, the file is not a valid
        ARFF, a target is a text-valued nominal attribute, or missing features cannot be
        resolved as asked.
    FileNotFoundError
        If the file is absent and cannot be downloaded.
    DatasetDownloadError
        If the download fails or its checksum does not match.

    References
    ----------
    Spyromitros-Xioufis, E., Tsoumakas, G., Groves, W. & Vlahavas, I. (2016).
    Multi-target regression via input space expansion: treating targets as inputs.
    Machine Learning 104(1), 55-98.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> arff = ("@relation r\\n@attribute x1 numeric\\n@attribute x2 numeric\\n"
    ...         "@attribute Y1 numeric\\n@attribute Y2 numeric\\n@data\\n"
    ...         "1,?,10,20\\n3,4,?,21\\n")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp) / "toy.arff"
    ...     _ = f.write_text(arff)
    ...     data = load_mtr("toy", f, n_targets=2)
    >>> data.task_names, data.feature_matrix().tolist()
    (('Y1', 'Y2'), [[1.0, 4.0], [3.0, 4.0]])
    >>> data.task_sizes
    {'Y1': 1, 'Y2': 2}
    """
    if impute not in ("mean", "drop", None):
        raise ValueError(f"impute must be 'mean', 'drop' or None, got {impute!r}")
    if nominal not in ("onehot", "codes"):
        raise ValueError(f"nominal must be 'onehot' or 'codes', got {nominal!r}")
    if name not in PUBLISHED or name not in MTR_N_TARGETS:
        if download:
            raise ValueError(
                f"download=True, but multi-target set {name!r} is not registered, so it "
                f"cannot be downloaded; registered: {sorted(MTR_N_TARGETS)}"
            )
        download = False
    k = MTR_N_TARGETS.get(name) if n_targets is None else n_targets
    if k is None:
        raise ValueError(
            f"n_targets is required for the unregistered multi-target set {name!r} (the "
            f"targets are its last n_targets attributes)"
        )
    (file,) = dataset_paths(name, [f"{name}.arff"], path, data_home, download, timeout)
    table = read_arff(file)
    n_attrs = len(table.names)
    if isinstance(k, bool) or not isinstance(k, int) or not 0 < k < n_attrs:
        raise ValueError(
            f"n_targets must be an integer in [1, {n_attrs - 1}] for {file} ({n_attrs} "
            f"attributes), got {k!r}"
        )
    targets = list(table.names[-k:])
    levels = _text_levels(file)
    text_targets = sorted(set(targets) & set(levels))
    if text_targets:
        raise ValueError(
            f"{file}: targets {text_targets} are nominal with text values; expected "
            f"numeric targets as the last {k} attributes of a multi-target ARFF file"
        )
    X, names = _features(table, n_attrs - k, levels if nominal == "onehot" else {})
    Y = np.asarray(table.data[:, n_attrs - k :], dtype=np.float64)
    X, Y = _impute(X, Y, file, impute, names)
    return MultiTaskData(X, Y, task_names=targets, kinds="regression", feature_names=names)
