"""Chunk-level precision, recall and F1 of IOB-tagged sequences (``conlleval``'s definition).

A chunk is a maximal run of tokens with one chunk type. Tags are ``O`` (outside any
chunk) or ``<prefix>-<TYPE>`` with prefix ``B`` (begin), ``I`` (inside), ``E`` (end) or
``S`` (single-token chunk), so IOB1, IOB2 (``B`` on every first token) and IOBES all
work. Following the CoNLL shared tasks' ``conlleval`` script:

* a chunk **starts** at a ``B`` or ``S`` tag, at an ``I`` or ``E`` tag that follows
  ``O``, ``E`` or ``S``, and at any tag whose type differs from the previous token's
  (so ``I-NP`` after ``O`` or after ``I-VP`` opens a new NP chunk);
* a chunk **ends** before a ``B``, ``S`` or ``O`` tag, after an ``E`` or ``S`` tag, before
  a change of type, and at the end of each sentence;
* a predicted chunk is **correct** when a true chunk has exactly the same first token,
  last token and type.

:func:`chunk_f1_ids` and :func:`chunk_scores_ids` apply the same rules, with NumPy, to
chunk tags coded as integers (``O = 0``, ``B-X = 2k + 1``, ``I-X = 2k + 2``, the class ids
of :func:`polytask.data.conll_windows`); :func:`decode_chunk_ids` turns such ids back
into tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

Span = tuple[int, int, str]

_PREFIXES = frozenset("BIES")


class ChunkScores(NamedTuple):
    """Chunk-level scores, as fractions in [0, 1] (``conlleval`` prints percentages).

    Attributes
    ----------
    precision, recall, f1 : float
        ``n_correct / n_pred``, ``n_correct / n_true`` and their harmonic mean; each is
        0 when its denominator is 0, as in ``conlleval``.
    n_true, n_pred, n_correct : int
        Numbers of true, predicted and correctly predicted chunks.
    """

    precision: float
    recall: float
    f1: float
    n_true: int
    n_pred: int
    n_correct: int


def _split_tag(tag: object, where: str) -> tuple[str, str]:
    if not isinstance(tag, str):
        raise TypeError(f"{where}: chunk tags must be str, got {type(tag).__name__} ({tag!r})")
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in _PREFIXES or not kind:
        raise ValueError(
            f"{where}: invalid chunk tag {tag!r}; expected 'O' or B-/I-/E-/S- followed by a "
            f"chunk type, e.g. 'B-NP'"
        )
    return prefix, kind


def _ends(prev: str, tag: str, prev_kind: str, kind: str) -> bool:
    """Whether a chunk ends between a token tagged ``prev`` and one tagged ``tag``."""
    return (
        prev in ("E", "S")
        or (prev in ("B", "I") and tag in ("B", "S", "O"))
        or (prev != "O" and prev_kind != kind)
    )


def _starts(prev: str, tag: str, prev_kind: str, kind: str) -> bool:
    """Whether a chunk starts at a token tagged ``tag`` following one tagged ``prev``."""
    return (
        tag in ("B", "S")
        or (prev in ("E", "S", "O") and tag in ("I", "E"))
        or (tag != "O" and prev_kind != kind)
    )


def chunk_spans(tags: Sequence[str]) -> list[Span]:
    """The chunks of one tagged sentence as ``(first, stop, type)`` with ``stop`` exclusive.

    Parameters
    ----------
    tags : sequence of str
        One chunk tag per token (``"B-NP"``, ``"I-NP"``, ``"O"`` …).

    Returns
    -------
    list of (int, int, str)
        Chunks in sentence order; tokens ``first`` to ``stop - 1`` belong to the chunk.

    Raises
    ------
    ValueError
        If a tag is neither ``O`` nor ``B``/``I``/``E``/``S`` followed by ``-TYPE``.
    TypeError
        If a tag is not a str.

    Examples
    --------
    >>> chunk_spans(["B-NP", "I-NP", "O", "I-VP", "I-VP", "I-NP"])
    [(0, 2, 'NP'), (3, 5, 'VP'), (5, 6, 'NP')]
    """
    if isinstance(tags, str):
        raise TypeError("tags must be a sequence of chunk tags, not one str")
    spans: list[Span] = []
    prev, prev_kind, start = "O", "", -1
    for i, label in enumerate([*tags, "O"]):  # the final "O" closes the last chunk
        tag, kind = _split_tag(label, f"token {i}")
        if start >= 0 and _ends(prev, tag, prev_kind, kind):
            spans.append((start, i, prev_kind))
            start = -1
        if _starts(prev, tag, prev_kind, kind):
            start = i
        prev, prev_kind = tag, kind
    return spans


def _sentences(chunks: Sequence[Sequence[str]] | Sequence[str], name: str) -> list[Sequence[str]]:
    if isinstance(chunks, str):
        raise TypeError(f"{name} must be a sequence of sentences (lists of tags), not a str")
    items: list[Any] = list(chunks)
    if items and all(isinstance(item, str) for item in items):
        return [items]  # one sentence given as a flat list of tags
    for i, sentence in enumerate(items):
        if isinstance(sentence, str) or not isinstance(sentence, Sequence):
            raise TypeError(
                f"{name}[{i}] must be a list of chunk tags, got {type(sentence).__name__}"
            )
    return items


def chunk_scores(
    true_chunks: Sequence[Sequence[str]] | Sequence[str],
    pred_chunks: Sequence[Sequence[str]] | Sequence[str],
) -> ChunkScores:
    """Chunk-level precision, recall and F1 of predicted chunk tags (``conlleval``).

    Parameters
    ----------
    true_chunks, pred_chunks : sequence of sequence of str, or sequence of str
        Chunk tags per sentence (a flat list of tags is one sentence); both must have
        the same number of sentences and of tokens per sentence.

    Returns
    -------
    ChunkScores
        Precision, recall, F1 (fractions) and the chunk counts.

    Raises
    ------
    ValueError
        If the two disagree in sentences or tokens, or a tag is invalid.
    TypeError
        If a tag is not a str or the input is not a sequence of sentences.

    References
    ----------
    Tjong Kim Sang, E. F. & Buchholz, S. (2000). Introduction to the CoNLL-2000 shared
    task: chunking. CoNLL 2000, 127-132 (and its ``conlleval`` script).

    Examples
    --------
    >>> true = [["B-NP", "I-NP", "B-VP"], ["B-PP", "B-NP"]]
    >>> pred = [["B-NP", "I-NP", "B-NP"], ["B-PP", "I-PP"]]
    >>> s = chunk_scores(true, pred)
    >>> s.n_true, s.n_pred, s.n_correct, round(s.f1, 4)
    (4, 3, 1, 0.2857)
    """
    true = _sentences(true_chunks, "true_chunks")
    pred = _sentences(pred_chunks, "pred_chunks")
    if len(true) != len(pred):
        raise ValueError(
            f"true_chunks and pred_chunks must have the same number of sentences, got "
            f"{len(true)} and {len(pred)}"
        )
    n_true = n_pred = n_correct = 0
    for i, (t_tags, p_tags) in enumerate(zip(true, pred, strict=True)):
        if len(t_tags) != len(p_tags):
            raise ValueError(
                f"sentence {i}: {len(t_tags)} true tags but {len(p_tags)} predicted tags"
            )
        t_spans, p_spans = set(chunk_spans(t_tags)), set(chunk_spans(p_tags))
        n_true += len(t_spans)
        n_pred += len(p_spans)
        n_correct += len(t_spans & p_spans)
    precision = n_correct / n_pred if n_pred else 0.0
    recall = n_correct / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ChunkScores(precision, recall, f1, n_true, n_pred, n_correct)


def chunk_f1(
    true_chunks: Sequence[Sequence[str]] | Sequence[str],
    pred_chunks: Sequence[Sequence[str]] | Sequence[str],
) -> float:
    """Chunk-level F1 of predicted chunk tags, as ``conlleval`` defines it (a fraction).

    Higher is better; a predicted chunk counts only if a true chunk has the same first
    token, last token and type. ``100 * chunk_f1`` is ``conlleval``'s ``FB1``. Returns 0
    when no chunk is correct (including when there is no chunk at all).

    Parameters
    ----------
    true_chunks, pred_chunks : sequence of sequence of str, or sequence of str
        Chunk tags per sentence, as in :func:`chunk_scores`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the two disagree in sentences or tokens, or a tag is invalid.
    TypeError
        If a tag is not a str or the input is not a sequence of sentences.

    References
    ----------
    Tjong Kim Sang, E. F. & Buchholz, S. (2000). Introduction to the CoNLL-2000 shared
    task: chunking. CoNLL 2000, 127-132 (and its ``conlleval`` script).

    Examples
    --------
    >>> chunk_f1([["B-NP", "I-NP", "O"]], [["B-NP", "I-NP", "O"]])
    1.0
    >>> chunk_f1(["B-NP", "I-NP", "O"], ["B-NP", "B-NP", "O"])  # boundary wrong
    0.0
    """
    return chunk_scores(true_chunks, pred_chunks).f1


# -------------------------------- structurally coded ids: O = 0, B-X = 2k + 1, I-X = 2k + 2


def _as_ids(ids: ArrayLike, metric: str, arg: str) -> NDArray[np.int64]:
    """``ids`` as a 1-D int64 array of non-negative integers (floats such as ``3.0`` pass)."""
    try:
        arr = np.asarray(ids, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{metric}: {arg} must be an array of integer chunk ids; got "
                        f"{ids!r:.80}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{metric}: {arg} must be 1-D (one id per token); got shape "
                         f"{arr.shape}")
    bad = ~(np.isfinite(arr) & (arr >= 0) & (arr == np.floor(arr)))
    if bad.any():
        raise ValueError(f"{metric}: {arg} must hold non-negative integers (structural chunk "
                         f"ids: O = 0, B-X = 2k+1, I-X = 2k+2), got {arr[bad][:3].tolist()}")
    return arr.astype(np.int64)


def decode_chunk_ids(ids: ArrayLike, types: Sequence[str] | None = None) -> list[str]:
    """Chunk tags of structurally coded ids: ``0 → O``, ``2k+1 → B-X``, ``2k+2 → I-X``.

    Parameters
    ----------
    ids : array-like of int of shape (n_tokens,)
        Non-negative class ids (integers, possibly stored as floats).
    types : sequence of str or None, default=None
        Chunk type names by index ``k`` (e.g.
        :attr:`polytask.data.ConllWindowInfo.chunk_types`); None names type ``k``
        ``"T<k>"``, which is enough to score chunks.

    Returns
    -------
    list of str
        One tag per id.

    Raises
    ------
    ValueError
        If an id is negative, not an integer, or names a type beyond ``types``.

    Examples
    --------
    >>> decode_chunk_ids([0, 1, 2, 3], ["NP", "VP"])
    ['O', 'B-NP', 'I-NP', 'B-VP']
    >>> decode_chunk_ids([4.0, 0.0])
    ['I-T1', 'O']
    """
    arr = _as_ids(np.asarray(ids).reshape(-1), "decode_chunk_ids", "ids")
    out = []
    for value in arr.tolist():
        if value == 0:
            out.append("O")
            continue
        k, inside = divmod(value - 1, 2)
        if types is not None and k >= len(types):
            raise ValueError(f"decode_chunk_ids: id {value} names chunk type {k} but types "
                             f"has {len(types)} entries")
        name = types[k] if types is not None else f"T{k}"
        out.append(f"{'I' if inside else 'B'}-{name}")
    return out


def _sentence_starts(n: int, lengths: Sequence[int] | None, metric: str) -> NDArray[np.bool_]:
    """Mask of the tokens that open a sentence (only token 0 without ``lengths``)."""
    first = np.zeros(n, dtype=bool)
    first[0] = True
    if lengths is None:
        return first
    sizes = []
    for value in lengths:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{metric}: lengths[i] must be an integer >= 1 (tokens per "
                             f"sentence), got {value!r}")
        sizes.append(int(value))
    if sum(sizes) != n:
        raise ValueError(f"{metric}: lengths must sum to the number of tokens {n}, got "
                         f"{sum(sizes)}")
    first[np.cumsum(sizes)[:-1]] = True
    return first


def _id_chunks(ids: NDArray[np.int64], first: NDArray[np.bool_]
               ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64]]:
    """Chunks of coded ids as arrays ``(start, stop, type)``, ``stop`` exclusive.

    The rules of :func:`chunk_spans` restricted to ``B``/``I``/``O`` tags: a chunk opens at
    a ``B`` tag, at a sentence's first token or at a change of type (which covers ``I``
    after ``O``); one closes before a ``B`` or ``O`` tag, a change of type or a new
    sentence, and at the end.  Every opening inside a chunk closes it, so each chunk
    stops at the first closing position after its start.
    """
    kind = np.where(ids > 0, (ids - 1) // 2, -1)
    begin = (ids % 2) == 1
    prev = np.concatenate([[-1], kind[:-1]])
    changed = prev != kind
    opens = (kind >= 0) & (begin | first | changed)
    closes = (prev >= 0) & (begin | first | changed)
    starts = np.flatnonzero(opens)
    stops = np.append(np.flatnonzero(closes), len(ids))  # the end closes any open chunk
    return starts, stops[np.searchsorted(stops, starts, side="right")], kind[starts]


def chunk_scores_ids(y_true: ArrayLike, y_pred: ArrayLike,
                     lengths: Sequence[int] | None = None) -> ChunkScores:
    """Chunk-level precision, recall and F1 (``conlleval``) of structurally coded chunk ids.

    The same scores as :func:`chunk_scores` on the tags :func:`decode_chunk_ids` gives,
    computed on the ids with NumPy.  With ``lengths`` the tokens are cut into sentences,
    exactly as ``conlleval`` does.  Without it they are scored as one sequence, which
    gives the same value when the true tags are IOB2 (every true chunk starts with
    ``B-``, as in CoNLL-2000) unless a predicted ``I-X`` opens a sentence right after a
    predicted ``X`` chunk closed the previous one (the flat reading merges the two
    predicted chunks).  The rows must be in corpus order, with no token dropped.

    Parameters
    ----------
    y_true, y_pred : array-like of int of shape (n_tokens,)
        True and predicted chunk ids (``O = 0``, ``B-X = 2k+1``, ``I-X = 2k+2``).
    lengths : sequence of int or None, default=None
        Tokens per sentence, summing to ``n_tokens``.

    Returns
    -------
    ChunkScores
        Precision, recall, F1 (fractions) and the chunk counts.

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in length, are empty, hold ids that are not
        non-negative integers, or ``lengths`` does not sum to their length.
    TypeError
        If an input is not numeric.

    References
    ----------
    Tjong Kim Sang, E. F. & Buchholz, S. (2000). Introduction to the CoNLL-2000 shared
    task: chunking. CoNLL 2000, 127-132 (and its ``conlleval`` script).

    Examples
    --------
    >>> s = chunk_scores_ids([1, 2, 0, 3], [1, 1, 0, 3])  # the B-T0 I-T0 chunk split in two
    >>> s.n_true, s.n_pred, s.n_correct
    (2, 3, 1)
    """
    metric = "chunk_f1_ids"
    true = _as_ids(y_true, metric, "y_true")
    pred = _as_ids(y_pred, metric, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"{metric}: y_true and y_pred must have the same length, got "
                         f"{true.size} and {pred.size}")
    if true.size == 0:
        raise ValueError(f"{metric}: y_true is empty; expected at least one token")
    first = _sentence_starts(true.size, lengths, metric)
    t_start, t_stop, t_kind = _id_chunks(true, first)
    p_start, p_stop, p_kind = _id_chunks(pred, first)
    _, it, ip = np.intersect1d(t_start, p_start, assume_unique=True, return_indices=True)
    n_correct = int(np.sum((t_stop[it] == p_stop[ip]) & (t_kind[it] == p_kind[ip])))
    n_true, n_pred = int(t_start.size), int(p_start.size)
    precision = n_correct / n_pred if n_pred else 0.0
    recall = n_correct / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ChunkScores(precision, recall, f1, n_true, n_pred, n_correct)


def chunk_f1_ids(y_true: ArrayLike, y_pred: ArrayLike,
                 lengths: Sequence[int] | None = None) -> float:
    """Chunk-level F1 (``conlleval``) of structurally coded chunk ids; higher is better.

    The F1 of :func:`chunk_scores_ids` (see there for ``lengths`` and the one case where
    scoring without sentence boundaries differs from ``conlleval``).  Registered as the
    metric ``"chunk_f1_ids"`` for multiclass chunking tasks whose class ids follow this
    coding (:func:`polytask.data.conll_windows`).

    Parameters
    ----------
    y_true, y_pred : array-like of int of shape (n_tokens,)
        True and predicted chunk ids (``O = 0``, ``B-X = 2k+1``, ``I-X = 2k+2``).
    lengths : sequence of int or None, default=None
        Tokens per sentence, summing to ``n_tokens``.

    Returns
    -------
    float
        In ``[0, 1]``; 0 when no chunk is correct.

    Raises
    ------
    ValueError
        As :func:`chunk_scores_ids`.
    TypeError
        As :func:`chunk_scores_ids`.

    References
    ----------
    Tjong Kim Sang, E. F. & Buchholz, S. (2000). Introduction to the CoNLL-2000 shared
    task: chunking. CoNLL 2000, 127-132 (and its ``conlleval`` script).

    Examples
    --------
    >>> chunk_f1_ids([1, 2, 0, 3], [1, 2, 0, 3])
    1.0
    >>> round(chunk_f1_ids([1, 2, 0, 3], [1, 1, 0, 3]), 4)  # the first chunk split in two
    0.4
    """
    return chunk_scores_ids(y_true, y_pred, lengths).f1
