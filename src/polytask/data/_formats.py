"""Readers for the published formats of the bundled datasets: MAT v5, CSV, ARFF, Mulan XML.

Every reader accepts a plain file or its gzip-compressed copy (detected by the gzip
magic bytes or a ``.gz`` suffix) and turns any parse failure into one ``ValueError``
that names the file and the format expected, chained to the underlying error.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from polytask._typing import FloatArray

_GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """Return the content of ``path``, decompressed when it is a gzip file.

    Raises
    ------
    ValueError
        If the file claims to be gzip (suffix or magic bytes) but cannot be decompressed.
    """
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC and path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{path} is not a valid gzip file (truncated or corrupt): {err}") from err


def read_text(path: Path) -> str:
    """Return the text of ``path`` (UTF-8, falling back to Latin-1), gunzipped if needed."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_mat_cells(path: Path, names: tuple[str, ...]) -> dict[str, list[np.ndarray]]:
    """Read MATLAB cell arrays (MAT v5) named ``names`` as lists of numeric arrays.

    Parameters
    ----------
    path : pathlib.Path
        The ``.mat`` (or ``.mat.gz``) file.
    names : tuple of str
        Variables that must be present, each a cell array of numeric matrices.

    Returns
    -------
    dict of str to list of numpy.ndarray
        For each name, the cells in MATLAB linear order, as 2-D arrays.

    Raises
    ------
    ValueError
        If the file is not a readable MAT file, a variable is missing, or a variable is
        not a cell array of numeric matrices.
    """
    data = read_bytes(path)
    try:
        content = scipy.io.loadmat(io.BytesIO(data))
    except Exception as err:  # scipy raises many types on corrupt input
        raise ValueError(f"{path} is not a readable MATLAB (v5) .mat file: {err}") from err
    out: dict[str, list[np.ndarray]] = {}
    for name in names:
        if name not in content:
            found = sorted(k for k in content if not k.startswith("__"))
            raise ValueError(
                f"{path}: expected MATLAB cell arrays {list(names)}, but variable {name!r} is "
                f"missing (found {found})"
            )
        cells = content[name]
        if not isinstance(cells, np.ndarray) or cells.dtype != object:
            raise ValueError(f"{path}: variable {name!r} must be a cell array, got {cells.dtype}")
        items = []
        for i, cell in enumerate(cells.ravel(order="F")):
            arr = np.asarray(cell)
            if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
                raise ValueError(
                    f"{path}: cell {i + 1} of {name!r} must be a numeric matrix, "
                    f"got dtype {arr.dtype} with shape {arr.shape}"
                )
            items.append(arr)
        out[name] = items
    return out


