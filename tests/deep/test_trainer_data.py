"""Data inputs (joint, per-task, datasets, loaders), evaluation, run-directory logs and
single-task baselines."""

from __future__ import annotations

import functools
import json
import logging
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from polytask.data import MultiTaskData, collate_tasks
from polytask.deep.architectures import MLP, SharedBottom
from polytask.deep.trainer import STLResult, Trainer, train_single_task
from polytask.tasks import Task, TaskSet

ADAM = functools.partial(torch.optim.Adam, lr=0.02)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _factory(names, seed=0):
    torch.manual_seed(seed)
    return SharedBottom(MLP([4, 8], activate_last=True), {t: MLP([8, 1]) for t in names})


def _per_task(sizes=(120, 30), seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=4)
    out = {}
    for t, n in zip("ab", sizes, strict=True):
        X = rng.normal(size=(n, 4))
        out[t] = (X, X @ (w + 0.3 * rng.normal(size=4)) + 0.05 * rng.normal(size=n))
    return MultiTaskData.from_tasks(out)


def _joint(n=60, seed=0, kinds=("regression", "binary")):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    Y = np.column_stack([X @ rng.normal(size=4), (X[:, 0] > 0).astype(float)])
    Y[rng.random(Y.shape) < 0.2] = np.nan
    return MultiTaskData(X, Y, task_names=["a", "b"], kinds=list(kinds))


def _trainer(**kw):
    return Trainer(**{"max_epochs": 3, "batch_size": 16, "progress": False,
                      "tensorboard": False, **kw})


# ---------------------------------------------------------------- per-task data
@pytest.mark.parametrize("sampling", ["proportional", "uniform", "temperature", "round_robin"])
@pytest.mark.parametrize("mixing", ["batch", "example"])
def test_per_task_data_of_different_sizes_trains(sampling, mixing):
    train, val = _per_task().train_test_split(0.75, random_state=0)
    model = _factory("ab")
    history = _trainer(max_epochs=6, sampling=sampling, task_mixing=mixing).fit(
        model, ["a", "b"], None, ADAM, train, val)
    for t in "ab":
        mse = history.metric(t, "mse")
        assert len(mse) == 6 and mse[-1] < mse[0]


def test_per_task_steps_per_epoch_and_mapping_of_datasets():
    data = _per_task()
    datasets = data.task_datasets()
    trainer = _trainer(max_epochs=2, steps_per_epoch=5, sampling="round_robin")
    history = trainer.fit(_factory("ab"), ["a", "b"], None, ADAM, datasets, datasets)
    assert [r["step"] for r in history.records if r["metric"] == "loss"
            and r["split"] == "train" and r["task"] == "a"] == [5, 10]
    assert set(history.metrics_at(2)) == {"a", "b"}


# ---------------------------------------------------------------- other inputs
class PairDataset(Dataset):
    """A plain map-style dataset of (x, {task: y}) items."""

    def __init__(self, data: MultiTaskData) -> None:
        self.ds = data.torch_dataset()

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i):
        x, y = self.ds[i]
        return x, dict(y)


def test_dataset_and_dataloader_inputs_match_multitaskdata():
    data = _joint()
    a, b = _factory("ab"), _factory("ab")
    _trainer(seed=3).fit(a, ["a", Task("b", kind="binary")], None, ADAM, data)
    _trainer(seed=3).fit(b, ["a", Task("b", kind="binary")], None, ADAM, PairDataset(data))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    loader = DataLoader(data.torch_dataset(), batch_size=16, shuffle=True,
                        collate_fn=collate_tasks, generator=torch.Generator().manual_seed(0))
    history = _trainer().fit(_factory("ab"), ["a", Task("b", kind="binary")], None, ADAM,
                             loader, loader)
    assert history.n_epochs == 3 and history.metric("b", "roc_auc")


def test_loader_generator_state_is_checkpointed(tmp_path):
    data = _joint()
    loader = DataLoader(data.torch_dataset(), batch_size=16, shuffle=True,
                        collate_fn=collate_tasks, generator=torch.Generator().manual_seed(0))
    _trainer(run_dir=tmp_path, max_epochs=1).fit(
        _factory("ab"), ["a", Task("b", kind="binary")], None, ADAM, loader)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert torch.equal(state["source"]["generator"], loader.generator.get_state())


def test_loader_batches_with_unknown_tasks_are_rejected():
    x = torch.randn(4, 4)
    batches = [(x, {"a": torch.randn(4), "b": torch.randn(4), "c": torch.randn(4)})]
    with pytest.raises(ValueError, match=r"Unknown task\(s\) \['c'\] in a training batch"):
        _trainer().fit(_factory("ab"), ["a", "b"], None, ADAM, batches)
    with pytest.raises(TypeError, match=r"must be a pair \(x, \{task: y\}\)"):
        _trainer().fit(_factory("ab"), ["a", "b"], None, ADAM, [x])


# ---------------------------------------------------------------- evaluation
def test_evaluate_matches_task_metrics_on_full_predictions():
    data = _joint()
    tasks = TaskSet([Task("a"), Task("b", kind="binary")])
    model = _factory("ab")
    _trainer().fit(model, tasks, None, ADAM, data)
    got = _trainer(batch_size=7).evaluate(model, tasks, data)
    with torch.no_grad():
        preds = model(torch.tensor(data.feature_matrix(), dtype=torch.float32))
    Y = data.label_matrix()
    for i, task in enumerate(tasks):
        expected = task.evaluate(Y[:, i], preds[task.name][:, 0].double().numpy())
        assert got[task.name].keys() == expected.keys()
        for metric, value in expected.items():
            assert got[task.name][metric] == pytest.approx(value, rel=1e-6), metric


