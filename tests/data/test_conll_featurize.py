"""CoNLL-2000 with a featuriser: the loader's pairs, and the experiment runner's data."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polytask import _registry as reg
from polytask._config import parse_config
from polytask._experiment_data import load_setting, split_setting
from polytask.data import MultiTaskData, TaggedCorpus, conll_windows, load_conll2000, read_conll
from polytask.data.datasets import load_dataset

TRAIN = """\
The DT B-NP
dog NN I-NP
ran VBD B-VP
home NN B-NP
. . O

A DT B-NP
cat NN I-NP
sat VBD B-VP
on IN B-PP
the DT B-NP
mat NN I-NP
. . O

Smith NNP B-NP
ran VBD B-VP
"""
TEST = """\
The DT B-NP
cat NN I-NP
ran VBD B-VP
. . O

Dogs NNS B-NP
sat VBD B-VP
"""


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "conll2000"
    folder.mkdir()
    (folder / "train.txt").write_text(TRAIN)
    (folder / "test.txt").write_text(TEST)
    return tmp_path


def _same_corpus(a: TaggedCorpus, b: TaggedCorpus) -> bool:
    return (a.sentences, a.pos, a.chunks) == (b.sentences, b.pos, b.chunks)


def _same_data(a: MultiTaskData, b: MultiTaskData) -> bool:
    return (a.task_names == b.task_names
            and np.array_equal(a.feature_matrix(), b.feature_matrix())
            and np.array_equal(a.label_matrix(), b.label_matrix(), equal_nan=True))


class Recorder:
    """A featuriser that records the corpora it receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[TaggedCorpus, ...]] = []

    def __call__(self, *corpora: TaggedCorpus) -> str:
        self.calls.append(corpora)
        return f"featurised {len(corpora)}"


def test_both_without_featurizer_reads_each_part(home: Path) -> None:
    train, test = load_conll2000(home / "conll2000", split="both")
    assert _same_corpus(train, read_conll(home / "conll2000" / "train.txt"))
    assert _same_corpus(test, read_conll(home / "conll2000" / "test.txt"))
    assert (train.n_sentences, test.n_sentences) == (3, 2)


@pytest.mark.parametrize(("split", "parts"), [("train", ("train",)),
                                              ("both", ("train", "test"))])
def test_featurizer_receives_the_training_part_first(home: Path, split: Any,
                                                     parts: tuple[str, ...]) -> None:
    featurize = Recorder()
    out = load_conll2000(data_home=home, split=split, featurize=featurize, download=False)
    assert out == f"featurised {len(parts)}"
    (call,) = featurize.calls
    for corpus, part in zip(call, parts, strict=True):
        assert _same_corpus(corpus, read_conll(home / "conll2000" / f"{part}.txt"))


def test_registered_featurizer_gives_the_runner_its_pair(home: Path) -> None:
    featurize = functools.partial(reg.featurizers()["conll_window"].fn, window=1, max_vocab=8)
    train, test = load_dataset("conll2000", data_home=home, download=False, split="both",
                               featurize=featurize)
    ref_train, ref_test, _ = conll_windows(*load_conll2000(home / "conll2000", split="both"),
                                           window=1, max_vocab=8)
    assert ref_test is not None
    assert _same_data(train, ref_train) and _same_data(test, ref_test)
    only = load_dataset("conll2000", data_home=home, download=False, featurize=featurize)
    assert isinstance(only, MultiTaskData) and _same_data(only, ref_train)


def _config(home: Path, published: bool) -> Any:
    return parse_config({
        "name": "conll",
        "seeds": 1,
        "dataset": {"name": "conll2000", "data_home": str(home), "standardize": False,
                    "featurizer": {"name": "conll_window",
                                   "params": {"window": 1, "max_vocab": 8}}},
        "split": {"published": True, "val": 0.3} if published else {"test": 0.3, "val": 0.3},
        "tasks": {"metrics": {"chunk": ["chunk_f1_ids", "accuracy"]}},
        "models": [{"name": "STL", "type": "deep", "stl": True, "epochs": 1,
                    "arch_params": {"hidden": [4],
                                    "stem": {"type": "embedding", "n_ids": 15, "dim": 2}}}],
    }, base_dir=home)


def test_published_split_keeps_the_test_tokens_in_corpus_order(home: Path) -> None:
    cfg = _config(home, published=True)
    data, preset = load_setting(cfg, cfg.settings[0], 0)
    _, ref_test, info = conll_windows(*load_conll2000(home / "conll2000", split="both"),
                                      window=1, max_vocab=8)
    assert ref_test is not None and isinstance(preset, MultiTaskData)
    split = split_setting(cfg, data, preset, seed=0)
    assert _same_data(split.test, ref_test)  # ids kept (no standardisation), rows in order
    assert split.train.n_samples + split.val.n_samples == data.n_samples == 14
    assert split.tasks["chunk"].metric_names == ("chunk_f1_ids", "accuracy")
    assert split.tasks["pos"].primary_metric == "accuracy"
    chunk_ids = split.test.label_matrix()[:, 1]
    assert split.tasks["chunk"].evaluate(chunk_ids, np.eye(7)[chunk_ids.astype(int)]) == {
        "chunk_f1_ids": 1.0, "accuracy": 1.0}
    assert sum(info.test_lengths) == split.test.n_samples


def test_unpublished_split_featurises_the_training_part_only(home: Path) -> None:
    cfg = _config(home, published=False)
    data, preset = load_setting(cfg, cfg.settings[0], 0)
    assert preset is None and data.n_samples == 14


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"split": "test", "featurize": Recorder()}, ValueError,
         r"split='test' cannot be featurised on its own: the vocabulary"),
        ({"split": "dev"}, ValueError, r"split must be 'train' or 'test' \(or 'both'"),
        ({"split": "both", "featurize": "conll_window"}, TypeError,
         "featurize must be callable"),
    ],
)
def test_errors(home: Path, kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        load_conll2000(home / "conll2000", **kwargs)


def test_example_stem_covers_the_featurizer_ids() -> None:
    from polytask._config import DeepModelConfig, load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "conll2000.yaml")
    assert cfg.dataset.featurizer == "conll_window" and not cfg.dataset.standardize
    assert cfg.split.published and cfg.tasks.metrics_of("chunk") == ("chunk_f1_ids", "accuracy")
    n_ids = cfg.dataset.featurizer_params["max_vocab"] + 7
    deep = [m for m in cfg.models if isinstance(m, DeepModelConfig)]
    assert len(deep) == len(cfg.models)
    assert all(m.arch_params["stem"] == {"type": "embedding", "n_ids": n_ids, "dim": 50}
               for m in deep)
    assert "soft_sharing" not in {m.architecture for m in deep}  # unequal output counts
