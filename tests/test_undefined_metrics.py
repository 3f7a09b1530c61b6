"""Metrics undefined on a task's labels: raised distinctly, skipped on request, recorded.

A rare task's small validation or test part can hold one class (SIDER's 'Product
issues', ToxCast's assays), where ROC-AUC is undefined.  Training must go on, epoch
selection must use the other tasks, the unit must leave that score out and say so, and
Δm% must be over the tasks that were scored (MoleculeNet's convention).
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from polytask import _runner
from polytask._config import parse_config
from polytask.data import MultiTaskData
from polytask.deep._evaluation import selection_score
from polytask.experiment import compare, tidy_frame
from polytask.metrics import (
    UndefinedMetricError,
    UndefinedMetricWarning,
    explained_variance,
    log_loss,
    roc_auc,
)
from polytask.tasks import Task, TaskSet

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_undefined_metrics_raise_their_own_error_class() -> None:
    with pytest.raises(UndefinedMetricError, match="only one class"):
        roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(UndefinedMetricError, match="constant"):
        explained_variance([2.0, 2.0], [1.0, 3.0])
    assert issubclass(UndefinedMetricError, ValueError)
    # malformed input is not "undefined": it must never be skipped
    with pytest.raises(ValueError) as info:
        roc_auc([0, 1, np.nan], [0.1, 0.2, 0.3])
    assert not isinstance(info.value, UndefinedMetricError)


def test_task_evaluate_skips_an_undefined_metric_with_a_warning_naming_the_task() -> None:
    task = Task("Product issues", kind="binary", metrics=["roc_auc", "accuracy"])
    y, logits = [0.0, 0.0, 0.0, np.nan], [-1.0, 2.0, -3.0, 5.0]
    with pytest.warns(UndefinedMetricWarning, match=r"'Product issues'.*roc_auc"):
        out = task.evaluate(y, logits, undefined="skip")
    assert out == {"accuracy": pytest.approx(2 / 3)}
    with pytest.raises(UndefinedMetricError, match=r"'Product issues'.*only one class"):
        task.evaluate(y, logits)
    with pytest.raises(ValueError, match="'Product issues': undefined must be"):
        task.evaluate(y, logits, undefined="nan")  # type: ignore[arg-type]


def test_task_evaluate_feeds_each_metric_the_prediction_its_registry_entry_names() -> None:
    task = Task("t", kind="binary", metrics=["log_loss", "accuracy", "roc_auc"])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    logits = np.array([-2.0, 0.5, 3.0, 1.0])
    prob = 1.0 / (1.0 + np.exp(-logits))
    out = task.evaluate(y, logits)
    assert out["log_loss"] == pytest.approx(log_loss(y, prob))  # probabilities
    assert out["accuracy"] == pytest.approx(0.75)  # labels: logit > 0
    assert out["roc_auc"] == pytest.approx(roc_auc(y, logits))  # any monotone score


def test_selection_score_leaves_out_tasks_without_their_primary_metric() -> None:
    ts = TaskSet([Task("a", kind="binary", metrics=["roc_auc"]),
                  Task("b", kind="binary", metrics=["roc_auc"])])
    assert selection_score(ts, {"a": {}, "b": {"roc_auc": 0.7}}) == pytest.approx(0.7)
    assert selection_score(ts, {"a": {}, "b": {}}) is None


def _rare_data(n: int = 160, seed: int = 0) -> MultiTaskData:
    """Two binary tasks: 'common' is balanced, 'rare' has two positives."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    common = (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(float)
    rare = np.zeros(n)
    rare[[3, 7]] = 1.0
    return MultiTaskData(X, np.c_[common, rare], task_names=["common", "rare"],
                         kinds={"common": "binary", "rare": "binary"})


