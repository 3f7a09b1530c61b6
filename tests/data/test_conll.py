"""Tests of the CoNLL-2000 reader, the vocabulary helpers and conlleval's chunk F1.

Chunk scoring is checked on hand-built sentences (the README's example, ``I-`` opening
a chunk, IOBES), on random chunkings encoded in IOB2, IOB1 and IOBES and decoded back,
and against the shared task's baseline (P 72.58 %, R 82.14 %, F1 77.07) on the real
test set when ``../shared/data`` is present.
"""

from __future__ import annotations

import gzip
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polytask.data import build_vocab, read_conll
from polytask.data import encode_tokens as encode
from polytask.data._catalog import PUBLISHED, dataset_folder
from polytask.data._download import content_sha256, local_copy
from polytask.data.datasets import TaggedCorpus, load_conll2000, load_dataset
from polytask.metrics._sequence import chunk_f1, chunk_scores, chunk_spans

_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# The README's example sentence and its bracketing:
# [NP He ] [VP reckons ] [NP the current account deficit ] [VP will narrow ] [PP to ]
# [NP only # 1.8 billion ] [PP in ] [NP September ] .
_README = """He PRP B-NP
reckons VBZ B-VP
the DT B-NP
current JJ I-NP
account NN I-NP
deficit NN I-NP
will MD B-VP
narrow VB I-VP
to TO B-PP
only RB B-NP
# # I-NP
1.8 CD I-NP
billion CD I-NP
in IN B-PP
September NNP B-NP
. . O

Hi UH B-INTJ
"""
_README_SPANS = [
    (0, 1, "NP"),
    (1, 2, "VP"),
    (2, 6, "NP"),
    (6, 8, "VP"),
    (8, 9, "PP"),
    (9, 13, "NP"),
    (13, 14, "PP"),
    (14, 15, "NP"),
]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real = urllib.request.urlopen

    def guarded(url: Any, *args: Any, **kwargs: Any) -> Any:
        target = url if isinstance(url, str) else url.full_url
        if not target.startswith("file:"):
            raise AssertionError(f"a test tried to reach the network: {target}")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


def _write(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode()
    if gz:
        path, data = path.with_name(path.name + ".gz"), gzip.compress(data)
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize("gz", [False, True])
def test_read_readme_example(tmp_path: Path, gz: bool) -> None:
    _write(tmp_path / "train.txt", _README + "\n\n", gz)  # extra blank lines are harmless
    corpus = load_conll2000(tmp_path)
    assert corpus.n_sentences == 2 and corpus.n_tokens == 17
    assert corpus.sentences[0][:3] == ["He", "reckons", "the"]
    assert corpus.pos[0][10] == "#" and corpus.chunks[1] == ["B-INTJ"]
    assert chunk_spans(corpus.chunks[0]) == _README_SPANS


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("He PRP B-NP\nreckons VBZ\n", r"line 2: expected 3 space-separated fields.*got 2"),
        ("He PRP B-NP extra\n", "got 4"),
    ],
)
def test_read_malformed(tmp_path: Path, text: str, match: str) -> None:
    _write(tmp_path / "test.txt", text)
    with pytest.raises(ValueError, match=match + ".*clips.uantwerpen"):
        load_conll2000(tmp_path, split="test")
    with pytest.raises(ValueError, match=match):
        read_conll(tmp_path / "test.txt")


def test_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_conll2000(tmp_path, split="dev")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"conll2000[/\\]train\.txt.*CoNLL-2000"):
        load_dataset("conll2000", data_home=tmp_path, download=False)
    with pytest.raises(ValueError, match=r"sentence 0: 2 tokens but 1 POS tags"):
        TaggedCorpus([["a", "b"]], [["X"]], [["O", "O"]])
    with pytest.raises(ValueError, match="same number of sentences"):
        TaggedCorpus([["a"]], [], [])


