"""Tests for the experiment runner: identical splits, tables, resume, budget, relate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from polytask import _runner
from polytask._config import ConfigError, parse_config
from polytask._runner import UnitError, run_experiment
from polytask._summaries import comparisons
from polytask._units import slug
from polytask.experiment import TIDY_COLUMNS, tidy_frame

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _raw(**extra: Any) -> dict[str, Any]:
    deep = {"arch_params": {"hidden": [4]}, "epochs": 1, "batch_size": 32, "lr": 0.01}
    raw: dict[str, Any] = {
        "name": "tiny",
        "seeds": 2,
        "dataset": {"synthetic": "mmoe", "params": {"n_samples": 120, "n_features": 4,
                                                    "n_tasks": 2, "correlation": 0.8}},
        "split": {"test": 0.3, "val": 0.25},
        "models": [
            {"name": "STL", "type": "deep", "stl": True, **deep},
            {"name": "MTL", "type": "deep", "method": "mgda", **deep},
            {"name": "STL ridge", "type": "linear", "model": "ridge", "fit": "per_task",
             "cv": {"beta": [0.01, 1.0]}, "cv_folds": 2},
            {"name": "mean-reg", "type": "linear", "model": "mean_regularized",
             "params": {"beta": 0.01}, "cv": {"alpha": [0.1, 10.0]}, "cv_folds": 2},
        ],
    }
    raw.update(extra)
    return raw


N_UNITS = 2 * 4  # seeds x models


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    run_experiment(parse_config(_raw()), out, progress=False)
    return out


def _unit_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "units").rglob("seed-*.json"))


def test_run_directory_layout(finished: Path) -> None:
    for name in ("config.yaml", "run.json", "results.csv", "per_task.csv", "delta_m.csv",
                 "negative_transfer.csv"):
        assert (finished / name).is_file(), name
    assert len(_unit_files(finished)) == N_UNITS
    logs = sorted((finished / "logs").rglob("metrics.jsonl"))
    # MTL: one log per seed; STL: one per task and seed
    assert len(logs) == 2 * 1 + 2 * 2
    status = json.loads((finished / "run.json").read_text())
    assert status["complete"] and status["n_units"] == N_UNITS
    assert status["main_tasks"] == ["task_0", "task_1"] and status["metric"] == "mse"
    for path in _unit_files(finished):
        record = json.loads(path.read_text())
        assert {"key", "rows", "seed", "method", "setting", "seconds"} <= set(record)


def test_results_are_tidy_and_complete(finished: Path) -> None:
    table = pd.read_csv(finished / "results.csv")
    assert tuple(table.columns) == TIDY_COLUMNS
    assert set(table["method"]) == {"STL", "MTL", "STL ridge", "mean-reg"}
    counts = table[table["metric"] == "mse"].groupby(["method", "seed"]).size()
    assert (counts == 2).all() and len(counts) == N_UNITS
    assert np.isfinite(table["value"]).all()


def test_delta_m_matches_a_direct_computation(finished: Path) -> None:
    """Δm% from the definition: mean over tasks of -(m - b) / b, per seed, then over seeds."""
    table = pd.read_csv(finished / "results.csv")
    mse = table[table["metric"] == "mse"].set_index(["method", "seed", "task"])["value"]
    dm = pd.read_csv(finished / "delta_m.csv").set_index("method")
    for method, base in (("MTL", "STL"), ("mean-reg", "STL ridge"), ("STL", "STL")):
        per_seed = [np.mean([-100.0 * (mse[(method, s, t)] - mse[(base, s, t)])
                             / mse[(base, s, t)] for t in ("task_0", "task_1")])
                    for s in (0, 1)]
        assert dm.loc[method, "baseline"] == base
        assert dm.loc[method, "delta_m"] == pytest.approx(np.mean(per_seed))
        assert dm.loc[method, "delta_m_std"] == pytest.approx(np.std(per_seed, ddof=1))
    per = pd.read_csv(finished / "per_task.csv")
    assert set(per["baseline"]) == {"STL", "STL ridge"}


def test_every_model_sees_the_same_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    calls: list[tuple[str, int]] = []
    splits: dict[int, list[Any]] = {}
    load, train = _runner.load_setting, _runner.train_unit

    def counting_load(cfg: Any, setting: Any, seed: int) -> Any:
        calls.append((setting.name, seed))
        return load(cfg, setting, seed)

    def recording_train(model: Any, split: Any, seed: int, *args: Any) -> Any:
        splits.setdefault(seed, []).append(split)
        return train(model, split, seed, *args)

    monkeypatch.setattr(_runner, "load_setting", counting_load)
    monkeypatch.setattr(_runner, "train_unit", recording_train)
    run_experiment(parse_config(_raw()), tmp_path, progress=False)
    assert sorted(calls) == [("default", 0), ("default", 1)]  # drawn once per seed
    for seen in splits.values():
        assert len(seen) == 4 and all(s is seen[0] for s in seen)  # one split object
    a, b = splits[0][0].test, splits[1][0].test
    assert not np.array_equal(a.feature_matrix(), b.feature_matrix())  # seeds differ


def test_rerun_trains_nothing_and_touches_no_unit(finished: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(finished, run_dir)
    mtimes = {p: p.stat().st_mtime_ns for p in _unit_files(run_dir)}
    trained: list[str] = []
    train = _runner.train_unit
    def counting(m: Any, *a: Any) -> Any:
        trained.append(m.name)
        return train(m, *a)

    monkeypatch.setattr(_runner, "train_unit", counting)
    again = run_experiment(parse_config(_raw()), run_dir, progress=False)
    assert trained == [] and again.n_trained == 0 and again.n_reused == N_UNITS
    assert {p: p.stat().st_mtime_ns for p in _unit_files(run_dir)} == mtimes
    pd.testing.assert_frame_equal(again.results, pd.read_csv(finished / "results.csv"))


def test_interrupted_run_resumes_with_the_same_numbers(finished: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    run_dir = tmp_path / "resumed"
    done = _unit_files(finished)[::2]  # pretend half the units finished before a crash
    for path in done:
        target = run_dir / path.relative_to(finished)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    (run_dir / "units" / ".half-written.json.tmp").write_text("{")  # a crashed write
    trained: list[tuple[str, int]] = []
    train = _runner.train_unit
    def counting(m: Any, split: Any, seed: int, *a: Any) -> Any:
        trained.append((m.name, seed))
        return train(m, split, seed, *a)

    monkeypatch.setattr(_runner, "train_unit", counting)
    result = run_experiment(parse_config(_raw()), run_dir, progress=False)
    assert len(trained) == N_UNITS - len(done) == result.n_trained
    assert result.n_reused == len(done)
    done_names = {(json.loads(p.read_text())["method"], json.loads(p.read_text())["seed"])
                  for p in done}
    assert not done_names & set(trained)
    key = ["setting", "method", "seed", "task", "metric"]
    full = pd.read_csv(finished / "results.csv").sort_values(key).reset_index(drop=True)
    got = result.results.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, full, check_exact=False, rtol=1e-6)


def test_a_changed_model_is_retrained_alone(finished: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "changed"
    shutil.copytree(finished, run_dir)
    raw = _raw()
    raw["models"][1]["lr"] = 0.02
    result = run_experiment(parse_config(raw), run_dir, progress=False)
    assert result.n_trained == 2 and result.n_reused == N_UNITS - 2


def test_budget_stops_and_a_rerun_finishes(tmp_path: Path) -> None:
    partial = run_experiment(parse_config(_raw(budget={"max_units": 3})), tmp_path,
                             progress=False)
    assert not partial.complete and partial.n_trained == 3
    assert len(_unit_files(tmp_path)) == 3
    assert json.loads((tmp_path / "run.json").read_text())["complete"] is False
    rest = run_experiment(parse_config(_raw()), tmp_path, progress=False)
    assert rest.complete and rest.n_trained == N_UNITS - 3 and rest.n_reused == 3


def test_auxiliary_tasks_are_trained_but_not_compared(tmp_path: Path) -> None:
    raw = _raw(tasks={"auxiliary": ["task_2"], "weights": {"task_2": 0.5}})
    raw["dataset"]["params"]["n_tasks"] = 3
    raw["models"] = raw["models"][:2]
    result = run_experiment(parse_config(raw), tmp_path, progress=False)
    mtl_tasks = set(result.results.loc[result.results["method"] == "MTL", "task"])
    stl_tasks = set(result.results.loc[result.results["method"] == "STL", "task"])
    assert mtl_tasks == {"task_0", "task_1", "task_2"}
    assert stl_tasks == {"task_0", "task_1"}  # STL trains the main tasks only
    assert set(result.per_task["task"]) == {"task_0", "task_1"}


def test_a_failing_unit_is_named(tmp_path: Path) -> None:
    raw = _raw()
    raw["models"] = [raw["models"][0],
                     {"name": "bad", "type": "deep", "method": "static", "epochs": 1,
                      "method_params": {"weights": {"nope": 1.0}}}]
    with pytest.raises(UnitError, match=r"^default/bad/seed 0: "):
        run_experiment(parse_config(raw), tmp_path, progress=False)
    # the STL unit that finished before the failure is kept
    assert len(_unit_files(tmp_path)) == 1


def test_task_names_are_checked_against_the_data(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^tasks\.select: unknown task 'nope'"):
        run_experiment(parse_config(_raw(tasks={"select": ["task_0", "nope"]})), tmp_path,
                       progress=False)
    with pytest.raises(ConfigError, match=r"^tasks\.auxiliary: at least one task must stay"):
        run_experiment(parse_config(_raw(tasks={"auxiliary": ["task_0", "task_1"]})),
                       tmp_path, progress=False)


def test_comparisons_flag_negative_transfer_and_chain_baselines() -> None:
    rows = []
    for s in range(4):
        for t, stl, mtl, other in (("a", 1.0, 2.0 + 0.01 * s, 0.5), ("b", 1.0, 0.9, 0.5)):
            rows += [{"task": t, "method": "STL", "seed": s, "metric": "mse", "value": stl},
                     {"task": t, "method": "MTL", "seed": s, "metric": "mse", "value": mtl},
                     {"task": t, "method": "X", "seed": s, "metric": "mse", "value": other}]
    per, dm, neg = comparisons(tidy_frame(rows), {"STL": "STL", "MTL": "STL", "X": "MTL"},
                               "mse", ["a", "b"])
    flags = neg.set_index(["method", "task"])["negative"]
    assert bool(flags[("MTL", "a")]) and not bool(flags[("MTL", "b")])
    dm = dm.set_index("method")
    assert dm.loc["X", "baseline"] == "MTL" and dm.loc["MTL", "baseline"] == "STL"
    assert len(dm) == 3 and len(per) == 6
    # MTL vs STL: task a -101.5 %, task b +10 % on average
    assert dm.loc["MTL", "delta_m"] == pytest.approx((-101.5 + 10.0) / 2)


def test_synthetic_examples_run_in_quick_mode(tmp_path: Path) -> None:
    from polytask._relate_runner import run_relatedness

    bench = run_experiment(EXAMPLES / "synthetic_mmoe.yaml", tmp_path / "mmoe", quick=True,
                           progress=False)
    assert bench.complete and set(bench.delta_m["setting"]) == {"correlated", "uncorrelated"}
    related = run_relatedness(EXAMPLES / "synthetic_clusters.yaml", tmp_path / "clusters",
                              quick=True, progress=False)
    assert related.complete and related.summaries["default"]["grouping"]["groups"]


@pytest.fixture(scope="module")
def related(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, np.ndarray]:
    from polytask._relate_runner import run_relatedness
    from polytask.data import clustered

    params: dict[str, Any] = {"n_samples": 80, "n_features": 8, "n_tasks": 4, "n_clusters": 2,
              "within_cluster_std": 0.05, "noise": 0.1}
    deep = {"arch_params": {"hidden": [8]}, "epochs": 2, "batch_size": 32, "lr": 0.01}
    raw = {"name": "rel", "seeds": 2,
           "dataset": {"synthetic": "clustered", "params": params, "seed": 3},
           "models": [{"name": "STL", "type": "deep", "stl": True, **deep}],
           "relate": {"model": {"method": "mean", **deep}, "train": {"method": "ew", **deep},
                      "affinity": {"every": 1}, "linear": {"model": "mean_regularized",
                                                           "params": {"alpha": 1.0,
                                                                      "beta": 0.01}},
                      "transfer": {"pairs": 1},
                      "grouping": {"k": 2, "measure": "linear"}}}
    out = tmp_path_factory.mktemp("relate")
    result = run_relatedness(parse_config(raw), out, progress=False)
    truth = clustered(random_state=3, **params).truth["clusters"]
    return out, result, truth


def test_relate_writes_matrices_grouping_and_summary(related: tuple[Path, Any, Any]) -> None:
    out, result, _ = related
    folder = out / "relatedness" / "default"
    for name in ("gradient_cosine.csv", "gradient_conflict.csv", "affinity.csv",
                 "linear_cosine.csv", "transfer_gain.csv", "grouping.json", "summary.json",
                 "results.csv", "delta_m.csv", "per_task.csv", "negative_transfer.csv"):
        assert (folder / name).is_file(), name
    m = result.matrices["default"]
    cos = m["gradient_cosine"].to_numpy()
    np.testing.assert_allclose(cos, cos.T, atol=1e-12)  # a cosine matrix is symmetric
    assert np.all(np.abs(cos) <= 1 + 1e-9)
    conflict = m["gradient_conflict"].to_numpy()
    assert np.all((conflict >= 0) & (conflict <= 1))
    gain = m["transfer_gain"].to_numpy()
    assert np.isfinite(gain).sum() == 4 + 2  # diagonal + one pair, both directions
    summary = result.summaries["default"]
    assert set(summary["delta_m"]) == {"groups", "all tasks"}
    assert isinstance(summary["groups_beat_all_tasks"], bool)
    assert result.complete and result.n_trained > 0


def test_relate_linear_measure_recovers_the_planted_clusters(related: tuple[Path, Any, Any]
                                                             ) -> None:
    _, result, truth = related
    cos = result.matrices["default"]["linear_cosine"].to_numpy()
    same = truth[:, None] == truth[None, :]
    off = ~np.eye(len(truth), dtype=bool)
    assert cos[same & off].min() > cos[~same].max()
    groups = result.summaries["default"]["grouping"]["groups"]
    found = sorted(sorted(int(t.split("_")[1]) for t in g) for g in groups)
    planted = sorted(sorted(np.flatnonzero(truth == c).tolist()) for c in set(truth))
    assert found == planted


def test_relate_groups_are_scored_from_their_serving_model(related: tuple[Path, Any, Any]
                                                           ) -> None:
    out, result, _ = related
    table = pd.read_csv(out / "relatedness" / "default" / "results.csv")
    assert set(table["method"]) == {"STL", "all tasks", "groups"}
    grouping = result.summaries["default"]["grouping"]
    units = out / "units" / "relate" / "default" / "train"
    for g, group in enumerate(grouping["groups"]):
        record = json.loads((units / slug("+".join(group)) / "seed-0.json").read_text())
        for row in record["rows"]:
            if grouping["served_by"][row["task"]] != g:
                continue
            got = table[(table["method"] == "groups") & (table["seed"] == 0)
                        & (table["task"] == row["task"]) & (table["metric"] == row["metric"])]
            assert got["value"].item() == pytest.approx(row["value"])


def test_relate_rerun_reuses_every_unit(related: tuple[Path, Any, Any]) -> None:
    from polytask._relate_runner import run_relatedness

    out, first, _ = related
    again = run_relatedness(load_raw_config(out), out, progress=False)
    assert again.n_trained == 0 and again.n_reused == first.n_trained + first.n_reused


def load_raw_config(run_dir: Path) -> Any:
    """The configuration a run directory was made with (from its config.yaml)."""
    import yaml

    return parse_config(yaml.safe_load((run_dir / "config.yaml").read_text()))


def test_relate_needs_a_relate_section(tmp_path: Path) -> None:
    from polytask._relate_runner import run_relatedness

    with pytest.raises(ConfigError, match=r"^relate: the configuration has no relate section"):
        run_relatedness(parse_config(_raw()), tmp_path, progress=False)


def test_split_standardises_with_training_statistics_only() -> None:
    from polytask._experiment_data import load_setting, split_setting

    cfg = parse_config(_raw())
    data, test = load_setting(cfg, cfg.settings[0], 0)
    split = split_setting(cfg, data, test, 0)
    X = split.fit.feature_matrix()
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(X.std(axis=0), 1.0, atol=1e-12)
    assert split.train.n_samples + split.val.n_samples == split.fit.n_samples
    assert split.fit.n_samples + split.test.n_samples == 120
    assert not np.allclose(split.test.feature_matrix().mean(axis=0), 0.0, atol=1e-3)
    assert [t.role for t in split.tasks] == ["main", "main"]
    with pytest.raises(ConfigError, match=r"^split\.published: synthetic data have no"):
        load_setting(parse_config(_raw(split={"published": True})), cfg.settings[0], 0)


def test_shards_partition_the_units_and_jobs_reproduce_one_process(finished: Path,
                                                                   tmp_path: Path) -> None:
    cfg = parse_config(_raw())
    part = run_experiment(cfg, tmp_path / "sharded", progress=False, shard=(1, 3))
    assert not part.complete
    assert part.n_trained == len(range(1, N_UNITS, 3))
    rest = [run_experiment(cfg, tmp_path / "sharded", progress=False, shard=(i, 3))
            for i in (0, 2)]
    assert sum(r.n_trained for r in rest) + part.n_trained == N_UNITS
    assert rest[-1].complete
    parallel = run_experiment(cfg, tmp_path / "jobs", progress=False, jobs=2)
    assert parallel.complete and parallel.n_trained == 0 and parallel.n_reused == N_UNITS
    key = ["setting", "method", "seed", "task", "metric"]
    full = pd.read_csv(finished / "results.csv").sort_values(key).reset_index(drop=True)
    for run in ("sharded", "jobs"):
        got = pd.read_csv(tmp_path / run / "results.csv").sort_values(key)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), full, check_exact=False,
                                      rtol=1e-6)
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        run_experiment(cfg, tmp_path / "bad", jobs=0)
    with pytest.raises(ValueError, match="shard must be"):
        run_experiment(cfg, tmp_path / "bad", shard=(3, 3))


def test_unit_keys_ignore_fields_left_at_their_defaults() -> None:
    base = parse_config(_raw())
    spec = _runner.data_spec(base, base.settings[0])
    assert "task_metrics" not in spec["tasks"]  # keys of runs made before the field existed
    per_task = parse_config(_raw(tasks={"metrics": {"task_0": ["mae"]}}))
    spec2 = _runner.data_spec(per_task, per_task.settings[0])
    assert spec2["tasks"]["task_metrics"] == {"task_0": ("mae",)}


def test_a_unit_named_after_a_large_group_of_tasks_is_stored(tmp_path: Path) -> None:
    from polytask._units import Unit, UnitStore

    group = "+".join(f"school_{i:03d}" for i in range(59))  # a relate group on School
    store = UnitStore(tmp_path / "units")
    unit = Unit(("relate", "default", "train", group), 0, "k" * 64, "a long group")
    store.save(unit, {"rows": [], "value": 1})
    assert store.load(unit)["value"] == 1
    other = Unit(("relate", "default", "train", group + "+school_059"), 0, "j" * 64, "x")
    assert store.load(other) is None
