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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

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
