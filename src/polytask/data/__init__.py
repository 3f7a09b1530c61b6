"""Getting multi-task data in: validated containers, synthetic problems, real datasets.

:class:`MultiTaskData` holds either a shared design (one ``X``, a label matrix ``Y`` with
NaN for missing labels) or one design per task, validates it once, and offers per-task
access, conversions, seeded splits, pandas input/output and torch datasets.
:mod:`polytask.data.synthetic` generates problems with a known relatedness and
:mod:`polytask.data.datasets` loads the classic multi-task sets. Their helpers are
here too: Morgan fingerprints and scaffold/random splits of molecules (RDKit, the
``chem`` extra), two-item image composites (MultiMNIST, MultiFashion), and the
vocabularies of tagged corpora and their token windows of ids (CoNLL-2000).

The torch helpers (:func:`collate_tasks`, :func:`torch_dataset`, :func:`task_datasets`,
:class:`MultiTaskTorchDataset`) are loaded on first access, so importing this package
does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._chem import morgan_fingerprints, murcko_scaffolds, random_split, scaffold_split
from ._conll import build_vocab, read_conll
from ._conll import encode as encode_tokens
from ._conll_windows import ConllWindowInfo, chunk_f1_ids, conll_windows, decode_chunk_ids
from ._containers import MultiTaskData
from ._multimnist import (
    MultiItemImages,
    area_resize,
    images_from_features,
    multi_fashion,
    multi_fashion_mnist,
    multi_mnist,
)
from .datasets import (
    DATASETS,
    DatasetDownloadError,
    DatasetInfo,
    LabelledImages,
    TaggedCorpus,
    download_dataset,
    get_data_home,
    list_datasets,
    load_census_income,
    load_clintox,
    load_conll2000,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    load_mtr,
    load_mulan,
    load_multi_fashion,
    load_multi_fashion_mnist,
    load_multi_mnist,
    load_school,
    load_sider,
    load_tox21,
    load_toxcast,
    read_idx,
)
from .synthetic import SyntheticTasks, clustered, dirty, group_sparse, low_rank, mmoe_synthetic

if TYPE_CHECKING:
    from ._torch_views import MultiTaskTorchDataset, collate_tasks, task_datasets, torch_dataset

_TORCH_NAMES = ("MultiTaskTorchDataset", "collate_tasks", "task_datasets", "torch_dataset")


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        from . import _torch_views

        return getattr(_torch_views, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "ConllWindowInfo",
    "DatasetDownloadError",
    "DatasetInfo",
    "LabelledImages",
    "MultiItemImages",
    "MultiTaskData",
    "MultiTaskTorchDataset",
    "SyntheticTasks",
    "TaggedCorpus",
    "area_resize",
    "build_vocab",
    "chunk_f1_ids",
    "clustered",
    "collate_tasks",
    "conll_windows",
    "decode_chunk_ids",
    "dirty",
    "download_dataset",
    "encode_tokens",
    "get_data_home",
    "group_sparse",
    "images_from_features",
    "list_datasets",
    "load_census_income",
    "load_clintox",
    "load_conll2000",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "load_mtr",
    "load_mulan",
    "load_multi_fashion",
    "load_multi_fashion_mnist",
    "load_multi_mnist",
    "load_school",
    "load_sider",
    "load_tox21",
    "load_toxcast",
    "low_rank",
    "mmoe_synthetic",
    "morgan_fingerprints",
    "multi_fashion",
    "multi_fashion_mnist",
    "multi_mnist",
    "murcko_scaffolds",
    "random_split",
    "read_conll",
    "read_idx",
    "scaffold_split",
    "task_datasets",
    "torch_dataset",
]
