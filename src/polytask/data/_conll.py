"""CoNLL-2000 chunking: tagged sentences (POS + chunk per token), vocabularies, chunk F1.

The two tasks share the tokens: part-of-speech tagging (token accuracy) and chunking,
scored by :func:`polytask.metrics.chunk_f1`, the chunk-level F1 of ``conlleval``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from polytask.data._catalog import PUBLISHED, dataset_paths
from polytask.data._formats import read_text

PathArg = str | os.PathLike[str]
Sentences = Sequence[Sequence[str]]


@dataclass(frozen=True, eq=False)
class TaggedCorpus:
    """Sentences whose tokens carry a part-of-speech tag and a chunk tag.

    Parameters
    ----------
    sentences : list of list of str
        Tokens of each sentence.
    pos : list of list of str
        Part-of-speech tag of each token (same lengths as ``sentences``).
    chunks : list of list of str
        IOB chunk tag of each token (``B-NP``, ``I-NP``, ``O`` …).

    Raises
    ------
    ValueError
        If the three lists disagree in the number of sentences or of tokens.

    Examples
    --------
    >>> corpus = TaggedCorpus([["He", "ran"]], [["PRP", "VBD"]], [["B-NP", "B-VP"]])
    >>> corpus.n_sentences, corpus.n_tokens
    (1, 2)
    """

    sentences: list[list[str]]
    pos: list[list[str]]
    chunks: list[list[str]]

    def __post_init__(self) -> None:
        if not len(self.sentences) == len(self.pos) == len(self.chunks):
            raise ValueError(
                f"sentences, pos and chunks must hold the same number of sentences, got "
                f"{len(self.sentences)}, {len(self.pos)} and {len(self.chunks)}"
            )
        for i, (words, tags, chunk) in enumerate(
            zip(self.sentences, self.pos, self.chunks, strict=True)
        ):
            if not len(words) == len(tags) == len(chunk):
                raise ValueError(
                    f"sentence {i}: {len(words)} tokens but {len(tags)} POS tags and "
                    f"{len(chunk)} chunk tags"
                )

    @property
    def n_sentences(self) -> int:
        """Number of sentences."""
        return len(self.sentences)

    @property
    def n_tokens(self) -> int:
        """Number of tokens over all sentences."""
        return sum(len(s) for s in self.sentences)


def read_conll(path: PathArg) -> TaggedCorpus:
    """Read a CoNLL-2000 file: one ``word POS chunk`` line per token, blank between sentences.

    Parameters
    ----------
    path : str or path-like
        Plain or gzip-compressed text file.

    Returns
    -------
    TaggedCorpus

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If a line does not have exactly three space-separated fields, or the file is a
        corrupt gzip.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp) / "train.txt"
    ...     _ = f.write_text("He PRP B-NP\\nran VBD B-VP\\n\\nOK UH B-INTJ\\n")
    ...     corpus = read_conll(f)
    >>> corpus.sentences, corpus.chunks[1]
    ([['He', 'ran'], ['OK']], ['B-INTJ'])
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"CoNLL file {file} not found")
    columns: tuple[list[list[str]], ...] = ([], [], [])  # words, POS tags, chunk tags
    current: tuple[list[str], ...] = ([], [], [])
    for lineno, line in enumerate(read_text(file).splitlines(), start=1):
        fields = line.split()
        if not fields:
            if current[0]:
                for column, values in zip(columns, current, strict=True):
                    column.append(values)
                current = ([], [], [])
            continue
        if len(fields) != 3:
            raise ValueError(
                f"{file}, line {lineno}: expected 3 space-separated fields 'word POS chunk' "
                f"(CoNLL-2000 format, a blank line between sentences), got {len(fields)}: "
                f"{line[:60]!r}"
            )
        for store, value in zip(current, fields, strict=True):
            store.append(value)
    if current[0]:
        for column, values in zip(columns, current, strict=True):
            column.append(values)
    return TaggedCorpus(*columns)


_Featurized = TypeVar("_Featurized")