def read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Return the header and the data rows of a comma-separated file.

    Raises
    ------
    ValueError
        If the file is empty or a row's length differs from the header's.
    """
    text = read_text(path)
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as err:
        raise ValueError(f"{path} is not a valid CSV file: {err}") from err
    rows = [row for row in rows if row]
    if not rows:
        raise ValueError(f"{path} is empty; expected a CSV file with a header row")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    for lineno, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(
                f"{path}, row {lineno}: expected {len(header)} comma-separated fields as in the "
                f"header, got {len(row)} (is the file truncated or not a CSV?)"
            )
    return header, body


@dataclass(frozen=True, eq=False)
class ArffTable:
    """An ARFF relation read into a float matrix.

    Numeric attributes keep their value. A nominal attribute whose declared values
    are all numbers (Mulan's ``{0,1}`` labels) keeps the number; other nominal values
    become their 0-based index in the declaration. ``?`` is NaN.
    """

    relation: str
    names: tuple[str, ...]
    data: FloatArray  # (n_rows, n_attributes)


_ATTR = re.compile(r"""@attribute\s+('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)\s+(.+)$""", re.I)


def _unquote(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1].replace("\\" + token[0], token[0])
    return token


def _split_values(text: str) -> list[str]:
    if "'" not in text and '"' not in text:
        return [v.strip() for v in text.split(",")]
    quote = "'" if "'" in text else '"'
    return [_unquote(v) for v in next(csv.reader([text], quotechar=quote, skipinitialspace=True))]


def _attribute_codec(path: Path, name: str, kind: str) -> dict[str, float] | None:
    """``None`` for a numeric attribute, else a map from nominal value to float."""
    lowered = kind.strip().lower()
    if lowered in ("numeric", "real", "integer"):
        return None
    if kind.strip().startswith("{") and kind.strip().endswith("}"):
        values = _split_values(kind.strip()[1:-1])
        try:
            return {v: float(v) for v in values}
        except ValueError:
            return {v: float(i) for i, v in enumerate(values)}
    raise ValueError(
        f"{path}: attribute {name!r} has type {kind.strip()!r}; only numeric and nominal "
        f"ARFF attributes are supported"
    )


def _parse_value(value: str, codec: dict[str, float] | None) -> float:
    if value == "?":
        return np.nan
    if codec is None:
        return float(value)
    return codec[value]


def read_arff(path: Path) -> ArffTable:
    """Read a dense or sparse ARFF file with numeric and nominal attributes.

    Parameters
    ----------
    path : pathlib.Path
        ``.arff`` or ``.arff.gz`` file.

    Returns
    -------
    ArffTable
        Attribute names and an ``(n_rows, n_attributes)`` float matrix.

    Raises
    ------
    ValueError
        If the header or a data row is malformed, or an attribute type is unsupported.

    References
    ----------
    Weka's ARFF format description (dense ``a,b,c`` rows and sparse ``{i v, ...}`` rows,
    where an omitted value is 0, i.e. the first declared value of a nominal attribute).
    """
    lines = read_text(path).splitlines()
    relation, names, codecs = "", [], []
    start = None
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("%"):
            continue
        keyword = stripped.split(None, 1)[0].lower()
        if keyword == "@relation":
            relation = _unquote(stripped[len("@relation") :])
        elif keyword == "@attribute":
            match = _ATTR.match(stripped)
            if match is None:
                raise ValueError(f"{path}, line {lineno}: malformed ARFF attribute {stripped!r}")
            name = _unquote(match.group(1))
            names.append(name)
            codecs.append(_attribute_codec(path, name, match.group(2)))
        elif keyword == "@data":
            start = lineno
            break
        else:
            raise ValueError(
                f"{path}, line {lineno}: expected an ARFF header line, got "
                f"{stripped[:60]!r} (is this an ARFF file?)"
            )
    if start is None or not names:
        raise ValueError(f"{path} is not an ARFF file: no @attribute/@data header found")
    body = [(n, ln.strip()) for n, ln in enumerate(lines[start:], start=start + 1)]
    body = [(n, ln) for n, ln in body if ln and not ln.startswith("%")]
    data = _fast_dense([ln for _, ln in body], codecs)
    if data is None:
        data = _slow_rows(path, body, codecs)
    return ArffTable(relation=relation, names=tuple(names), data=data)


def _fast_dense(body: list[str], codecs: list[dict[str, float] | None]) -> FloatArray | None:
    """Parse plain numeric dense rows with NumPy's C reader; ``None`` when it does not apply.

    Applies when no row is sparse or quoted or has a ``?``, and every nominal attribute
    declares numbers. Any doubt (a parse failure, a value outside a nominal declaration)
    returns ``None`` so that the row-by-row reader reports the precise error.
    """
    text = "\n".join(body)
    if not body or any(ch in text for ch in "{?'\""):
        return None
    for codec in codecs:
        if codec is not None and any(not _is_number(k) or float(k) != v for k, v in codec.items()):
            return None
    try:
        data = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        return None
    if data.shape != (len(body), len(codecs)):
        return None
    for j, codec in enumerate(codecs):
        if codec is not None and not np.isin(data[:, j], list(codec.values())).all():
            return None
    return data


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _slow_rows(
    path: Path, body: list[tuple[int, str]], codecs: list[dict[str, float] | None]
) -> FloatArray:
    """Parse data rows one by one (dense or sparse), reporting the first bad line."""
    n_cols = len(codecs)
    zero_row = np.array([0.0 if c is None else next(iter(c.values())) for c in codecs])
    rows: list[np.ndarray] = []
    for lineno, line in body:
        try:
            if line.startswith("{"):
                row = zero_row.copy()
                for item in _split_values(line.strip("{}")):
                    if item:
                        index_text, value = item.split(None, 1)
                        index = int(index_text)
                        row[index] = _parse_value(_unquote(value), codecs[index])
            else:
                values = _split_values(line)
                if len(values) != n_cols:
                    raise ValueError(f"expected {n_cols} values, got {len(values)}")
                row = np.array([_parse_value(v, c) for v, c in zip(values, codecs, strict=True)])
        except (ValueError, KeyError, IndexError) as err:
            raise ValueError(f"{path}, line {lineno}: malformed ARFF data row ({err!r})") from err
        rows.append(row)
    return np.vstack(rows) if rows else np.empty((0, n_cols))


def read_mulan_labels(path: Path) -> tuple[str, ...]:
    """Return the label names listed in a Mulan label-header ``.xml`` file, in order.

    Nested (hierarchical) labels are listed depth-first.

    Raises
    ------
    ValueError
        If the file is not XML or lists no label.
    """
    try:
        root = ET.fromstring(read_bytes(path))
    except ET.ParseError as err:
        raise ValueError(f"{path} is not a valid Mulan label XML file: {err}") from err
    labels = tuple(
        el.attrib["name"]
        for el in root.iter()
        if el.tag.rsplit("}", 1)[-1] == "label" and "name" in el.attrib
    )
    if not labels:
        raise ValueError(f"{path}: no <label name=...> element found in the Mulan XML file")
    return labels
