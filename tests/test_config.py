"""Tests for the experiment configuration: schema, key-path errors, quick mode, registry."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from polytask import _registry as reg
from polytask._config import (
    QUICK_MAX_EPOCHS,
    QUICK_MAX_SAMPLES,
    ConfigError,
    ExperimentConfig,
    load_config,
    parse_config,
    quick_config,
)
from polytask._config_models import DeepModelConfig, LinearModelConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _base() -> dict[str, Any]:
    return {
        "name": "t",
        "seeds": 2,
        "dataset": {"synthetic": "mmoe", "params": {"n_samples": 100, "n_features": 4}},
        "models": [
            {"name": "STL", "type": "deep", "stl": True, "epochs": 1},
            {"name": "MTL", "type": "deep", "method": "mgda", "epochs": 1},
            {"name": "STL ridge", "type": "linear", "model": "ridge", "fit": "per_task"},
            {"name": "L21", "type": "linear", "model": "l21", "cv": {"alpha": [0.1, 1.0]}},
        ],
        "relate": {"model": {"method": "mean"}, "linear": {"model": "trace_norm"}},
    }


def _set(cfg: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(cfg)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()


def test_example_configs_exist_and_validate() -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    names = {f.stem for f in files}
    assert {"synthetic_mmoe", "synthetic_clusters", "school"} <= names
    assert names & {"yeast", "tox21"}, "one real classification example is required"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_each_example_loads_without_training(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.name == path.stem
    single = [m for m in cfg.models if m.single_task]
    assert single, "every example has a single-task baseline"
    names = {m.name for m in cfg.models}
    assert all(m.baseline in names for m in cfg.models)
    # every MTL model is compared with a single-task model
    by_name = {m.name: m for m in cfg.models}
    assert all(by_name[m.baseline].single_task for m in cfg.models)


def test_school_example_is_the_linear_protocol() -> None:
    cfg = load_config(EXAMPLES / "school.yaml")
    assert cfg.dataset.name == "school" and cfg.split.test == pytest.approx(0.25)
    kinds = {(m.model, m.fit) for m in cfg.models if isinstance(m, LinearModelConfig)}
    assert {("ridge", "per_task"), ("ridge", "pooled"), ("mean_regularized", "joint"),
            ("l21", "joint"), ("trace_norm", "joint"), ("clustered", "joint")} <= kinds
    linear = [m for m in cfg.models if isinstance(m, LinearModelConfig)]
    assert len(linear) == len(cfg.models)
    # every penalised model is tuned; the hierarchical Bayes model fits its own variances
    assert all(m.cv for m in linear if m.model != "hierarchical_bayes")
    assert ("hierarchical_bayes", "joint") in kinds


def test_clusters_example_has_a_relate_section() -> None:
    cfg = load_config(EXAMPLES / "synthetic_clusters.yaml")
    assert cfg.relate is not None and cfg.dataset.synthetic == "clustered"
    assert cfg.relate.gradient and cfg.relate.affinity_every and cfg.relate.linear is not None


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("models", 1, "method"), "mgdaa",
         r"^models\[1\]\.method: unknown 'mgdaa' \(did you mean 'mgda'\?\); known: \["),
        (("optimiser",), "adam", r"^optimiser: unknown key 'optimiser'"),
        (("dataset", "name"), "school", r"^dataset: give exactly one of 'synthetic'"),
        (("dataset", "synthetic"), "mmoee", r"^dataset\.synthetic: unknown 'mmoee'"),
        (("dataset", "params", "n_sample"), 10, r"^dataset\.params\.n_sample: unknown key"),
        (("models", 0, "lr"), -1.0, r"^models\[0\]\.lr: expected a number in \(0\.0, inf\)"),
        (("models", 0, "epochs"), 0, r"^models\[0\]\.epochs: expected an integer >= 1"),
        (("models", 1, "arch_params"), {"hidden": [0]},
         r"^models\[1\]\.arch_params: hidden must be a list of positive integers"),
        (("models", 1, "arch_params"), {"hiden": [4]},
         r"^models\[1\]\.arch_params\.hiden: unknown key 'hiden' \(did you mean 'hidden'"),
        (("models", 1, "method_params"), {"c": -1.0}, r"^models\[1\]\.method_params\.c: "),
        (("models", 0, "type"), _DELETE, r"^models\[0\]\.type: required"),
        (("models", 1, "name"), "STL", r"^models\[1\]\.name: 'STL' is already the name of "
                                       r"models\[0\]"),
        (("models", 2, "model"), "lasso", r"^models\[2\]\.model: unknown 'lasso'"),
        (("models", 2, "fit"), "pooledd", r"^models\[2\]\.fit: unknown 'pooledd'"),
        (("models", 3, "cv", "gamma"), [1.0], r"^models\[3\]\.cv\.gamma: unknown key"),
        (("models", 3, "cv", "alpha"), [], r"^models\[3\]\.cv\.alpha: expected a non-empty"),
        (("models", 3, "params"), {"alpha": 1.0}, r"^models\[3\]\.cv\.alpha: also fixed"),
        (("models", 3, "baseline"), "STLX", r"^models\[3\]\.baseline: unknown model 'STLX'"),
        (("models", 3, "solver"), "newton", r"^models\[3\]\.solver\.name: unknown 'newton'"),
        (("models", 3, "solver"), {"name": "fista", "params": {"max_iters": 5}},
         r"^models\[3\]\.solver\.params\.max_iters: unknown key"),
        (("baseline",), "nobody", r"^baseline: unknown model 'nobody'"),
        (("seeds",), [0, 0], r"^seeds: seeds must be distinct"),
        (("seeds",), 0, r"^seeds: expected an integer >= 1"),
        (("seeds",), [0, -1], r"^seeds\[1\]: expected an integer >= 0"),
        (("split",), {"test": 1.5}, r"^split\.test: expected a number in \(0\.0, 1\.0\)"),
        (("tasks",), {"metrics": ["auc"]}, r"^tasks\.metrics\[0\]: unknown 'auc'"),
        (("tasks",), {"weights": {"task_0": -1}}, r"^tasks\.weights\.task_0: expected a "),
        (("metric",), "rmsee", r"^metric: unknown 'rmsee' \(did you mean 'rmse'\?\)"),
        (("budget",), {"max_units": 0}, r"^budget\.max_units: expected an integer >= 1"),
        (("relate", "model", "method"), "ew",
         r"^relate\.model\.method: the short run needs a gradient aggregator"),
        (("relate", "grouping"), {"measure": "transfer"},
         r"^relate\.grouping\.measure: unknown 'transfer'; known: \['affinity', 'gradient', "
         r"'linear'\]"),
        (("relate", "transfer"), {"pairs": 0}, r"^relate\.transfer\.pairs: expected an integer"),
        (("relate", "colour"), 1, r"^relate\.colour: unknown key"),
    ],
)
def test_invalid_entries_name_their_key_path(path: tuple[Any, ...], value: Any,
                                             match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(_set(_base(), path, value))


def test_a_config_without_single_task_model_needs_a_baseline() -> None:
    cfg = _base()
    cfg["models"] = [m for m in cfg["models"] if not (m.get("stl") or m.get("fit"))]
    with pytest.raises(ConfigError, match=r"^baseline: no single-task model"):
        parse_config(cfg)
    cfg["baseline"] = "MTL"
    assert parse_config(cfg).model("L21").baseline == "MTL"


def test_missing_sections_are_named() -> None:
    with pytest.raises(ConfigError, match=r"^dataset: required"):
        parse_config({"models": [{"type": "deep", "stl": True}]})
    with pytest.raises(ConfigError, match=r"^models: required"):
        parse_config({"dataset": {"synthetic": "mmoe"}})
    with pytest.raises(ConfigError, match=r"^models\[0\]: expected a mapping"):
        parse_config({"dataset": {"synthetic": "mmoe"}, "models": ["STL"]})


def test_baselines_default_to_the_single_task_model_of_the_same_type() -> None:
    cfg = parse_config(_base())
    assert cfg.baseline == "STL"
    assert cfg.model("MTL").baseline == "STL"
    assert cfg.model("L21").baseline == "STL ridge"
    assert cfg.model("STL").baseline == "STL"
    assert cfg.model("STL ridge").baseline == "STL ridge"
    explicit = parse_config({**_base(), "baseline": "STL ridge"})
    assert {m.baseline for m in explicit.models} == {"STL ridge"}
    own = _set(_base(), ("models", 1, "baseline"), "STL ridge")
    assert parse_config(own).model("MTL").baseline == "STL ridge"


def test_defaults_and_settings() -> None:
    raw = _base()
    raw["settings"] = [{"name": "hi", "params": {"correlation": 0.9}},
                       {"params": {"correlation": 0.0}}]
    cfg = parse_config(raw)
    assert [s.name for s in cfg.settings] == ["hi", "correlation=0.0"]
    assert cfg.seeds == (0, 1)
    deep = cfg.model("MTL")
    assert isinstance(deep, DeepModelConfig)
    assert (deep.architecture, deep.optimizer, deep.mode) == ("shared_bottom", "adam",
                                                              "parameter")
    with pytest.raises(ConfigError, match=r"^settings\[0\]\.params\.rho: unknown key"):
        parse_config({**raw, "settings": [{"params": {"rho": 0.1}}]})
    with pytest.raises(ConfigError, match=r"^settings: duplicate setting names \['a'\]"):
        parse_config({**raw, "settings": [{"name": "a"}, {"name": "a"}]})


def test_numbers_written_as_yaml_strings_are_read() -> None:
    cfg = parse_config(_set(_base(), ("models", 0, "lr"), "1e-3"))
    assert cfg.model("STL").lr == pytest.approx(1e-3)  # type: ignore[union-attr]


def test_load_config_reports_yaml_errors_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: {synthetic: mmoe\nmodels: [\n")
    with pytest.raises(ConfigError, match=r"^bad\.yaml: invalid YAML \(line \d+\)"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, got list"):
        load_config(scalar)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_quick_config_shrinks_everything() -> None:
    raw = _base()
    raw["seeds"] = [3, 5, 7, 9]
    raw["dataset"]["params"]["n_samples"] = 10_000
    raw["models"][0]["epochs"] = 50
    raw["models"][3]["cv"] = {"alpha": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]}
    raw["relate"]["transfer"] = {"pairs": "all"}
    raw["settings"] = [{"name": "a", "params": {"n_samples": 9000}}]
    q = quick_config(parse_config(raw))
    assert q.quick and q.seeds == (3, 5)
    assert q.dataset.params["n_samples"] == QUICK_MAX_SAMPLES
    assert q.settings[0].params["n_samples"] == QUICK_MAX_SAMPLES
    assert q.model("STL").epochs == QUICK_MAX_EPOCHS  # type: ignore[union-attr]
    grid = q.model("L21").cv["alpha"]  # type: ignore[union-attr]
    assert len(grid) <= 3 and grid[0] == pytest.approx(0.001)
    assert set(grid) <= {0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0}
    assert q.model("L21").cv_folds == 2  # type: ignore[union-attr]
    assert q.relate is not None and q.relate.transfer_pairs == 1
    assert quick_config(q) is q


def test_registry_entries_build_with_their_defaults() -> None:
    import torch

    for name, entry in reg.architectures().items():
        outputs = {"a": 1, "b": 1 if name == "soft_sharing" else 2}
        model = entry.fn(3, outputs)
        out = model(torch.zeros(2, 3))
        assert {k: tuple(v.shape) for k, v in out.items()} == {
            t: (2, n) for t, n in outputs.items()}, name
    with pytest.raises(ValueError, match="same number of outputs"):
        reg.architectures()["soft_sharing"].fn(3, {"a": 1, "b": 2})
    for name, m in reg.methods().items():
        params = {"weights": {"a": 1.0, "b": 2.0}} if name == "static" else {}
        assert m.build(["a", "b"], params, seed=0) is not None, name
        assert "generator" not in m.params
    for name, lin in reg.linear_models().items():
        est = lin.build("regression", {})
        assert set(lin.params) <= set(est.get_params()), name
    for entry in reg.optimizers().values():
        assert "lr" not in entry.params
    assert set(reg.synthetic_generators()) == {"mmoe", "group_sparse", "low_rank",
                                               "clustered", "dirty"}


def test_linear_solver_is_built_from_the_registry() -> None:
    from polytask.linear import FISTA

    raw = _set(_base(), ("models", 3, "solver"), {"name": "fista", "params": {"max_iter": 7}})
    spec = parse_config(raw).model("L21")
    assert isinstance(spec, LinearModelConfig)
    est = spec.estimator("regression", {"alpha": 0.5})
    assert isinstance(est.solver, FISTA) and est.solver.max_iter == 7 and est.alpha == 0.5
    plain = parse_config(_base()).model("L21")
    assert isinstance(plain, LinearModelConfig) and plain.estimator("binary", {}).solver is None


def test_linear_entries_reject_unsupported_kinds() -> None:
    with pytest.raises(ValueError, match="cannot fit multiclass tasks"):
        reg.linear_models()["l21"].build("multiclass", {})
    ridge = reg.linear_models()["ridge"].build("binary", {"beta": 2.0})
    assert ridge.get_params()["alpha"] == 0.0 and ridge.get_params()["beta"] == 2.0
    hb = reg.linear_models()["hierarchical_bayes"]
    assert hb.build("regression", {"covariance": "full"}).covariance == "full"
    with pytest.raises(ValueError, match="HierarchicalBayesRegressor cannot fit binary"):
        hb.build("binary", {})
    with pytest.raises(ValueError, match="takes no solver"):
        hb.build("regression", {}, solver=object())


def test_x_keys_hold_yaml_anchors_that_models_merge(tmp_path: Path) -> None:
    text = """
x-deep: &deep {type: deep, epochs: 3, lr: 0.01, arch_params: {hidden: [8]}}
dataset: {synthetic: mmoe, params: {n_samples: 50}}
models:
  - {<<: *deep, name: STL, stl: true}
  - {<<: *deep, name: EW, method: ew, lr: 0.1}
"""
    (tmp_path / "c.yaml").write_text(text)
    cfg = load_config(tmp_path / "c.yaml")
    stl, ew = cfg.models
    assert isinstance(stl, DeepModelConfig) and isinstance(ew, DeepModelConfig)
    assert (stl.epochs, stl.lr, ew.epochs, ew.lr) == (3, 0.01, 3, 0.1)
    assert "x-deep" not in cfg.raw
    with pytest.raises(ConfigError, match="y-deep"):
        parse_config({"y-deep": 1, "dataset": {"synthetic": "mmoe"},
                      "models": [{"type": "deep", "stl": True}]})
