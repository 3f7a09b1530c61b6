"""Where dataset files live, and fetching them from their public home with a checksum.

A dataset's files sit in ``<data_home>/<dataset name>/``. The data home is the
``data_home`` argument, else the environment variable ``POLYTASK_DATA``, else
``~/.polytask/data``. Every file may be stored as published (``school.mat``) or
gzip-compressed beside it (``school.mat.gz``); the readers accept both.

A download streams the published bytes into a temporary file in the target folder,
checks their SHA-256 and only then renames the temporary file into place, so that an
interrupted or corrupted transfer never leaves a partial file behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

_ENV_VAR = "POLYTASK_DATA"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset, as published at its public home.

    Parameters
    ----------
    filename : str
        Name of the file inside the dataset's folder, e.g. ``"school.mat"``.
    url : str
        Where the file is published (``https://`` or, in tests, ``file://``).
    sha256 : str
        Hex SHA-256 of the bytes served at ``url``, i.e. of the uncompressed file.
        A local ``<filename>.gz`` copy matches it once decompressed.

    Examples
    --------
    >>> f = RemoteFile("a.csv", "https://example.org/a.csv", "0" * 64)
    >>> f.filename
    'a.csv'
    """

    filename: str
    url: str
    sha256: str


class DatasetDownloadError(OSError):
    """A dataset file could not be fetched, or its checksum did not match.

    Examples
    --------
    >>> issubclass(DatasetDownloadError, OSError)
    True
    """


def get_data_home(data_home: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder that holds polytask's datasets (it is not created).

    Parameters
    ----------
    data_home : str or path-like, optional
        Explicit folder. When ``None``, the environment variable ``POLYTASK_DATA`` is
        used if set and non-empty, else ``~/.polytask/data``.

    Returns
    -------
    pathlib.Path
        The data home, with ``~`` expanded.

    Examples
    --------
    >>> get_data_home("/tmp/my-data").as_posix()
    '/tmp/my-data'
    """
    if data_home is not None:
        return Path(data_home).expanduser()
    from_env = os.environ.get(_ENV_VAR, "")
    if from_env:
        return Path(from_env).expanduser()
    return Path("~/.polytask/data").expanduser()


def local_copy(folder: Path, filename: str) -> Path | None:
    """Return ``folder/filename`` or ``folder/filename.gz``, whichever exists first."""
    for candidate in (folder / filename, folder / (filename + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def content_sha256(path: Path) -> str:
    """SHA-256 of a file's content, hashing the decompressed bytes of a gzip file.

    Raises
    ------
    ValueError
        If a gzip file is truncated or corrupt.
    """
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
    try:
        with gzip.open(path, "rb") if is_gzip else path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                digest.update(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(f"{path} is not a valid gzip file (truncated or corrupt): {err}") from err
    return digest.hexdigest()


def _copy_hashing(source: BinaryIO, target: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: source.read(_CHUNK), b""):
        digest.update(chunk)
        target.write(chunk)
    return digest.hexdigest()


def fetch_file(remote: RemoteFile, folder: Path, *, source: str, timeout: float = 60.0) -> Path:
    """Download ``remote`` into ``folder``, verify its SHA-256, then move it into place.

    Parameters
    ----------
    remote : RemoteFile
        What to fetch and the checksum it must have.
    folder : pathlib.Path
        Destination folder; created if needed.
    source : str
        Human description of where the dataset can be obtained, used in error messages.
    timeout : float, default=60.0
        Seconds to wait for the server before giving up.

    Returns
    -------
    pathlib.Path
        ``folder / remote.filename``.

    Raises
    ------
    DatasetDownloadError
        If the transfer fails or the checksum does not match. No partial or temporary
        file is left behind.
    """
    target = folder / remote.filename
    hint = (
        f"Expected sha256 {remote.sha256}. Obtain the file from {source} and place it "
        f"by hand at {target} (optionally gzip-compressed as {target.name}.gz)."
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetDownloadError(
            f"cannot create folder {folder} for {remote.filename}: {err}. {hint}"
        ) from err
    handle, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{remote.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        try:
            with (
                os.fdopen(handle, "wb") as out,
                urllib.request.urlopen(remote.url, timeout=timeout) as response,
            ):
                got = _copy_hashing(response, out)
        except (OSError, ValueError) as err:  # URLError and timeouts are OSError
            raise DatasetDownloadError(
                f"could not download {remote.filename} from {remote.url}: {err}. {hint}"
            ) from err
        if got != remote.sha256:
            raise DatasetDownloadError(
                f"checksum mismatch for {remote.filename} downloaded from {remote.url}: "
                f"got sha256 {got}. {hint}"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def ensure_file(
    remote: RemoteFile,
    folder: Path,
    *,
    source: str,
    download: bool | None = None,
    timeout: float = 60.0,
) -> Path:
    """Return the local copy of ``remote`` in ``folder``, downloading it if allowed.

    Parameters
    ----------
    remote : RemoteFile
        The file wanted.
    folder : pathlib.Path
        The dataset's folder.
    source : str
        Where the dataset can be obtained (for error messages).
    download : bool or None, default=None
        ``None``: download only if no local copy (plain or ``.gz``) exists. ``True``:
        always download afresh, replacing the plain local copy. ``False``: never
        download.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    pathlib.Path
        Path of the local file (possibly the ``.gz`` variant).

    Raises
    ------
    FileNotFoundError
        If the file is absent and ``download`` is ``False``.
    DatasetDownloadError
        If a needed download fails.
    """
    mode: Literal["never", "missing", "always"] = (
        "missing" if download is None else "always" if download else "never"
    )
    found = local_copy(folder, remote.filename)
    if mode == "always" or (found is None and mode == "missing"):
        return fetch_file(remote, folder, source=source, timeout=timeout)
    if found is None:
        raise FileNotFoundError(
            f"dataset file {folder / remote.filename} (or {remote.filename}.gz) not found and "
            f"download=False. Obtain it from {source} (sha256 {remote.sha256}) and place it "
            f"there, or pass download=None to fetch it."
        )
    return found
