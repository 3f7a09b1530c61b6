"""Tests of the torch views of MultiTaskData: datasets, DataLoader batching, lazy import."""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import TYPE_CHECKING

import numpy as np
import pytest

from polytask.data import MultiTaskData

if TYPE_CHECKING:
    from conftest import Builders


def test_import_does_not_load_torch() -> None:
    code = "import sys, polytask.data; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torch_dataset_items_and_missing_values(mtd: Builders) -> None:
    import torch

    X, Y = mtd.shared_arrays(10)
    data = MultiTaskData(X, Y, task_names=list(mtd.kinds), kinds=mtd.kinds)
    ds = data.torch_dataset()
    assert len(ds) == 10 and ds.task_names == tuple(mtd.kinds)
    for i in range(10):
        x, targets = ds[i]
        assert x.dtype == torch.float32 and x.shape == (3,)
        np.testing.assert_allclose(x.numpy(), X[i].astype(np.float32))
        for j, name in enumerate(mtd.kinds):
            value = targets[name]
            assert value.ndim == 0
            if mtd.kinds[name] == "multiclass":
                assert value.dtype == torch.int64
                assert value.item() == (-1 if np.isnan(Y[i, j]) else int(Y[i, j]))
            else:
                assert value.dtype == torch.float32
                np.testing.assert_array_equal(value.numpy(), np.float32(Y[i, j]))  # NaN == NaN


@pytest.mark.parametrize("form", ["shared", "per_task"])
def test_dataloader_with_collate_tasks_rebuilds_the_label_matrix(form: str, mtd: Builders) -> None:
    import torch
    from torch.utils.data import DataLoader

    from polytask.data import collate_tasks

    data = mtd.build(form)
    shared = data.to_shared()
    loader = DataLoader(data.torch_dataset(), batch_size=4, collate_fn=collate_tasks)
    xs: list[torch.Tensor] = []
    ys: dict[str, list[torch.Tensor]] = {name: [] for name in data.task_names}
    for x, targets in loader:
        assert x.ndim == 2 and x.shape[1] == data.n_features
        assert set(targets) == set(data.task_names)
        for name, value in targets.items():
            assert value.shape == (x.shape[0],)
            ys[name].append(value)
        xs.append(x)
    np.testing.assert_allclose(torch.cat(xs).numpy(), shared.feature_matrix(), rtol=1e-6)
    for t, name in enumerate(data.task_names):
        got = torch.cat(ys[name]).double().numpy()
        want = shared.label_matrix()[:, t]
        if data.kinds[name] == "multiclass":
            want = np.where(np.isnan(want), -1.0, want)
        np.testing.assert_array_equal(got, want.astype(np.float32))


def test_task_datasets_have_one_loader_per_task(mtd: Builders) -> None:
    import torch
    from torch.utils.data import DataLoader

    data = mtd.shared()
    datasets = data.task_datasets()
    assert {name: len(ds) for name, ds in datasets.items()} == data.task_sizes
    for name, ds in datasets.items():
        x, y = next(iter(DataLoader(ds, batch_size=len(ds))))
        X_t, y_t = data.task(name)
        np.testing.assert_allclose(x.numpy(), X_t, rtol=1e-6)
        np.testing.assert_array_equal(y.numpy(), y_t.astype(y.numpy().dtype))
        want = torch.int64 if data.kinds[name] == "multiclass" else torch.float32
        assert y.dtype == want


def test_torch_dataset_pickles_for_worker_processes(mtd: Builders) -> None:
    ds = mtd.per_task().torch_dataset()
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone) == len(ds) and clone.task_names == ds.task_names


def test_collate_and_dataset_errors() -> None:
    import torch

    from polytask.data import MultiTaskTorchDataset, collate_tasks

    with pytest.raises(ValueError, match="batch is empty"):
        collate_tasks([])
    items = [
        (torch.zeros(2), {"a": torch.tensor(1.0), "b": torch.tensor(0.0)}),
        (torch.zeros(2), {"a": torch.tensor(1.0)}),
    ]
    with pytest.raises(ValueError, match=r"batch item 1 .*missing \['b'\]"):
        collate_tasks(items)
    with pytest.raises(ValueError, match=r"task 'b': targets must have shape \(3,\)"):
        MultiTaskTorchDataset(torch.zeros(3, 2), {"a": torch.zeros(3), "b": torch.zeros(2)})
    with pytest.raises(ValueError, match="targets is empty"):
        MultiTaskTorchDataset(torch.zeros(3, 2), {})
