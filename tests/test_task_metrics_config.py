"""Per-task metrics in configurations: ``tasks.metrics`` as a mapping ``{task: [metrics]}``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from polytask._config import ConfigError, parse_config
from polytask._config_sections import parse_tasks
from polytask._experiment_data import task_set
from polytask._runner import run_experiment
from polytask.data import MultiTaskData
from polytask.metrics import DEFAULT_METRICS

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _raw(metrics: object, **extra: Any) -> dict[str, Any]:
    deep = {"arch_params": {"hidden": [4]}, "epochs": 1, "batch_size": 32, "lr": 0.01}
    raw: dict[str, Any] = {
        "name": "per_task_metrics",
        "seeds": 2,
        "dataset": {"synthetic": "mmoe", "params": {"n_samples": 120, "n_features": 4,
                                                    "n_tasks": 2, "correlation": 0.8}},
        "split": {"test": 0.3, "val": 0.25},
        "tasks": {"metrics": metrics},
        "models": [{"name": "STL", "type": "deep", "stl": True, **deep},
                   {"name": "MTL", "type": "deep", "method": "ew", **deep}],
    }
    raw.update(extra)
    return raw


def _mixed() -> MultiTaskData:
    """Two tasks of different kinds: a regression and a multiclass one."""
    X = [[0.0], [1.0], [2.0], [3.0]]
    Y = [[0.5, 0], [1.5, 1], [2.5, 2], [3.5, 0]]
    return MultiTaskData(X, Y, task_names=["score", "grade"],
                         kinds={"score": "regression", "grade": "multiclass"})


# ------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("value", "metrics", "task_metrics"),
    [
        (None, None, {}),
        (["mae", "mse"], ("mae", "mse"), {}),
        ({"task_0": ["r2"]}, None, {"task_0": ("r2",)}),
        ({"a": ["mse"], "b": ["roc_auc", "n_tp"]}, None, {"a": ("mse",),
                                                          "b": ("roc_auc", "n_tp")}),
    ],
)
def test_list_or_mapping(value: object, metrics: Any, task_metrics: Any) -> None:
    tc = parse_tasks({"metrics": value})
    assert tc.metrics == metrics and tc.task_metrics == task_metrics
    for task in ("task_0", "a", "b", "other"):
        assert tc.metrics_of(task) == task_metrics.get(task, metrics)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"chunk": ["chunk_f1_ids", "acuracy"]},
         r"^tasks\.metrics\.chunk\[1\]: unknown 'acuracy' \(did you mean 'accuracy'\?\)"),
        ({"chunk": ["n_fp", "accuracy"]},
         r"^tasks\.metrics\.chunk\[0\]: 'n_fp' is a count .* cannot be the primary metric"),
        ({"chunk": []}, r"^tasks\.metrics\.chunk: expected at least one metric"),
        ({"chunk": "accuracy"}, r"^tasks\.metrics\.chunk: expected a list"),
        ({"chunk": ["accuracy", "accuracy"]}, r"^tasks\.metrics\.chunk: duplicate names"),
        ({}, r"^tasks\.metrics: expected a list of metrics or a mapping \{task: \[metrics\]\}"),
        ([], r"^tasks\.metrics: expected at least one metric"),
    ],
)
def test_parse_errors_give_the_key_path(value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_tasks({"metrics": value})


# -------------------------------------------------------------------- applied to the data


def test_named_tasks_get_theirs_and_the_others_their_kind_defaults() -> None:
    cfg = parse_config(_raw({"grade": ["f1_macro", "accuracy"]}))
    tasks = task_set(cfg, _mixed())
    assert tasks["grade"].metric_names == ("f1_macro", "accuracy")
    assert tasks["grade"].primary_metric == "f1_macro"
    assert tasks["score"].metric_names == DEFAULT_METRICS["regression"]


def test_a_list_still_applies_to_every_task() -> None:
    cfg = parse_config(_raw(["mae"]))
    data = MultiTaskData([[0.0], [1.0]], [[1.0, 2.0], [3.0, 4.0]], task_names=["a", "b"])
    assert [t.metric_names for t in task_set(cfg, data)] == [("mae",), ("mae",)]


@pytest.mark.parametrize(
    ("metrics", "match"),
    [
        ({"grad": ["accuracy"]},
         r"^tasks\.metrics: unknown task 'grad'; the data have \['score', 'grade'\]"),
        ({"grade": ["accuracy", "mse"]},
         r"^tasks\.metrics\.grade\[1\]: metric 'mse' scores regression tasks, but task "
         r"'grade' is multiclass"),
        ({"score": ["roc_auc"]},
         r"^tasks\.metrics\.score\[0\]: metric 'roc_auc' scores classification tasks, but "
         r"task 'score' is regression"),
        (["mse"], r"^tasks\.metrics\[0\]: metric 'mse' scores regression tasks, but task "
                  r"'grade' is multiclass"),
    ],
)
def test_task_set_errors_name_the_key_and_the_known_tasks(metrics: object, match: str) -> None:
    cfg = parse_config(_raw(metrics))
    with pytest.raises(ConfigError, match=match):
        task_set(cfg, _mixed())


# -------------------------------------------------------------------------- end to end


def test_runner_reports_each_task_its_own_metrics(tmp_path: Path) -> None:
    cfg = parse_config(_raw({"task_1": ["r2", "mae"]}, metric="mae"))
    res = run_experiment(cfg, tmp_path / "run", progress=False)
    table = res.results
    per_task = {t: set(g["metric"]) for t, g in table.groupby("task")}
    assert per_task == {"task_0": set(DEFAULT_METRICS["regression"]), "task_1": {"r2", "mae"}}
    # Δm% on the metric every task reports, over both tasks
    assert res.metric == "mae"
    assert set(res.per_task["task"]) == {"task_0", "task_1"}
    dm = res.delta_m.set_index("method")["delta_m"]
    assert set(dm.index) == {"STL", "MTL"} and dm["STL"] == 0.0
