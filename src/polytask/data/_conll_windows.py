"""CoNLL-2000 as token windows: one row of integer ids per token, POS and chunk tasks.

Every token becomes one row: the ids of the lower-cased words in a window of ``2w + 1``
tokens centred on it, then one capitalisation id per window position.  Both kinds of
id live in one id space, so a single embedding table (the ``embedding`` stem of the
architecture builders) covers every column:

====================================  ===============================================
id                                    meaning
====================================  ===============================================
``0``                                 ``<pad>``: a position outside the sentence (in
                                      word and capitalisation columns alike)
``1``                                 ``<unk>``: a word outside the vocabulary
``2 ... 1 + max_vocab``               the words of the training part, most frequent
                                      first (fewer when the vocabulary is smaller)
``2 + max_vocab + c``, ``c = 0..4``   capitalisation: all-lower, all-upper,
                                      initial-upper, has-digit, other
====================================  ===============================================

so ``n_ids = max_vocab + 2 + 5 = max_vocab + 7`` whatever the corpus, and a
configuration can state it (``max_vocab: 20000`` → ``n_ids: 20007``).

Chunk tags are coded by their structure, so that ids decode to tags without a table:
``O`` is 0, ``B-X`` is ``2k + 1`` and ``I-X`` is ``2k + 2`` where ``k`` is the index of
chunk type ``X`` in :attr:`ConllWindowInfo.chunk_types`.  :func:`chunk_f1_ids` scores
such ids with the chunk-level F1 of ``conlleval`` (both live in :mod:`polytask.metrics`
and are re-exported here).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from polytask.data._conll import TaggedCorpus, build_vocab, encode
from polytask.data._containers import MultiTaskData
from polytask.metrics._sequence import chunk_f1_ids, decode_chunk_ids

PAD_ID = 0
UNK_ID = 1
N_SPECIALS = 2
CAPS_CLASSES: tuple[str, ...] = ("all-lower", "all-upper", "initial-upper", "has-digit",
                                 "other")
"""Capitalisation classes, in id order (offset by ``2 + max_vocab``)."""


def caps_class(word: str) -> int:
    """The capitalisation class of ``word``, an index into :data:`CAPS_CLASSES`.

    The first rule that applies wins: a digit anywhere → has-digit (``"1990s"``,
    ``"A4"``); cased letters all lower → all-lower (``"the"``, ``"'s"``); all upper →
    all-upper (``"IBM"``, ``"U.S."``, ``"I"``); an upper-case first character →
    initial-upper (``"Smith"``, ``"McDonald"``); otherwise other (``","``, ``"eBay"``).

    Parameters
    ----------
    word : str
        A token as written in the corpus.

    Returns
    -------
    int
        0 to 4.

    Examples
    --------
    >>> [caps_class(w) for w in ["the", "IBM", "Smith", "1990s", ","]]
    [0, 1, 2, 3, 4]
    """
    if any(ch.isdigit() for ch in word):
        return 3
    if word.islower():
        return 0
    if word.isupper():
        return 1
    if word[:1].isupper():
        return 2
    return 4


@dataclass(frozen=True, eq=False)
class ConllWindowInfo:
    """What :func:`conll_windows` fixed: the id space, the tag sets, the sentence lengths.

    Attributes
    ----------
    window : int
        ``w``; a row holds ``2w + 1`` word ids then ``2w + 1`` capitalisation ids.
    max_vocab : int
        Word ids available; the capitalisation ids start at ``2 + max_vocab``.
    vocab : mapping of str to int
        Lower-cased training words (and ``<pad>``, ``<unk>``) to their ids.
    pos_tags : tuple of str
        The ``pos`` class ids' tags (training tags, most frequent first).
    chunk_types : tuple of str
        Chunk type ``k`` of the ``chunk`` ids ``2k + 1`` (``B-``) and ``2k + 2``
        (``I-``); the types with an ``I-`` tag in training come last, so the largest
        id appears in the training labels.
    train_lengths, test_lengths : tuple of int
        Tokens per sentence, in row order (``test_lengths`` is empty without a test
        part): the sentence boundaries :func:`chunk_f1_ids` needs.
    n_unseen : dict of str to int
        Per task, the test tokens whose tag the training part cannot produce (an
        unseen POS tag or chunk type); their label is missing (NaN).

    Examples
    --------
    >>> info = ConllWindowInfo(1, 10, {"<pad>": 0, "<unk>": 1}, ("NN",), ("NP",), (2,), (),
    ...                        {"pos": 0, "chunk": 0})
    >>> info.n_ids, info.caps_offset, info.chunk_tags
    (17, 12, ('O', 'B-NP', 'I-NP'))
    """

    window: int
    max_vocab: int
    vocab: Mapping[str, int]
    pos_tags: tuple[str, ...]
    chunk_types: tuple[str, ...]
    train_lengths: tuple[int, ...]
    test_lengths: tuple[int, ...]
    n_unseen: dict[str, int]

    @property
    def n_ids(self) -> int:
        """int: Size of the id space, ``max_vocab + 7`` (the ``n_ids`` of the stem)."""
        return self.max_vocab + N_SPECIALS + len(CAPS_CLASSES)

    @property
    def caps_offset(self) -> int:
        """int: Id of the first capitalisation class, ``2 + max_vocab``."""
        return N_SPECIALS + self.max_vocab

    @property
    def chunk_tags(self) -> tuple[str, ...]:
        """tuple of str: The tag of every ``chunk`` id, ``("O", "B-T0", "I-T0", ...)``."""
        return tuple(decode_chunk_ids(range(2 * len(self.chunk_types) + 1),
                                      self.chunk_types))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """tuple of str: ``word[-w]`` … ``word[+w]``, then ``caps[-w]`` … ``caps[+w]``."""
        offsets = range(-self.window, self.window + 1)
        return tuple(f"{kind}[{o:+d}]" for kind in ("word", "caps") for o in offsets)


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_corpus(corpus: object, name: str) -> TaggedCorpus:
    if not isinstance(corpus, TaggedCorpus):
        raise TypeError(f"{name} must be a TaggedCorpus (from load_conll2000 or read_conll), "
                        f"got {type(corpus).__name__}")
    if corpus.n_tokens == 0:
        raise ValueError(f"{name} holds no token")
    return corpus


def _split_tag(tag: str, where: str) -> tuple[str, str]:
    """``("B" | "I" | "O", type)`` of an IOB chunk tag."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if prefix not in ("B", "I") or not sep or not kind:
        raise ValueError(f"{where}: invalid chunk tag {tag!r}; expected 'O', 'B-<type>' or "
                         "'I-<type>' (IOB tags)")
    return prefix, kind