def test_training_goes_on_when_a_validation_part_holds_one_class() -> None:
    import torch
    from torch import nn

    from polytask.deep.architectures import MLP, SharedBottom
    from polytask.deep.trainer import Trainer
    from polytask.deep.weighting import EqualWeighting

    data = _rare_data()
    val_rows = [i for i in range(data.n_samples) if i not in (3, 7)][:40]
    train = data.select_rows(np.setdiff1d(np.arange(data.n_samples), val_rows))
    val = data.select_rows(np.asarray(val_rows))
    tasks = TaskSet([Task("common", kind="binary", metrics=["roc_auc"]),
                     Task("rare", kind="binary", metrics=["roc_auc"])])
    torch.manual_seed(0)
    model = SharedBottom(MLP([4, 8], activate_last=True),
                         {t: nn.Linear(8, 1) for t in tasks.names})
    trainer = Trainer(max_epochs=3, batch_size=32, seed=0, progress=False, tensorboard=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = trainer.fit(model, tasks, EqualWeighting(tasks.names),
                              functools.partial(torch.optim.Adam, lr=0.01), train, val)
    assert any(issubclass(w.category, UndefinedMetricWarning) and "'rare'" in str(w.message)
               for w in caught)
    # epoch selection ran on the task that is defined there
    assert all(s is not None for s in history.scores)
    val_records = [r for r in history.records if r["split"] == "val"]
    assert {r["task"] for r in val_records if r["metric"] == "roc_auc"} == {"common"}
    with pytest.raises(UndefinedMetricError, match="'rare'"):
        trainer.evaluate(model, tasks, val)


def _raw_rare() -> dict[str, Any]:
    deep = {"arch_params": {"hidden": [4]}, "epochs": 1, "batch_size": 32, "lr": 0.01}
    return {
        "name": "rare",
        "seeds": 3,
        "dataset": {"synthetic": "mmoe", "params": {"n_samples": 10}},
        "split": {"test": 0.25, "val": 0.2},
        "tasks": {"metrics": ["roc_auc", "accuracy"]},
        "metric": "roc_auc",
        "models": [
            {"name": "STL", "type": "deep", "stl": True, **deep},
            {"name": "MTL", "type": "deep", "method": "ew", **deep},
            {"name": "STL logistic", "type": "linear", "model": "ridge",
             "fit": "per_task", "params": {"beta": 1.0}},
        ],
    }


def test_a_run_leaves_out_and_records_test_scores_that_are_undefined(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _rare_data()
    monkeypatch.setattr(_runner, "load_setting", lambda cfg, setting, seed: (data, None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        res = _runner.run_experiment(parse_config(_raw_rare()), tmp_path, progress=False)
    assert res.complete
    und = pd.read_csv(tmp_path / "undefined.csv")
    auc = res.results[res.results["metric"] == "roc_auc"]
    # every (method, seed) either scored 'rare' or recorded it as undefined, never both
    for method in ("STL", "MTL", "STL logistic"):
        for seed in range(3):
            scored = ((auc["method"] == method) & (auc["seed"] == seed)
                      & (auc["task"] == "rare")).any()
            left_out = ((und["method"] == method) & (und["seed"] == seed)
                        & (und["task"] == "rare") & (und["metric"] == "roc_auc")).any()
            assert scored != left_out, (method, seed)
    assert len(und) > 0, "the rare task's test part should hold one class on some seed"
    assert set(und["task"]) == {"rare"}
    # accuracy is defined on one class, so it is never left out
    assert set(und["metric"]) == {"roc_auc"}
    assert np.isfinite(res.delta_m["delta_m"]).all()
    assert set(res.delta_m["method"]) >= {"MTL", "STL"}


def test_delta_m_of_a_seed_is_over_the_tasks_both_methods_scored() -> None:
    rows = []
    for seed, (a_stl, a_mtl, b_stl, b_mtl) in enumerate([(0.8, 0.88, 0.5, 0.6),
                                                         (0.6, 0.66, None, None)]):
        for task, stl, mtl in (("a", a_stl, a_mtl), ("b", b_stl, b_mtl)):
            if stl is None:
                continue  # undefined on this seed's test labels: no rows
            rows += [{"task": task, "method": "STL", "seed": seed, "metric": "roc_auc",
                      "value": stl},
                     {"task": task, "method": "MTL", "seed": seed, "metric": "roc_auc",
                      "value": mtl}]
    dm = compare(tidy_frame(rows), "roc_auc").delta_m.set_index("method")
    # seed 0: mean(+10 %, +20 %) = 15 %; seed 1: task a only, +10 %
    assert dm.loc["MTL", "delta_m"] == pytest.approx(np.mean([15.0, 10.0]))
    assert dm.loc["MTL", "n_seeds"] == 2


def test_a_zero_baseline_score_is_left_out_of_delta_m_with_a_warning() -> None:
    from polytask.metrics import UndefinedMetricWarning

    # seed 0: STL scores task b's ROC-AUC 0 (one positive ranked last); seed 1 does not
    values = [(0, "a", 0.8, 0.88), (0, "b", 0.0, 0.5), (1, "a", 0.5, 0.6), (1, "b", 0.5, 0.55)]
    rows = [{"task": t, "method": m, "seed": s, "metric": "roc_auc", "value": v}
            for s, t, stl, mtl in values for m, v in (("STL", stl), ("MTL", mtl))]
    with pytest.warns(UndefinedMetricWarning, match=r"roc_auc = 0 on 'b' \(seed 0\)"):
        cmp = compare(tidy_frame(rows), "roc_auc")
    dm = cmp.delta_m.set_index("method")
    # seed 0: task a only, +10 %; seed 1: mean(+20 %, +10 %) = 15 %
    assert dm.loc["MTL", "delta_m"] == pytest.approx(np.mean([10.0, 15.0]))
    per = cmp.per_task.set_index(["task", "method"])
    assert per.loc[("b", "MTL"), "gain_pct"] == pytest.approx(100 * (0.525 - 0.25) / 0.25)
    # an all-zero baseline mean has no relative gain: NaN, never inf
    rows0 = [{"task": "c", "method": m, "seed": 0, "metric": "roc_auc", "value": v}
             for m, v in (("STL", 0.0), ("MTL", 0.4))] + rows
    with pytest.warns(UndefinedMetricWarning):
        per0 = compare(tidy_frame(rows0), "roc_auc").per_task.set_index(["task", "method"])
    assert np.isnan(per0.loc[("c", "MTL"), "gain_pct"])
