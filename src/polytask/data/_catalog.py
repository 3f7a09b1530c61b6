"""Where each named dataset is published (URLs, SHA-256), and finding its local files.

Every ``sha256`` is that of the *content* of a file, i.e. of the uncompressed bytes.
polytask's shared copies are gzip-compressed; each decompresses to exactly these bytes
(the gzip files themselves hash differently, see the comments). Some sets are served
gzip-compressed (a ``url`` ending in ``.gz`` for a ``filename`` without it): those are
saved as ``<filename>.gz`` and checked on their decompressed content, so that any gzip
container of the same data (e.g. Debian's repackaged Fashion-MNIST) passes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from polytask.data._download import (
    DatasetDownloadError,
    RemoteFile,
    content_sha256,
    ensure_file,
    get_data_home,
    local_copy,
)

PathArg = str | os.PathLike[str]


@dataclass(frozen=True)
class Published:
    """The public home of one dataset: its files and a human description of the source.

    ``folder`` is the dataset's folder under the data home (default: its registry name);
    several sets may share one folder (the 14 multi-target sets live in ``mtr_mulan``).
    """

    files: tuple[RemoteFile, ...]
    source: str
    folder: str = ""


_RAW = "https://raw.githubusercontent.com"
_MALSAR_COMMIT = "fb9751594983df020ddc4f7e4a40520ee7c37989"
_CHEMPROP_COMMIT = "b83635bcddaddcdb91d453128edec9f2be0d25cf"
_MULAN_COMMIT = "43f6389095ad71984264db4387a8074b22bc7d4a"

# sha256 of the uncompressed -train.arff, -test.arff and .xml as served by Mulan.
_MULAN_SHA256 = {
    "yeast": (
        "e759dc991ff54694a4ff9c4314f3be0d6fd2b1994a4b563f57e416394c6aebbd",
        "4aaac102bff9669a765bf0b378602e5cc8c3b181048282e2f003117b496d552a",
        "c3056cc26444b5158b1588d1b73bec9c45429e10f0957ad085903423cb81f247",
    ),
    "scene": (
        "b53ba93bdf412de922e3960389bcee24744fa3e872ce610511fc1d750888b64d",
        "ea38d20296b3ff7e220f477a3b802a9bcb2d768881fe6ee163efbc97ea527a42",
        "55d8b247b949ad5c52e5a73d8c6775ec6e5469ce9682465b45b333b68ee4bcc5",
    ),
    "emotions": (
        "bbe704106c79bb8fb99c1d1d2e9bde081d6a2daeb01f100862f11fd91a3c1f98",
        "f13d4b746b7b5c8eb484bd751d6ac463d4560dff998a93516a5c1fe35daf6c8f",
        "dbce8e6ccbbb2fcbfd9e9edbb230d7ed12692c6e13f59fdbc0161fa9b6cf2dc0",
    ),
}

MULAN_N_LABELS: Mapping[str, int] = MappingProxyType({"yeast": 14, "scene": 6, "emotions": 6})
"""Number of label attributes (the last ones) of the registered Mulan sets."""


def _mulan(name: str) -> Published:
    base = f"{_RAW}/tsoumakas/mulan/{_MULAN_COMMIT}/data/multi-label/{name}"
    suffixes = ("-train.arff", "-test.arff", ".xml")
    files = tuple(
        RemoteFile(f"{name}{suffix}", f"{base}/{name}{suffix}", digest)
        for suffix, digest in zip(suffixes, _MULAN_SHA256[name], strict=True)
    )
    source = (
        f"the Mulan repository github.com/tsoumakas/mulan, data/multi-label/{name}/ "
        f"(commit {_MULAN_COMMIT[:10]})"
    )
    return Published(files, source)


_DEEPCHEM = "deepchem/deepchem"
_KERAS_MMOE_COMMIT = "5532ffb3ed6bccf4a0eae9d189fa0d661357425f"
_MNIST_COMMIT = "cffbed29f2a5bd3b662ffe9cea7c07129fdad5d2"
_FASHION_COMMIT = "949006594cc2f804a93b9155849734564c3545ec"

MTR_N_TARGETS: Mapping[str, int] = MappingProxyType(
    {
        "andro": 6,
        "atp1d": 6,
        "atp7d": 6,
        "edm": 2,
        "enb": 2,
        "jura": 3,
        "oes10": 16,
        "oes97": 16,
        "osales": 12,
        "scpf": 3,
        "sf1": 3,
        "sf2": 3,
        "slump": 3,
        "wq": 14,
    }
)
"""Number of targets (the last attributes) of the registered Mulan multi-target sets."""

# sha256 of <name>.arff as served by Mulan (the shared <name>.arff.gz decompress to these).
_MTR_SHA256 = {
    "andro": "08f0e2757b2a7635136ac58ea76c4e801ffeb0a81116b29e6ac169228c8aa132",
    "atp1d": "ed935ba476c4994ba40d6712d590fb389709cceba7cf7dbbb33ef28c84762bb9",
    "atp7d": "77d59efdf4a6329c71c854684de7409d0d61d3bebccd6821ae268c1620c95b2d",
    "edm": "37777374030f592a53cbcf597ae0aa6105238a1c696dd04ccb229be982f6bc5b",
    "enb": "8277d9094ccda6da2cd1c2b79c90ca201fa3695e75aca173ffc43138dcab0071",
    "jura": "78ce7655f49073e3622ef7ba25657b3900a2b279ba3d48cb82e353e56bac3d2a",
    "oes10": "37f9fa429f6f2ece2cdfd08e84649971e61ee0b4e75d66166c082bacf3d36251",
    "oes97": "aee74aa656c709f797f45d817c41996be94c2e924c0f1e7ad315fb7e2f1a9498",
    "osales": "c9c656c7e0131ad1c3f427cea7828f2ed315ec80da6d6f43c05b40b87257efe5",
    "scpf": "f7d3c7b134c0e5ddff56a7900371cb44328f9b7f550203c4a556929203ea81e9",
    "sf1": "8f78e64aca64f7c0c7ba4d9b2f114feb2a6f72e6116e87d7dab94e7cab426d93",
    "sf2": "2c1ac60f3e612b0e0bc9884ffe98a205ce07ca83f3f89c019220fde350396795",
    "slump": "3a9a9eba416b06c7668153b44073a0e165afbfc9e526d53b174e5f97a707ca6c",
    "wq": "4a0906b4a51bf52c986790ddaf261ba51faa3da9cffe823badabd88d38d252fe",
}


def _mtr(name: str) -> Published:
    url = f"{_RAW}/tsoumakas/mulan/{_MULAN_COMMIT}/data/multi-target/{name}.arff"
    source = (
        f"the Mulan repository github.com/tsoumakas/mulan, data/multi-target/{name}.arff "
        f"(commit {_MULAN_COMMIT[:10]})"
    )
    return Published((RemoteFile(f"{name}.arff", url, _MTR_SHA256[name]),), source, "mtr_mulan")


def _idx_files(base: str, names_sha: dict[str, str]) -> tuple[RemoteFile, ...]:
    # IDX files are served gzip-compressed; sha256 of the decompressed content.
    return tuple(RemoteFile(name, f"{base}/{name}.gz", sha) for name, sha in names_sha.items())


_NEW_SETS: dict[str, Published] = {
    "sider": Published(
        # served gzip-compressed (gzip-byte sha256 4cc7ccb2…, PROVENANCE.md)
        (
            RemoteFile(
                "sider.csv",
                f"{_RAW}/{_DEEPCHEM}/fbe3b911a94a6eb8c84c1a9e7ac67a472c49ea80/examples/sider/"
                "sider.csv.gz",
                "71efc6ac4ca82d6545bc512509863281be0f17234afd7adaf71a71899988302e",
            ),
        ),
        "MoleculeNet's SIDER via github.com/deepchem/deepchem, examples/sider/sider.csv.gz "
        "(commit fbe3b911a9)",
    ),
    "clintox": Published(
        (
            RemoteFile(
                "clintox.csv",
                f"{_RAW}/chemprop/chemprop/{_CHEMPROP_COMMIT}/data/clintox.csv",
                "cc561402d058a0d996a9f5e5d02bc20f6652b7003525b32c3598b8da4b24e9b7",
            ),
        ),
        "MoleculeNet's ClinTox via the chemprop repository github.com/chemprop/chemprop, "
        f"data/clintox.csv (commit {_CHEMPROP_COMMIT[:10]})",
    ),
    "toxcast": Published(
        # served gzip-compressed (gzip-byte sha256 56041515…, PROVENANCE.md)
        (
            RemoteFile(
                "toxcast_data.csv",
                f"{_RAW}/{_DEEPCHEM}/7024c026a305ef6804a15f07fb3d81205d243140/examples/toxcast/"
                "processing/toxcast_data.csv.gz",
                "0598b33326818254fcb7ced0e039b8e40ed42a18e9063c27cacc1e43b2df0f7a",
            ),
        ),
        "MoleculeNet's ToxCast via github.com/deepchem/deepchem, "
        "examples/toxcast/processing/toxcast_data.csv.gz (commit 7024c026a3)",
    ),
    "census_income": Published(
        # served gzip-compressed (gzip-byte sha256 5ac4cacd…, PROVENANCE.md)
        (
            RemoteFile(
                "census-income.test",
                f"{_RAW}/drawbridge/keras-mmoe/{_KERAS_MMOE_COMMIT}/data/census-income.test.gz",
                "98402b1ab879573d0a7f38a699a40258080e25e33d3401e7bf9c96d3fa0fab8c",
            ),
        ),
        "the UCI Census-Income (KDD) test file via github.com/drawbridge/keras-mmoe, "
        f"data/census-income.test.gz (commit {_KERAS_MMOE_COMMIT[:10]})",
        "census_income_kdd",
    ),
    "mnist": Published(
        _idx_files(
            f"{_RAW}/pmallari/MNIST/{_MNIST_COMMIT}",
            {
                "t10k-images-idx3-ubyte": (
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
                ),
                "t10k-labels-idx1-ubyte": (
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
                ),
            },
        ),
        "the MNIST test set (LeCun & Cortes) via github.com/pmallari/MNIST "
        f"(commit {_MNIST_COMMIT[:10]}); the training files must be placed by hand",
    ),
    "fashion_mnist": Published(
        _idx_files(
            f"{_RAW}/zalandoresearch/fashion-mnist/{_FASHION_COMMIT}/data/fashion",
            {
                "train-images-idx3-ubyte": (
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
                ),
                "train-labels-idx1-ubyte": (
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
                ),
                "t10k-images-idx3-ubyte": (
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
                ),
                "t10k-labels-idx1-ubyte": (
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
                ),
            },
        ),
        "Fashion-MNIST (Zalando) via github.com/zalandoresearch/fashion-mnist, data/fashion/ "
        f"(commit {_FASHION_COMMIT[:10]})",
    ),
    "conll2000": Published(
        # content sha256 of nltk_data's copy (conll2000.zip), served gzipped by the CoNLL site
        (
            RemoteFile(
                "train.txt",
                "https://www.clips.uantwerpen.be/conll2000/chunking/train.txt.gz",
                "82033cd7a72b209923a98007793e8f9de3abc1c8b79d646c50648eb949b87cea",
            ),
            RemoteFile(
                "test.txt",
                "https://www.clips.uantwerpen.be/conll2000/chunking/test.txt.gz",
                "73b7b1e565fa75a1e22fe52ecdf41b6624d6f59dacb591d44252bf4d692b1628",
            ),
        ),
        "the CoNLL-2000 shared task, www.clips.uantwerpen.be/conll2000/chunking/ (also in "
        "nltk_data, packages/corpora/conll2000.zip)",
    ),
}


PUBLISHED: Mapping[str, Published] = MappingProxyType(
    {
        "school": Published(
            # school.mat as published by MALSAR (44,759 bytes, MAT v5); stored uncompressed.
            (
                RemoteFile(
                    "school.mat",
                    f"{_RAW}/jiayuzhou/MALSAR/{_MALSAR_COMMIT}/data/school.mat",
                    "57fb3238fdd03a9aa17276e2ce18d9bbb5d128c3261e794fe6233b58b6909068",
                ),
            ),
            "the MALSAR repository github.com/jiayuzhou/MALSAR, data/school.mat "
            f"(commit {_MALSAR_COMMIT[:10]}); ILEA exam scores, Goldstein 1991",
        ),
        "tox21": Published(
            # tox21.csv as served (458,635 bytes). The shared tox21.csv.gz has gzip-byte sha256
            # 32445368b224e34d5b98046faa9b77061b7f65738077d11ca56b20c1e3e25022 (PROVENANCE.md)
            # and decompresses to exactly this file.
            (
                RemoteFile(
                    "tox21.csv",
                    f"{_RAW}/chemprop/chemprop/{_CHEMPROP_COMMIT}/data/tox21.csv",
                    "b58cc1f683e78e3c7a1bf7116e9aac0119804018d100f7b8cdb0857941c31aca",
                ),
            ),
            "MoleculeNet's Tox21 via the chemprop repository github.com/chemprop/chemprop, "
            f"data/tox21.csv (commit {_CHEMPROP_COMMIT[:10]})",
        ),
        "yeast": _mulan("yeast"),
        "scene": _mulan("scene"),
        "emotions": _mulan("emotions"),
        **_NEW_SETS,
        **{name: _mtr(name) for name in MTR_N_TARGETS},
    }
)
"""Public home of every registered dataset, keyed by name."""


def dataset_folder(name: str, data_home: PathArg | None = None) -> Path:
    """The folder of dataset ``name`` under the data home (it need not exist).

    Examples
    --------
    >>> dataset_folder("enb", "/data").as_posix(), dataset_folder("school", "/data").as_posix()
    ('/data/mtr_mulan', '/data/school')
    """
    published = PUBLISHED.get(name)
    folder = published.folder if published is not None and published.folder else name
    return get_data_home(data_home) / folder


def _served_gzipped(remote: RemoteFile) -> bool:
    return remote.url.endswith(".gz") and not remote.filename.endswith(".gz")


def fetch_gzipped(remote: RemoteFile, folder: Path, *, source: str, timeout: float) -> Path:
    """Download a gzip-served file to ``folder/<filename>.gz``, checking its content's SHA-256.

    Like :func:`~polytask.data._download.fetch_file` (temporary file, checked, then
    renamed into place; nothing left behind on failure), but ``remote.sha256`` is that of
    the decompressed bytes. A plain ``folder/<filename>`` is removed once the fresh copy
    is in place, so that readers (which prefer the plain file) see the new data.

    Raises
    ------
    DatasetDownloadError
        If the transfer fails, the bytes are not gzip, or the checksum does not match.
    """
    target = folder / (remote.filename + ".gz")
    hint = (
        f"Expected content sha256 {remote.sha256}. Obtain the file from {source} and place it "
        f"by hand at {target} (or uncompressed at {folder / remote.filename})."
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetDownloadError(f"cannot create folder {folder}: {err}. {hint}") from err
    handle, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        try:
            with (
                os.fdopen(handle, "wb") as out,
                urllib.request.urlopen(remote.url, timeout=timeout) as response,
            ):
                shutil.copyfileobj(response, out)
            with tmp.open("rb") as packed:
                if packed.read(2) != b"\x1f\x8b":
                    raise ValueError("the server did not send gzip-compressed bytes")
            got = content_sha256(tmp)
        except (OSError, ValueError) as err:  # URLError, timeouts, not or corrupt gzip
            raise DatasetDownloadError(
                f"could not download {remote.filename} from {remote.url}: {err}. {hint}"
            ) from err
        if got != remote.sha256:
            raise DatasetDownloadError(
                f"checksum mismatch for {remote.filename} downloaded from {remote.url}: "
                f"decompressed content has sha256 {got}. {hint}"
            )
        os.replace(tmp, target)
        (folder / remote.filename).unlink(missing_ok=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _ensure(
    remote: RemoteFile, folder: Path, source: str, download: bool | None, timeout: float
) -> Path:
    fresh = download is True or (download is None and local_copy(folder, remote.filename) is None)
    if fresh and _served_gzipped(remote):
        return fetch_gzipped(remote, folder, source=source, timeout=timeout)
    return ensure_file(remote, folder, source=source, download=download, timeout=timeout)


def dataset_paths(
    name: str,
    filenames: Sequence[str],
    path: PathArg | None,
    data_home: PathArg | None,
    download: bool | None,
    timeout: float,
) -> list[Path]:
    """Local paths of ``filenames`` of dataset ``name``, downloaded first if allowed.

    ``path`` is the file itself (single-file datasets) or the dataset's folder; by default
    the folder is :func:`dataset_folder` (``<data_home>/<name>`` unless registered
    otherwise). Files of an unregistered dataset, or not listed in its :class:`Published`
    entry, must exist locally.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist, or a file is absent and cannot be downloaded.
    ValueError
        If ``path`` is a file but several files are needed.
    DatasetDownloadError
        If a download fails.
    """
    published = PUBLISHED.get(name, Published((), f"its publisher (unregistered {name!r})"))
    if path is not None:
        given = Path(path).expanduser()
        if given.is_file():
            if len(filenames) != 1:
                raise ValueError(
                    f"path {given} is a file, but {name} needs the files {list(filenames)}; "
                    f"pass the folder holding them"
                )
            return [given]
        if not given.is_dir():
            raise FileNotFoundError(
                f"path {given} does not exist; expected the {name} file(s) {list(filenames)} "
                f"or their folder. The data can be obtained from {published.source}"
            )
        folder = given
    else:
        folder = dataset_folder(name, data_home)
    remotes = {f.filename: f for f in published.files}
    paths = []
    for filename in filenames:
        if filename in remotes:
            paths.append(_ensure(remotes[filename], folder, published.source, download, timeout))
            continue
        found = local_copy(folder, filename)
        if found is None:
            why = (
                f"polytask cannot download it (see {published.source})"
                if name in PUBLISHED
                else f"{name} is not a registered dataset"
            )
            raise FileNotFoundError(
                f"{folder / filename} (or {filename}.gz) not found; {why}, so it must be "
                f"present locally"
            )
        paths.append(found)
    return paths