def _chunk_types(corpus: TaggedCorpus) -> tuple[str, ...]:
    counts: Counter[str] = Counter()
    inside: set[str] = set()
    for i, tags in enumerate(corpus.chunks):
        for tag in tags:
            prefix, kind = _split_tag(tag, f"train, sentence {i}")
            if kind:
                counts[kind] += 1
                if prefix == "I":
                    inside.add(kind)
    return tuple(sorted(counts, key=lambda k: (k in inside, -counts[k], k)))


def _windows(ids: NDArray[np.int64], w: int) -> NDArray[np.int64]:
    """``(L, 2w + 1)``: row ``i`` holds ``ids[i - w .. i + w]``, PAD outside."""
    padded = np.concatenate([np.full(w, PAD_ID), ids, np.full(w, PAD_ID)])
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)


def _rows(corpus: TaggedCorpus, vocab: Mapping[str, int], w: int, offset: int
          ) -> NDArray[np.float64]:
    words = encode([[t.lower() for t in s] for s in corpus.sentences], vocab)
    blocks = []
    for sentence, ids in zip(corpus.sentences, words, strict=True):
        caps = np.array([offset + caps_class(t) for t in sentence], dtype=np.int64)
        blocks.append(np.hstack([_windows(ids, w), _windows(caps, w)]))
    return np.vstack(blocks).astype(np.float64)


def _labels(corpus: TaggedCorpus, part: str, pos: Mapping[str, int],
            types: Sequence[str], max_chunk: int) -> tuple[NDArray[np.float64], dict[str, int]]:
    index = {k: i for i, k in enumerate(types)}
    y_pos, y_chunk = [], []
    for i, (tags, chunks) in enumerate(zip(corpus.pos, corpus.chunks, strict=True)):
        y_pos += [pos.get(t, np.nan) for t in tags]
        for tag in chunks:
            prefix, kind = _split_tag(tag, f"{part}, sentence {i}")
            if not kind:
                y_chunk.append(0.0)
            elif kind in index:
                y_chunk.append(2.0 * index[kind] + (1.0 if prefix == "B" else 2.0))
            else:
                y_chunk.append(np.nan)
    Y = np.column_stack([np.asarray(y_pos, dtype=float), np.asarray(y_chunk, dtype=float)])
    Y[Y[:, 1] > max_chunk, 1] = np.nan  # an I- tag of a type seen only as B- in training
    return Y, {"pos": int(np.isnan(Y[:, 0]).sum()), "chunk": int(np.isnan(Y[:, 1]).sum())}