def test_vocab_and_encode() -> None:
    sentences = [["the", "cat", "the"], ["a", "cat", "the", "dog"]]
    vocab = build_vocab(sentences)
    assert vocab == {"<pad>": 0, "<unk>": 1, "the": 2, "cat": 3, "a": 4, "dog": 5}
    assert build_vocab(sentences, min_count=2) == {"<pad>": 0, "<unk>": 1, "the": 2, "cat": 3}
    ids = encode([["cat", "bird"], []], vocab)
    assert [x.tolist() for x in ids] == [[3, 1], []] and ids[0].dtype == np.int64
    tags = build_vocab([["B-NP", "O"]], specials=("<pad>",))
    assert tags == {"<pad>": 0, "B-NP": 1, "O": 2}
    decoded = {i: t for t, i in vocab.items()}
    assert [decoded[i] for i in encode(sentences, vocab)[1]] == sentences[1]  # round trip
    with pytest.raises(ValueError, match=r"token 'I-VP' is not in vocab and neither is unk"):
        encode([["I-VP"]], tags)
    with pytest.raises(ValueError, match="min_count must be an integer >= 1"):
        build_vocab(sentences, min_count=0)
    with pytest.raises(ValueError, match="specials must be distinct"):
        build_vocab(sentences, specials=("x", "x"))


# ------------------------------------------------------------------------------ chunks


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        (["I-NP", "I-NP", "O"], [(0, 2, "NP")]),  # IOB1: I- opens a chunk after O
        (["I-NP", "B-NP", "I-NP"], [(0, 1, "NP"), (1, 3, "NP")]),  # IOB1 adjacent NPs
        (["I-NP", "I-VP", "I-VP"], [(0, 1, "NP"), (1, 3, "VP")]),  # type change opens
        (["B-NP", "B-NP", "O", "O"], [(0, 1, "NP"), (1, 2, "NP")]),
        (["O", "O"], []),
        ([], []),
        (["S-NP", "B-VP", "I-VP", "E-VP", "I-VP"], [(0, 1, "NP"), (1, 4, "VP"), (4, 5, "VP")]),
        (["B-NP", "E-NP", "E-NP"], [(0, 2, "NP"), (2, 3, "NP")]),
        (["B-NP"], [(0, 1, "NP")]),  # a chunk ends with the sentence
    ],
)
def test_chunk_spans_hand_built(tags: list[str], spans: list) -> None:
    assert chunk_spans(tags) == spans


def _random_chunking(rng: np.random.Generator, n: int) -> list[tuple[int, int, str]]:
    spans, i = [], 0
    while i < n:
        if rng.random() < 0.3:
            i += 1  # an O token
            continue
        length = int(rng.integers(1, 4))
        spans.append((i, min(n, i + length), str(rng.choice(["NP", "VP", "PP"]))))
        i += length
    return spans


def _encode(spans: list[tuple[int, int, str]], n: int, scheme: str) -> list[str]:
    tags = ["O"] * n
    previous_end, previous_type = -1, ""
    for start, stop, kind in spans:
        for k in range(start, stop):
            tags[k] = f"I-{kind}"
        adjacent = previous_end == start and previous_type == kind
        if scheme == "IOB2" or (scheme == "IOB1" and adjacent):
            tags[start] = f"B-{kind}"
        if scheme == "IOBES":
            if stop - start == 1:
                tags[start] = f"S-{kind}"
            else:
                tags[start], tags[stop - 1] = f"B-{kind}", f"E-{kind}"
        previous_end, previous_type = stop, kind
    return tags


