"""CoNLL-2000 token windows: ids, sentence edges, capitalisation, labels and chunk F1."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from polytask import _registry as reg
from polytask.data import (
    MultiTaskData,
    TaggedCorpus,
    chunk_f1_ids,
    conll_windows,
    decode_chunk_ids,
    load_conll2000,
)
from polytask.data._conll_windows import CAPS_CLASSES, caps_class
from polytask.deep._architectures.stems import make_stem
from polytask.metrics import chunk_f1

_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

TRAIN = """\
The DT B-NP
dog NN I-NP
ran VBD B-VP
home NN B-NP
. . O

the DT B-NP
IBM NNP I-NP
deal NN I-NP
in IN B-PP
1990 CD B-NP
was VBD B-VP
done VBN I-VP
. . O

Smith NNP B-NP
ran VBD B-VP
the DT B-NP
race NN I-NP
"""
TEST = """\
The DT B-NP
cat NN I-NP
ran VBD B-VP
, , O
eBay NNP B-NP

A DT B-NP
dog FW I-NP
"""


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> tuple[TaggedCorpus, TaggedCorpus]:
    folder = tmp_path_factory.mktemp("conll2000")
    (folder / "train.txt").write_text(TRAIN)
    (folder / "test.txt").write_text(TEST)
    return load_conll2000(folder), load_conll2000(folder, split="test")


def _expected_rows(corpus: TaggedCorpus, vocab: dict[str, int], w: int, offset: int
                   ) -> np.ndarray:
    """Brute force: look every window position up one by one."""
    rows = []
    for sentence in corpus.sentences:
        for i in range(len(sentence)):
            words, caps = [], []
            for j in range(i - w, i + w + 1):
                if 0 <= j < len(sentence):
                    words.append(vocab.get(sentence[j].lower(), 1))
                    caps.append(offset + caps_class(sentence[j]))
                else:
                    words.append(0)
                    caps.append(0)
            rows.append(words + caps)
    return np.array(rows, dtype=float)


@pytest.mark.parametrize("window", [0, 1, 2, 4])
def test_rows_are_the_windows_of_each_sentence(corpora, window):
    train, test = corpora
    tr, te, info = conll_windows(train, test, window=window, max_vocab=50)
    assert isinstance(tr, MultiTaskData) and isinstance(te, MultiTaskData)
    assert tr.feature_matrix().shape == (train.n_tokens, 2 * (2 * window + 1))
    for data, corpus in ((tr, train), (te, test)):
        expected = _expected_rows(corpus, dict(info.vocab), window, 2 + 50)
        np.testing.assert_array_equal(data.feature_matrix(), expected)
    assert tr.feature_names == info.feature_names
    assert info.feature_names[0] == f"word[{-window:+d}]"


def test_sentence_edges_are_padded_and_windows_stay_in_their_sentence(corpora):
    train, _ = corpora
    tr, _, info = conll_windows(train, window=2)
    X = tr.feature_matrix()
    word = {t: i for t, i in info.vocab.items()}
    # first token of sentence 2 ("the"): two PADs on the left, "ibm", "deal" on the right
    first = sum(info.train_lengths[:1])
    assert X[first, :5].tolist() == [0, 0, word["the"], word["ibm"], word["deal"]]
    assert X[first, 5:7].tolist() == [0, 0]  # caps columns are padded too
    # last token of sentence 1 (".") has PAD on its right, not the next sentence's words
    last = info.train_lengths[0] - 1
    assert X[last, 3:5].tolist() == [0, 0]
    # the last token of the corpus
    assert X[-1, :5].tolist() == [word["ran"], word["the"], word["race"], 0, 0]


def test_vocabulary_comes_from_training_words_lower_cased(corpora):
    train, test = corpora
    _, te, info = conll_windows(train, test, window=0)
    assert te is not None
    counts = Counter(t.lower() for s in train.sentences for t in s)
    assert set(info.vocab) == {"<pad>", "<unk>", *counts}
    ids = [info.vocab[t] for t in sorted(counts, key=lambda t: (-counts[t], t))]
    assert ids == list(range(2, 2 + len(counts)))
    assert info.vocab["the"] == 2  # "The" and "the": one word, the most frequent
    test_words = te.feature_matrix()[:, 0].astype(int).tolist()
    # "cat", ",", "ebay", "a" are unknown; "the", "ran", "dog" are known
    expected = [info.vocab.get(t.lower(), 1) for s in test.sentences for t in s]
    assert test_words == expected and test_words.count(1) == 4


@pytest.mark.parametrize(("max_vocab", "min_count", "kept"), [
    (2, 1, ["the", "."]),
    (50, 2, ["the", ".", "ran"]),
    (1, 2, ["the"]),
])
def test_max_vocab_and_min_count_keep_the_most_frequent_words(corpora, max_vocab, min_count,
                                                              kept):
    train, _ = corpora
    tr, _, info = conll_windows(train, window=0, max_vocab=max_vocab, min_count=min_count)
    assert list(info.vocab) == ["<pad>", "<unk>", *kept]
    assert info.caps_offset == 2 + max_vocab
    assert info.n_ids == max_vocab + 7
    X = tr.feature_matrix()
    assert X.max() < info.n_ids and X.min() >= 0
    assert X[:, 1].min() >= info.caps_offset  # caps ids never collide with word ids


@pytest.mark.parametrize(("word", "kind"), [
    ("the", "all-lower"), ("'s", "all-lower"), ("IBM", "all-upper"), ("U.S.", "all-upper"),
    ("I", "all-upper"), ("Smith", "initial-upper"), ("McDonald", "initial-upper"),
    ("1990", "has-digit"), ("A4", "has-digit"), ("1990s", "has-digit"), (",", "other"),
    ("eBay", "other"), ("--", "other"),
])
def test_capitalisation_classes(word, kind):
    assert CAPS_CLASSES[caps_class(word)] == kind


def test_caps_columns_hold_offset_classes(corpora):
    train, _ = corpora
    tr, _, info = conll_windows(train, window=0, max_vocab=10)
    got = tr.feature_matrix()[:, 1].astype(int) - info.caps_offset
    tokens = [t for s in train.sentences for t in s]
    assert [CAPS_CLASSES[c] for c in got[:3]] == ["initial-upper", "all-lower", "all-lower"]
    assert got.tolist() == [caps_class(t) for t in tokens]
    assert CAPS_CLASSES[got[tokens.index("IBM")]] == "all-upper"
    assert CAPS_CLASSES[got[tokens.index("1990")]] == "has-digit"


def test_labels_decode_back_to_the_tags(corpora):
    train, test = corpora
    tr, te, info = conll_windows(train, test)
    assert te is not None
    assert tr.kinds == {"pos": "multiclass", "chunk": "multiclass"}
    for data, corpus in ((tr, train), (te, test)):
        Y = data.label_matrix()
        pos_true = [t for s in corpus.pos for t in s]
        decoded = [info.pos_tags[int(i)] if np.isfinite(i) else None for i in Y[:, 0]]
        assert decoded == [t if t in info.pos_tags else None for t in pos_true]
        chunks = [t for s in corpus.chunks for t in s]
        assert decode_chunk_ids(Y[:, 1], info.chunk_types) == chunks
    assert info.chunk_tags[0] == "O" and len(info.chunk_tags) == 2 * len(info.chunk_types) + 1
    # the largest chunk id occurs in training, so the class count is right
    assert int(np.nanmax(tr.label_matrix()[:, 1])) == 2 * len(info.chunk_types)


def test_unseen_test_tags_are_missing_labels(corpora):
    train, test = corpora
    _, te, info = conll_windows(train, test)
    assert te is not None
    assert info.n_unseen == {"pos": 2, "chunk": 0}  # "," and "FW" never occur in training
    assert np.isnan(te.label_matrix()[[3, 6], 0]).all()
    only_b = TaggedCorpus([["a", "b"]], [["X", "Y"]], [["B-NP", "B-VP"]])
    inside = TaggedCorpus([["a", "b"]], [["X", "X"]], [["B-VP", "I-VP"]])
    _, te2, info2 = conll_windows(only_b, inside)
    assert te2 is not None
    assert info2.n_unseen == {"pos": 0, "chunk": 1}  # I-VP: above the largest training id
    assert te2.label_matrix()[:, 1].tolist()[0] == 2 * info2.chunk_types.index("VP") + 1


def test_one_embedding_stem_covers_every_column(corpora):
    train, test = corpora
    tr, te, info = conll_windows(train, test, window=2, max_vocab=100)
    assert te is not None
    stem, width = make_stem({"type": "embedding", "n_ids": info.n_ids, "dim": 3},
                            tr.n_features)
    out = stem(torch.tensor(te.feature_matrix(), dtype=torch.float32))
    assert tuple(out.shape) == (test.n_tokens, width) == (test.n_tokens, 30)


# ---------------------------------------------------------------------- chunk F1 of ids


def test_chunk_f1_ids_with_lengths_equals_conlleval_per_sentence():
    rng = np.random.default_rng(0)
    types = ("NP", "VP", "PP")
    lengths = [5, 1, 7, 3]
    y_true = rng.integers(0, 7, size=sum(lengths))
    y_pred = np.where(rng.random(sum(lengths)) < 0.7, y_true, rng.integers(0, 7, sum(lengths)))
    tags_t, tags_p = decode_chunk_ids(y_true, types), decode_chunk_ids(y_pred, types)
    spans = list(itertools.pairwise(np.cumsum([0, *lengths])))
    expected = chunk_f1([tags_t[a:b] for a, b in spans], [tags_p[a:b] for a, b in spans])
    assert chunk_f1_ids(y_true, y_pred, lengths) == pytest.approx(expected)
    assert chunk_f1_ids(y_true.astype(float), y_pred.astype(float), lengths) == pytest.approx(
        expected)


def test_flat_chunk_f1_differs_only_when_a_predicted_chunk_crosses_a_boundary():
    y_true = [1, 2, 1, 2]  # [B-NP I-NP] [B-NP I-NP]: IOB2 truth
    crossing = [1, 2, 2, 2]  # second sentence opens with I-NP after an NP
    assert chunk_f1_ids(y_true, crossing, [2, 2]) == 1.0  # conlleval: I- opens a chunk
    assert chunk_f1_ids(y_true, crossing) == 0.0  # flat: one long chunk
    assert chunk_f1_ids(y_true, [1, 2, 1, 1], [2, 2]) == chunk_f1_ids(y_true, [1, 2, 1, 1])


@pytest.mark.parametrize(("ids", "types", "match"), [
    ([0, -1], None, "non-negative integers"),
    ([0, 1.5], None, "non-negative integers"),
    ([0, np.nan], None, "non-negative integers"),
    ([5], ("NP",), "names chunk type 2"),
])
def test_decode_rejects_invalid_ids(ids, types, match):
    with pytest.raises(ValueError, match=match):
        decode_chunk_ids(ids, types)


def test_chunk_f1_ids_errors():
    with pytest.raises(ValueError, match="same length"):
        chunk_f1_ids([0, 1], [0])
    with pytest.raises(ValueError, match="lengths must sum to the number of tokens 2"):
        chunk_f1_ids([0, 1], [0, 1], [3])
    with pytest.raises(ValueError, match=r"lengths\[i\] must be an integer >= 1"):
        chunk_f1_ids([0, 1], [0, 1], [2, 0])


# ---------------------------------------------------------------------- errors, registry


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"window": -1}, "window must be an integer >= 0"),
    ({"window": 1.5}, "window must be an integer >= 0"),
    ({"max_vocab": 0}, "max_vocab must be an integer >= 1"),
    ({"min_count": 0}, "min_count must be an integer >= 1"),
])
def test_bad_parameters_are_named(corpora, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conll_windows(corpora[0], **kwargs)


def test_bad_corpora_are_named(corpora):
    with pytest.raises(TypeError, match="train must be a TaggedCorpus"):
        conll_windows([["a"]])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="test must be a TaggedCorpus"):
        conll_windows(corpora[0], "test")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="test holds no token"):
        conll_windows(corpora[0], TaggedCorpus([], [], []))
    bad = TaggedCorpus([["a", "b"], ["c"]], [["X", "X"], ["X"]], [["B-NP", "I-NP"], ["E-NP"]])
    with pytest.raises(ValueError, match="train, sentence 1: invalid chunk tag 'E-NP'"):
        conll_windows(bad)


def test_registered_featurizer(corpora):
    train, test = corpora
    entry = reg.featurizers()["conll_window"]
    assert entry.params == ("window", "max_vocab", "min_count")
    tr, te = entry.fn(train, test, window=1, max_vocab=30)
    alone = entry.fn(train, window=1, max_vocab=30)
    np.testing.assert_array_equal(alone.feature_matrix(), tr.feature_matrix())
    assert te.n_samples == test.n_tokens


def test_real_corpus_baseline_through_the_ids():
    if not (_SHARED / "conll2000").is_dir():
        pytest.skip("shared dataset folder 'conll2000' not present beside the repository")
    train = load_conll2000(data_home=_SHARED, download=False)
    test = load_conll2000(data_home=_SHARED, split="test", download=False)
    tr, te, info = conll_windows(train, test)
    assert te is not None
    assert (tr.n_samples, te.n_samples, info.n_ids) == (211727, 47377, 20007)
    assert info.n_unseen == {"pos": 0, "chunk": 0} and len(info.chunk_types) == 11
    assert int(tr.label_matrix()[:, 1].max()) == 22
    # README baseline (most frequent chunk tag of each POS tag) scored on the ids
    pos_tr, chunk_tr = tr.label_matrix().T.astype(int)
    best = {p: Counter(chunk_tr[pos_tr == p]).most_common(1)[0][0] for p in set(pos_tr)}
    pos_te, chunk_te = te.label_matrix().T.astype(int)
    pred = np.array([best.get(p, 0) for p in pos_te])
    assert round(100 * chunk_f1_ids(chunk_te, pred, info.test_lengths), 2) == 77.07