def conll_windows(
    train: TaggedCorpus,
    test: TaggedCorpus | None = None,
    window: int = 2,
    max_vocab: int = 20000,
    min_count: int = 1,
) -> tuple[MultiTaskData, MultiTaskData | None, ConllWindowInfo]:
    """Turn tagged sentences into token windows of ids with ``pos`` and ``chunk`` labels.

    Every token gives one row of ``2 (2w + 1)`` ids stored as floats: the lower-cased
    word ids of the tokens ``i - w .. i + w`` (``<pad>`` beyond the sentence edges,
    ``<unk>`` for words outside the vocabulary), then their capitalisation ids (see
    the module docstring for the id space; ``n_ids = max_vocab + 7``).  The vocabulary,
    the POS tag set and the chunk types come from ``train`` only.  The tasks are
    ``pos`` (multiclass, POS tag ids) and ``chunk`` (multiclass, IOB tags coded
    ``O = 0``, ``B-X = 2k + 1``, ``I-X = 2k + 2``).  Rows follow the corpus order, so
    the sentence lengths in ``info`` mark the sentence boundaries.

    Parameters
    ----------
    train : TaggedCorpus
        The training sentences (the vocabulary and tag sets are built from them).
    test : TaggedCorpus or None, default=None
        Sentences encoded with the training vocabulary; a test tag the training part
        cannot produce (unseen POS tag, or chunk type) gives a missing label (NaN),
        counted in ``info.n_unseen``.
    window : int, default=2
        ``w >= 0``: tokens of context on each side.
    max_vocab : int, default=20000
        Most frequent training words kept (ties in alphabetical order).
    min_count : int, default=1
        Training words seen fewer times are ``<unk>``.

    Returns
    -------
    train_data : MultiTaskData
        Shared design ``(n_train_tokens, 2 (2w + 1))`` and labels ``pos``, ``chunk``.
    test_data : MultiTaskData or None
        The same for ``test`` (None without it).
    info : ConllWindowInfo
        The id space (``info.n_ids``), tag sets and sentence lengths.

    Raises
    ------
    TypeError
        If ``train`` or ``test`` is not a :class:`TaggedCorpus`.
    ValueError
        If a corpus is empty, ``window``, ``max_vocab`` or ``min_count`` is out of
        range, or a chunk tag is not an IOB tag (the message names the part and the
        sentence).

    References
    ----------
    .. [1] Collobert, R., Weston, J., Bottou, L., Karlen, M., Kavukcuoglu, K., & Kuksa, P.
       (2011). Natural language processing (almost) from scratch. *JMLR*, 12, 2493-2537
       (window approach, word and capitalisation features).
    .. [2] Tjong Kim Sang, E. F. & Buchholz, S. (2000). Introduction to the CoNLL-2000
       shared task: chunking. *CoNLL*.

    Examples
    --------
    >>> from polytask.data import TaggedCorpus
    >>> train = TaggedCorpus([["He", "ran", "home"], ["The", "dog", "ran"]],
    ...                      [["PRP", "VBD", "NN"], ["DT", "NN", "VBD"]],
    ...                      [["B-NP", "B-VP", "B-NP"], ["B-NP", "I-NP", "B-VP"]])
    >>> data, _, info = conll_windows(train, window=1, max_vocab=10)
    >>> info.vocab
    {'<pad>': 0, '<unk>': 1, 'ran': 2, 'dog': 3, 'he': 4, 'home': 5, 'the': 6}
    >>> data.feature_matrix()[0].astype(int).tolist()  # <pad> he ran, then their caps
    [0, 4, 2, 0, 14, 12]
    >>> info.n_ids, info.chunk_types, info.chunk_tags[1:4]
    (17, ('VP', 'NP'), ('B-VP', 'I-VP', 'B-NP'))
    >>> data.label_matrix()[:3, 1].tolist()  # B-NP B-VP B-NP
    [3.0, 1.0, 3.0]
    """
    train = _check_corpus(train, "train")
    if test is not None:
        test = _check_corpus(test, "test")
    w = _check_int(window, "window", 0)
    n_words = _check_int(max_vocab, "max_vocab", 1)
    min_count = _check_int(min_count, "min_count", 1)
    full = build_vocab([[t.lower() for t in s] for s in train.sentences], min_count=min_count,
                       specials=("<pad>", "<unk>"))
    vocab = dict(list(full.items())[: N_SPECIALS + n_words])
    pos = build_vocab(train.pos, specials=())
    types = _chunk_types(train)
    offset = N_SPECIALS + n_words
    kinds = {"pos": "multiclass", "chunk": "multiclass"}
    names = [f"{kind}[{o:+d}]" for kind in ("word", "caps") for o in range(-w, w + 1)]

    def data(corpus: TaggedCorpus, Y: NDArray[np.float64]) -> MultiTaskData:
        return MultiTaskData(_rows(corpus, vocab, w, offset), Y, task_names=list(kinds),
                             kinds=kinds, feature_names=names)

    y_train, _ = _labels(train, "train", pos, types, 2 * len(types))
    train_data, test_data = data(train, y_train), None
    unseen = {"pos": 0, "chunk": 0}
    if test is not None:
        y_test, unseen = _labels(test, "test", pos, types, int(y_train[:, 1].max()))
        test_data = data(test, y_test)
    info = ConllWindowInfo(
        window=w, max_vocab=n_words, vocab=vocab, pos_tags=tuple(pos), chunk_types=types,
        train_lengths=tuple(len(s) for s in train.sentences),
        test_lengths=() if test is None else tuple(len(s) for s in test.sentences),
        n_unseen=unseen)
    return train_data, test_data, info


__all__ = [
    "CAPS_CLASSES",
    "ConllWindowInfo",
    "caps_class",
    "chunk_f1_ids",
    "conll_windows",
    "decode_chunk_ids",
]