@overload
def load_conll2000(
    path: PathArg | None = None,
    split: Literal["train", "test"] = "train",
    *,
    featurize: None = None,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> TaggedCorpus: ...
@overload
def load_conll2000(
    path: PathArg | None,
    split: Literal["both"],
    *,
    featurize: None = None,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> tuple[TaggedCorpus, TaggedCorpus]: ...
@overload
def load_conll2000(
    path: PathArg | None = None,
    *,
    split: Literal["both"],
    featurize: None = None,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> tuple[TaggedCorpus, TaggedCorpus]: ...
@overload
def load_conll2000(
    path: PathArg | None = None,
    split: Literal["train", "test", "both"] = "train",
    *,
    featurize: Callable[..., _Featurized],
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> _Featurized: ...
def load_conll2000(
    path: PathArg | None = None,
    split: Literal["train", "test", "both"] = "train",
    *,
    featurize: Callable[..., Any] | None = None,
    data_home: PathArg | None = None,
    download: bool | None = None,
    timeout: float = 60.0,
) -> Any:
    """Load the CoNLL-2000 chunking corpus (WSJ text, POS and chunk tags per token).

    Train: 8,936 sentences / 211,727 tokens (WSJ sections 15-18); test: 2,012 /
    47,377 (section 20). 44 POS tags (output of the Brill tagger) and IOB chunk tags
    over 11 chunk types (NP, VP, PP, ADVP, ADJP, SBAR, PRT, CONJP, INTJ, LST, UCP).

    Parameters
    ----------
    path : str or path-like, optional
        ``train.txt``/``test.txt`` (plain or ``.gz``) or their folder. Default:
        ``<data_home>/conll2000/``.
    split : {"train", "test", "both"}, default="train"
        Which published split to read; ``"both"`` reads ``(train, test)``.
    featurize : callable, optional
        Turns the corpora into model inputs, e.g. the ``conll_window`` featuriser
        (:func:`polytask.data.conll_windows` returning ``(train_data, test_data)``):
        called as ``featurize(train)`` for ``split="train"`` and ``featurize(train,
        test)`` for ``split="both"``, and its result returned.  The vocabulary and tag
        sets come from the training part, so ``split="test"`` cannot be featurised.
    data_home : str or path-like, optional
        Data home (see :func:`get_data_home`); used when ``path`` is None.
    download : bool or None, default=None
        ``None``: download if absent; ``True``: download again; ``False``: never.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    TaggedCorpus, or tuple of TaggedCorpus, or what ``featurize`` returns
        One corpus; ``(train, test)`` for ``split="both"``; ``featurize``'s result
        when given.

    Raises
    ------
    ValueError
        If ``split`` is unknown, ``split="test"`` comes with a featuriser, or the file
        is not in the CoNLL-2000 format.
    TypeError
        If ``featurize`` is not callable.
    FileNotFoundError
        If the file is absent and cannot be downloaded.
    DatasetDownloadError
        If the download fails or its checksum does not match.

    References
    ----------
    Tjong Kim Sang, E. F. & Buchholz, S. (2000). Introduction to the CoNLL-2000 shared
    task: chunking. CoNLL 2000, 127-132.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (pathlib.Path(tmp) / "test.txt").write_text("Hi UH B-INTJ\\n. . O\\n\\n")
    ...     corpus = load_conll2000(tmp, split="test")
    >>> corpus.pos
    [['UH', '.']]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for part in ("train", "test"):
    ...         _ = (pathlib.Path(tmp) / f"{part}.txt").write_text("Hi UH B-INTJ\\n")
    ...     sizes = load_conll2000(tmp, split="both",
    ...                            featurize=lambda tr, te: (tr.n_tokens, te.n_tokens))
    >>> sizes
    (1, 1)
    """
    if split not in ("train", "test", "both"):
        raise ValueError(f"split must be 'train' or 'test' (or 'both' for the pair), got "
                         f"{split!r}")
    if featurize is not None and not callable(featurize):
        raise TypeError(f"featurize must be callable (e.g. a featuriser of tagged sentences), "
                        f"got {type(featurize).__name__}")
    if featurize is not None and split == "test":
        raise ValueError("split='test' cannot be featurised on its own: the vocabulary and tag "
                         "sets come from the training part; use split='both' (featurize(train, "
                         "test)) or split='train'")
    parts = ("train", "test") if split == "both" else (split,)
    files = dataset_paths("conll2000", [f"{p}.txt" for p in parts], path, data_home, download,
                          timeout)
    try:
        corpora = [read_conll(file) for file in files]
    except ValueError as err:
        source = PUBLISHED["conll2000"].source
        raise ValueError(f"{err}; the set can be obtained from {source}") from err
    if featurize is not None:
        return featurize(*corpora)
    return (corpora[0], corpora[1]) if split == "both" else corpora[0]


def build_vocab(
    sequences: Sentences, *, min_count: int = 1, specials: Sequence[str] = ("<pad>", "<unk>")
) -> dict[str, int]:
    """Map each distinct token to an integer id, the ``specials`` first.

    Parameters
    ----------
    sequences : sequence of sequence of str
        E.g. :attr:`TaggedCorpus.sentences` or :attr:`TaggedCorpus.pos`.
    min_count : int, default=1
        Tokens seen fewer times are left out (they encode as ``"<unk>"``).
    specials : sequence of str, default=("<pad>", "<unk>")
        Reserved entries, ids ``0, 1, …`` in this order (pass ``("<pad>",)`` for a tag
        set, which has no unknown tag).

    Returns
    -------
    dict of str to int
        Specials, then tokens by decreasing frequency (ties in alphabetical order).

    Raises
    ------
    ValueError
        If ``min_count`` < 1 or ``specials`` repeats an entry.

    Examples
    --------
    >>> build_vocab([["a", "b", "a"], ["c", "a", "b"]])
    {'<pad>': 0, '<unk>': 1, 'a': 2, 'b': 3, 'c': 4}
    """
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    if len(set(specials)) != len(specials):
        raise ValueError(f"specials must be distinct, got {list(specials)}")
    counts = Counter(token for seq in sequences for token in seq)
    vocab = {token: i for i, token in enumerate(specials)}
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    for token in kept:
        vocab.setdefault(token, len(vocab))
    return vocab


def encode(
    sequences: Sentences, vocab: Mapping[str, int], *, unk: str = "<unk>"
) -> list[NDArray[np.int64]]:
    """Turn each sequence of tokens into an array of ids.

    Parameters
    ----------
    sequences : sequence of sequence of str
        Tokens (or tags) per sentence.
    vocab : mapping of str to int
        From :func:`build_vocab`.
    unk : str, default="<unk>"
        Entry used for tokens absent from ``vocab``.

    Returns
    -------
    list of ndarray of int64
        One array per sequence, of its length.

    Raises
    ------
    ValueError
        If a token is not in ``vocab`` and neither is ``unk``.

    Examples
    --------
    >>> vocab = build_vocab([["a", "b", "a"]])
    >>> [ids.tolist() for ids in encode([["a", "z"], ["b"]], vocab)]
    [[2, 1], [3]]
    """
    fallback = vocab.get(unk)
    out = []
    for i, seq in enumerate(sequences):
        ids = []
        for token in seq:
            index = vocab.get(token, fallback)
            if index is None:
                raise ValueError(
                    f"sequence {i}: token {token!r} is not in vocab and neither is unk={unk!r}"
                )
            ids.append(index)
        out.append(np.asarray(ids, dtype=np.int64))
    return out