def test_evaluate_per_task_data_scores_each_task_on_its_own_rows():
    data = _per_task()
    model = _factory("ab")
    got = _trainer().evaluate(model, ["a", "b"], data)
    for name, X, y in data.iter_tasks():
        with torch.no_grad():
            pred = model(torch.tensor(X, dtype=torch.float32))[name][:, 0].numpy()
        assert got[name]["mse"] == pytest.approx(float(np.mean((pred - y) ** 2)), rel=1e-5)


# ---------------------------------------------------------------- run directory
def test_run_directory_holds_config_and_metrics_lines(tmp_path):
    data = _joint()
    tasks = [Task("a"), Task("b", kind="binary", role="auxiliary")]
    _trainer(run_dir=tmp_path, max_epochs=2).fit(_factory("ab"), tasks, None, ADAM, data, data)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["trainer"]["batch_size"] == 16 and config["seed_used"] == 0
    assert [t["role"] for t in config["tasks"]] == ["main", "auxiliary"]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(set(r) == {"epoch", "step", "split", "task", "metric", "value"} for r in rows)
    per_epoch = {(r["split"], r["task"], r["metric"]) for r in rows if r["epoch"] == 2}
    expected = {("train", t, m) for t in "ab" for m in ("loss", "weight")}
    expected |= {("val", "a", m) for m in ("mse", "mae", "explained_variance", "loss")}
    expected |= {("val", "b", m) for m in (*Task("b", kind="binary").metric_names, "loss")}
    assert per_epoch == expected
    assert len(rows) == 2 * len(expected)


def test_tensorboard_is_skipped_silently_when_not_installed(tmp_path, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with caplog.at_level(logging.DEBUG, logger="polytask.deep.trainer"):
        _trainer(run_dir=tmp_path, tensorboard=True, max_epochs=1).fit(
            _factory("ab"), ["a", Task("b", kind="binary")], None, ADAM, _joint())
    assert "TensorBoard logging skipped" in caplog.text
    assert not (tmp_path / "tensorboard").exists()


def test_tensorboard_events_are_written_when_available(tmp_path, monkeypatch):
    calls: list[tuple] = []

    class FakeWriter:
        def __init__(self, log_dir):
            calls.append(("init", log_dir))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def flush(self):
            pass

        def close(self):
            calls.append(("close",))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    _trainer(run_dir=tmp_path, tensorboard=True, max_epochs=2).fit(
        _factory("ab"), ["a", Task("b", kind="binary")], None, ADAM, _joint())
    assert calls[0] == ("init", str(tmp_path / "tensorboard")) and calls[-1] == ("close",)
    tags = {c[0] for c in calls[1:-1]}
    assert tags == {"train/a/loss", "train/b/loss", "train/a/weight", "train/b/weight"}
    assert sorted({c[2] for c in calls[1:-1]}) == [1, 2]


def test_progress_bar_can_be_shown(capsys):
    _trainer(progress=True, max_epochs=1).fit(_factory("ab"), ["a", Task("b", kind="binary")],
                                              None, ADAM, _joint())
    assert "epoch 1/1" in capsys.readouterr().err


# ---------------------------------------------------------------- single-task baselines
def test_fit_stl_trains_one_model_per_task_like_a_direct_fit(tmp_path):
    data = _joint()
    tasks = TaskSet([Task("a"), Task("b", kind="binary", role="auxiliary", period=2,
                                     weight=0.1)])
    trainer = _trainer(run_dir=tmp_path)
    result = trainer.fit_stl(_factory, tasks, ADAM, data, data)
    assert isinstance(result, STLResult) and set(result.models) == {"a", "b"}
    assert result.models["b"].task_names == ("b",)
    assert set(result.metrics["b"]) == set(tasks["b"].metric_names) | {"loss"}
    assert (tmp_path / "stl-a" / "checkpoint.pt").is_file()
    # the STL run of "b" is a plain single-task fit (as a main task, period 1, weight 1)
    direct = _factory(("b",))
    history = _trainer().fit(direct, [Task("b", kind="binary")], None, ADAM,
                             data.subset(["b"]), data.subset(["b"]))
    assert history.best_metrics["b"] == result.metrics["b"]
    assert all(torch.equal(p, q) for p, q in zip(direct.parameters(),
                                                 result.models["b"].parameters(), strict=True))


def test_stl_on_per_task_data_and_loaders():
    per_task = _per_task()
    result = train_single_task(_factory, ["a", "b"], ADAM, per_task, per_task,
                               trainer=_trainer(max_epochs=2))
    assert set(result.metrics) == {"a", "b"} and "mse" in result.metrics["a"]
    loader = DataLoader(_joint().torch_dataset(), batch_size=16, collate_fn=collate_tasks)
    result = _trainer(max_epochs=1).fit_stl(_factory, ["a", Task("b", kind="binary")], ADAM,
                                            loader)
    assert result.histories["b"].metric("b", "loss", "train")


def test_stl_needs_an_optimizer_factory():
    model = _factory("ab")
    with pytest.raises(TypeError, match="fit_stl needs an optimizer factory"):
        _trainer().fit_stl(_factory, ["a", "b"], torch.optim.SGD(model.parameters(), lr=0.1),
                           _joint())


def test_tensor_dataset_mapping_for_stl_restricts_tasks():
    g = torch.Generator().manual_seed(0)
    datasets = {t: TensorDataset(torch.randn(20, 4, generator=g), torch.randn(20, generator=g))
                for t in "ab"}
    result = _trainer(max_epochs=1).fit_stl(_factory, ["a", "b"], ADAM, datasets)
    assert set(result.histories) == {"a", "b"}
    assert result.histories["a"].metric("b", "loss", "train") == []
    assert nn.Module in type(result.models["a"]).__mro__