@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "IOBES"])
@pytest.mark.parametrize("seed", range(5))
def test_chunk_spans_decode_every_scheme(scheme: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n in (1, 5, 20):
        spans = _random_chunking(rng, n)
        assert chunk_spans(_encode(spans, n, scheme)) == spans


@pytest.mark.parametrize("seed", range(5))
def test_chunk_scores_against_span_sets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    true_spans, pred_spans, true, pred = [], [], [], []
    for _ in range(8):
        n = int(rng.integers(1, 15))
        t, p = _random_chunking(rng, n), _random_chunking(rng, n)
        if t and rng.random() < 0.5:  # predict the first half of the true chunks right
            keep = t[: (len(t) + 1) // 2]
            p = keep + [span for span in p if span[0] >= keep[-1][1]]
        true_spans.append(set(t))
        pred_spans.append(set(p))
        true.append(_encode(t, n, "IOB2"))
        pred.append(_encode(p, n, "IOB1"))
    correct = sum(len(a & b) for a, b in zip(true_spans, pred_spans, strict=True))
    n_true, n_pred = sum(map(len, true_spans)), sum(map(len, pred_spans))
    scores = chunk_scores(true, pred)
    assert (scores.n_true, scores.n_pred, scores.n_correct) == (n_true, n_pred, correct)
    precision, recall = correct / n_pred, correct / n_true
    assert scores.f1 == pytest.approx(
        2 * precision * recall / (precision + recall) if correct else 0
    )
    swapped = chunk_scores(pred, true)  # swapping roles swaps precision and recall
    assert (swapped.precision, swapped.recall) == pytest.approx((scores.recall, scores.precision))
    assert chunk_f1(true, true) == 1.0


def test_chunk_scores_hand_built_and_conventions() -> None:
    true = [["B-NP", "I-NP", "O", "B-VP"], ["B-PP"]]
    pred = [["B-NP", "I-NP", "O", "B-NP"], ["I-PP"]]  # I-PP after the boundary opens a PP
    scores = chunk_scores(true, pred)
    assert (scores.n_true, scores.n_pred, scores.n_correct) == (3, 3, 2)
    assert scores.f1 == pytest.approx(2 / 3)
    assert chunk_f1(["B-NP", "I-NP"], ["B-NP", "I-NP"]) == 1.0  # a flat list is one sentence
    assert chunk_scores([["O"]], [["O"]]).f1 == 0.0  # conlleval: no chunk at all scores 0
    assert chunk_scores([["B-NP"]], [["O"]]) == (0.0, 0.0, 0.0, 1, 0, 0)


@pytest.mark.parametrize(
    ("true", "pred", "error", "match"),
    [
        ([["B-NP"]], [["B-NP"], ["O"]], ValueError, "same number of sentences, got 1 and 2"),
        ([["B-NP", "O"]], [["B-NP"]], ValueError, "sentence 0: 2 true tags but 1 predicted"),
        ([["X-NP"]], [["O"]], ValueError, r"invalid chunk tag 'X-NP'"),
        ([["NP"]], [["O"]], ValueError, r"invalid chunk tag 'NP'"),
        ([["B-"]], [["O"]], ValueError, r"invalid chunk tag 'B-'"),
        ([[1]], [["O"]], TypeError, "chunk tags must be str"),
        ("B-NP", "B-NP", TypeError, "not a str"),
        ([["O"], "O"], [["O"], ["O"]], TypeError, r"true_chunks\[1\] must be a list"),
    ],
)
def test_chunk_scores_errors(true: Any, pred: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        chunk_scores(true, pred)


# ---------------------------------------------------------------------- published files


def _shared() -> Path:
    if not (_SHARED / "conll2000").is_dir():
        pytest.skip("shared dataset folder 'conll2000' not present beside the repository")
    return _SHARED


def test_recorded_checksums_match_shared_copies() -> None:
    root = _shared()
    for remote in PUBLISHED["conll2000"].files:
        local = local_copy(dataset_folder("conll2000", root), remote.filename)
        assert local is not None and content_sha256(local) == remote.sha256


def test_real_conll2000_and_shared_task_baseline() -> None:
    train = load_conll2000(data_home=_shared(), download=False)
    test = load_conll2000(data_home=_SHARED, split="test", download=False)
    assert (train.n_sentences, train.n_tokens) == (8936, 211727)
    assert (test.n_sentences, test.n_tokens) == (2012, 47377)
    assert len({t for s in train.pos + test.pos for t in s}) == 44
    kinds = {c[2:] for s in train.chunks + test.chunks for c in s if c != "O"}
    assert kinds == {"NP", "VP", "PP", "ADVP", "ADJP", "SBAR", "PRT", "CONJP", "INTJ", "LST", "UCP"}
    # README baseline: the chunk tag most frequent with each POS tag in the training data
    by_pos: dict[str, Counter[str]] = {}
    for tags, chunks in zip(train.pos, train.chunks, strict=True):
        for tag, chunk in zip(tags, chunks, strict=True):
            by_pos.setdefault(tag, Counter())[chunk] += 1
    best = {tag: counts.most_common(1)[0][0] for tag, counts in by_pos.items()}
    pred = [[best.get(tag, "O") for tag in tags] for tags in test.pos]
    scores = chunk_scores(test.chunks, pred)
    assert scores.n_true == 23852  # chunks in the test set
    assert round(100 * scores.precision, 2) == 72.58
    assert round(100 * scores.recall, 2) == 82.14
    assert round(100 * scores.f1, 2) == 77.07
