"""Tests for ``split.method``: k-fold and scaffold splits of an experiment, config errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polytask._config import ConfigError, parse_config
from polytask._config_sections import SplitConfig, parse_split
from polytask._experiment_data import load_setting, split_setting
from polytask._experiment_splits import RowParts, kfold_fit_test, scaffold_fractions
from polytask._runner import data_spec
from polytask._units import unit_key
from polytask.data import MultiTaskData

# ---------------------------------------------------------------------------- helpers


def _raw(split: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "tiny",
        "seeds": 3,
        "dataset": {"synthetic": "mmoe", "seed": 0, "standardize": False,
                    "params": {"n_samples": 40, "n_features": 3, "n_tasks": 2}},
        "models": [{"name": "STL ridge", "type": "linear", "model": "ridge",
                    "fit": "per_task", "params": {"beta": 1.0}}],
    }
    if split is not None:
        raw["split"] = split
    raw.update(extra)
    return raw


def _row_ids(part: MultiTaskData, reference: np.ndarray) -> np.ndarray:
    """Indices in ``reference`` of the rows of ``part`` (features are distinct rows)."""
    X = part.feature_matrix()
    hits = np.all(np.isclose(X[:, None, :], reference[None, :, :]), axis=2)
    assert np.all(hits.sum(axis=1) == 1)
    return np.sort(hits.argmax(axis=1))


def _task_ids(part: MultiTaskData, task: str, reference: np.ndarray) -> np.ndarray:
    """Indices of the samples of ``task`` in ``reference`` (its distinct 1-feature values)."""
    x = part.task(task)[0][:, 0]
    hits = np.isclose(x[:, None], reference[None, :])
    assert np.all(hits.sum(axis=1) == 1)
    return np.sort(hits.argmax(axis=1))


# ---------------------------------------------------------------------- configuration


def test_default_split_is_random() -> None:
    split = parse_config(_raw()).split
    assert split == SplitConfig()
    assert (split.method, split.folds, split.fold_seed) == ("random", None, 0)


def test_kfold_is_parsed() -> None:
    split = parse_config(_raw({"method": "kfold", "folds": 4, "fold_seed": 7, "val": 0.3})).split
    assert (split.method, split.folds, split.fold_seed) == ("kfold", 4, 7)
    assert split.val == pytest.approx(0.3)
    assert split.test == pytest.approx(1 / 4)


def test_scaffold_is_parsed() -> None:
    split = parse_split({"method": "scaffold", "test": 0.1, "val": 0.1})
    assert (split.method, split.test, split.folds) == ("scaffold", 0.1, None)


@pytest.mark.parametrize("split, match", [
    ({"method": "stratified"}, r"^split\.method: unknown 'stratified'.*known: \['kfold', "),
    ({"method": "kfolds", "folds": 3}, r"^split\.method: .*did you mean 'kfold'"),
    ({"method": 3}, r"^split\.method: unknown 3"),
    ({"nfolds": 3}, r"^split\.nfolds: unknown key 'nfolds'"),
    ({"method": "kfold"}, r"^split\.folds: required by split\.method 'kfold'"),
    ({"method": "kfold", "folds": 1}, r"^split\.folds: expected an integer >= 2, got 1"),
    ({"method": "kfold", "folds": 2.5}, r"^split\.folds: expected an integer, got 2\.5"),
    ({"method": "kfold", "folds": True}, r"^split\.folds: expected an integer"),
    ({"method": "kfold", "folds": 5, "test": 0.2}, r"^split\.test: not used by split\.method"),
    ({"method": "kfold", "folds": 3, "fold_seed": -1},
     r"^split\.fold_seed: expected an integer >= 0"),
    ({"method": "kfold", "folds": 3, "val": 1.0}, r"^split\.val: expected a number in \(0"),
    ({"folds": 5}, r"^split\.folds: only used by split\.method 'kfold', not 'random'"),
    ({"method": "scaffold", "fold_seed": 1}, r"^split\.fold_seed: only used by .*'scaffold'"),
    ({"method": "scaffold", "published": True},
     r"^split\.published: a published split cannot be combined with split\.method 'scaffold'"),
    ({"method": "kfold", "folds": 3, "published": True}, r"^split\.published: .*'kfold'"),
])
def test_split_errors_name_the_key(split: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(_raw(split))


def test_new_split_fields_enter_the_unit_keys() -> None:
    def key(split: dict[str, Any] | None) -> str:
        cfg = parse_config(_raw(split))
        return unit_key(data_spec(cfg, cfg.settings[0]))

    random = key(None)
    assert random == key({"method": "random"})  # the default spelled out: same units
    variants = [key({"method": "kfold", "folds": 3}), key({"method": "kfold", "folds": 4}),
                key({"method": "kfold", "folds": 3, "fold_seed": 1}),
                key({"method": "scaffold"})]
    assert len({random, *variants}) == 5


# -------------------------------------------------------------------------------- kfold


@pytest.mark.parametrize("k, fold_seed", [(3, 0), (4, 5)])
def test_kfold_tests_every_row_once_across_seeds(k: int, fold_seed: int) -> None:
    cfg = parse_config(_raw({"method": "kfold", "folds": k, "fold_seed": fold_seed,
                             "val": 0.25}, seeds=k))
    data, preset = load_setting(cfg, cfg.settings[0], 0)
    assert preset is None
    X = data.feature_matrix()
    n = X.shape[0]
    tests = []
    for seed in range(k):
        split = split_setting(cfg, data, preset, seed)
        test, fit = _row_ids(split.test, X), _row_ids(split.fit, X)
        train, val = _row_ids(split.train, X), _row_ids(split.val, X)
        # each seed: fit and test partition the rows, train and val partition fit
        assert np.array_equal(np.sort(np.r_[fit, test]), np.arange(n))
        assert np.array_equal(np.sort(np.r_[train, val]), fit)
        assert abs(val.size - 0.25 * fit.size) <= 1
        tests.append(test)
    counts = np.bincount(np.concatenate(tests), minlength=n)
    assert np.all(counts == 1)  # every row is a test row exactly once
    assert {t.size for t in tests} <= {n // k, -(-n // k)}
    # seed k wraps around to fold 0 with another validation draw
    again = split_setting(cfg, data, preset, k)
    assert np.array_equal(_row_ids(again.test, X), tests[0])
    first = split_setting(cfg, data, preset, 0)
    assert not np.array_equal(_row_ids(again.val, X), _row_ids(first.val, X))


def test_kfold_folds_depend_on_fold_seed_only() -> None:
    folds = []
    for fold_seed in (0, 1):
        cfg = parse_config(_raw({"method": "kfold", "folds": 4, "fold_seed": fold_seed}))
        data, _ = load_setting(cfg, cfg.settings[0], 0)
        X = data.feature_matrix()
        folds.append([_row_ids(split_setting(cfg, data, None, s).test, X) for s in range(4)])
    assert any(not np.array_equal(a, b) for a, b in zip(*folds, strict=True))
    # loading again gives the same folds
    cfg = parse_config(_raw({"method": "kfold", "folds": 4, "fold_seed": 1}))
    data, _ = load_setting(cfg, cfg.settings[0], 2)
    X = data.feature_matrix()
    assert all(np.array_equal(_row_ids(split_setting(cfg, data, None, s).test, X), f)
               for s, f in enumerate(folds[1]))


def _per_task_data(sizes: dict[str, int]) -> tuple[MultiTaskData, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    xs = {t: rng.permutation(n) + 1000.0 * i for i, (t, n) in enumerate(sizes.items())}
    data = MultiTaskData.from_tasks({t: (x[:, None], rng.normal(size=x.size))
                                     for t, x in xs.items()})
    return data, xs


@pytest.mark.parametrize("k", [2, 5])
def test_kfold_folds_each_task_of_per_task_data(k: int) -> None:
    sizes = {"a": 7, "b": 12, "c": 10}
    data, xs = _per_task_data(sizes)
    cfg = parse_config(_raw({"method": "kfold", "folds": k}, seeds=k))
    tests = {t: [] for t in sizes}  # type: dict[str, list[np.ndarray]]
    for seed in range(k):
        split = split_setting(cfg, data, None, seed)
        for t, n in sizes.items():
            test = _task_ids(split.test, t, xs[t])
            fit = _task_ids(split.fit, t, xs[t])
            assert np.array_equal(np.sort(np.r_[fit, test]), np.arange(n))
            assert test.size in (n // k, -(-n // k))  # the task is folded on its own
            tests[t].append(test)
    for t, n in sizes.items():
        assert np.all(np.bincount(np.concatenate(tests[t]), minlength=n) == 1)


def test_kfold_task_with_too_few_samples_is_named() -> None:
    data, _ = _per_task_data({"big": 12, "small": 3})
    cfg = parse_config(_raw({"method": "kfold", "folds": 4}))
    with pytest.raises(ConfigError, match=r"^split\.folds: task 'small' has 3 sample\(s\) "
                                          r"with a label, fewer than the 4 folds"):
        split_setting(cfg, data, None, 0)
    # selecting the other task alone is fine
    ok = parse_config(_raw({"method": "kfold", "folds": 4}, tasks={"select": ["big"]}))
    assert split_setting(ok, data, None, 0).test.task_sizes == {"big": 3}


def test_kfold_counts_observed_labels_of_shared_data() -> None:
    Y = np.column_stack([np.arange(10.0), np.r_[1.0, 2.0, np.full(8, np.nan)]])
    data = MultiTaskData(np.arange(20.0).reshape(10, 2), Y, task_names=["full", "sparse"])
    cfg = parse_config(_raw({"method": "kfold", "folds": 3}))
    with pytest.raises(ConfigError, match=r"^split\.folds: task 'sparse' has 2 sample"):
        split_setting(cfg, data, None, 0)


def test_kfold_fold_without_labels_is_a_config_error() -> None:
    # 3 labels for 3 folds, but the permutation may put two in one fold
    Y = np.column_stack([np.arange(9.0), np.r_[1.0, 2.0, 3.0, np.full(6, np.nan)]])
    data = MultiTaskData(np.arange(18.0).reshape(9, 2), Y, task_names=["full", "sparse"])
    errors = 0
    for fold_seed in range(6):
        split = SplitConfig(method="kfold", folds=3, fold_seed=fold_seed)
        try:
            kfold_fit_test(data, split, 0)
        except ConfigError as exc:
            assert str(exc).startswith("split.folds: task 'sparse' has no observed label")
            errors += 1
    assert errors > 0


def test_kfold_runs_end_to_end_on_a_mulan_file(tmp_path: Path) -> None:
    from polytask._runner import run_experiment

    rng = np.random.default_rng(1)
    X = rng.normal(size=(24, 3))
    Y = X @ rng.normal(size=(3, 2)) + 0.1 * rng.normal(size=(24, 2))
    lines = ["@relation enb", *[f"@attribute x{j} numeric" for j in range(3)],
             "@attribute Y1 numeric", "@attribute Y2 numeric", "@data"]
    lines += [",".join(f"{v:.6f}" for v in row) for row in np.hstack([X, Y])]
    (tmp_path / "enb.arff").write_text("\n".join(lines) + "\n")
    raw = _raw({"method": "kfold", "folds": 3}, seeds=3, metric="rrmse",
               dataset={"name": "enb", "params": {"path": str(tmp_path / "enb.arff")}},
               tasks={"metrics": ["rrmse", "mse"]})
    raw["models"].append({"name": "pooled", "type": "linear", "model": "ridge",
                          "fit": "pooled", "params": {"beta": 1.0}})
    result = run_experiment(parse_config(raw), tmp_path / "run", progress=False)
    table = result.results
    assert sorted(table["seed"].unique()) == [0, 1, 2]
    assert set(table["metric"]) == {"rrmse", "mse"} and result.metric == "rrmse"
    assert np.all(np.isfinite(table["value"]))


# ----------------------------------------------------------------------------- scaffold

_SMILES = [
    "c1ccccc1C", "c1ccccc1O", "c1ccccc1N", "c1ccccc1CC", "c1ccccc1Cl", "c1ccccc1F",
    "c1ccncc1C", "c1ccncc1O", "c1ccncc1N", "C1CCCCC1C", "C1CCCCC1O",
    "c1ccc2ccccc2c1", "c1ccc2ccccc2c1O", "CCO", "CCCC", "CC(=O)O", "C1CC1C",
    "c1ccoc1C", "c1ccsc1", "c1cc[nH]c1", "c1ccc(cc1)-c1ccccc1",
]


def _clintox_csv(tmp_path: Path, smiles: list[str], ct_tox: list[str] | None = None) -> Path:
    rng = np.random.default_rng(0)
    fda = rng.integers(0, 2, len(smiles))
    tox = ct_tox if ct_tox is not None else [str(v) for v in rng.integers(0, 2, len(smiles))]
    rows = [f"{s},{a},{b}" for s, a, b in zip(smiles, fda, tox, strict=True)]
    path = tmp_path / "clintox.csv"
    path.write_text("smiles,FDA_APPROVED,CT_TOX\n" + "\n".join(rows) + "\n")
    return path


def _scaffold_raw(path: Path, **split: Any) -> dict[str, Any]:
    return _raw({"method": "scaffold", "test": 0.2, "val": 0.25, **split},
                dataset={"name": "clintox", "params": {"path": str(path)},
                         "featurizer": {"name": "morgan", "params": {"n_bits": 128}},
                         "standardize": False},
                tasks={"metrics": ["roc_auc", "n_tp"]})


def _reference_scaffolds(smiles: list[str]) -> list[str]:
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    return [Chem.MolToSmiles(MurckoScaffold.GetScaffoldForMol(Chem.MolFromSmiles(s)))
            for s in smiles]


def test_scaffold_fractions_take_val_from_the_training_part() -> None:
    train, val, test = scaffold_fractions(0.2, 0.25)
    assert (train, val, test) == pytest.approx((0.6, 0.2, 0.2))
    assert sum(scaffold_fractions(0.1, 0.1)) == pytest.approx(1.0)


def test_scaffold_split_keeps_scaffolds_apart_and_is_seed_free(tmp_path: Path) -> None:
    from polytask.data import morgan_fingerprints, scaffold_split

    cfg = parse_config(_scaffold_raw(_clintox_csv(tmp_path, _SMILES)))
    data, parts = load_setting(cfg, cfg.settings[0], 0)
    assert isinstance(parts, RowParts)
    n = len(_SMILES)
    rows = [parts.train, parts.val, parts.test]
    assert np.array_equal(np.sort(np.concatenate(rows)), np.arange(n))
    assert all(r.size > 0 for r in rows)
    # no scaffold in two parts; the largest scaffold (benzene, 6 molecules) is trained on
    scaffolds = np.array(_reference_scaffolds(_SMILES))
    sets = [set(scaffolds[r]) for r in rows]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert "c1ccccc1" in sets[0]
    # the fractions handed to the splitter are (1 - t - v(1 - t), v(1 - t), t)
    expected = scaffold_split(_SMILES, (0.6, 0.2, 0.2))
    assert all(np.array_equal(a, b) for a, b in zip(rows, expected, strict=True))
    # features: Morgan fingerprints of the SMILES, in the file's order
    X = morgan_fingerprints(_SMILES, n_bits=128)[0].astype(float)
    np.testing.assert_array_equal(data.feature_matrix(), X)
    # every seed sees the same three parts
    for seed in (0, 1, 5):
        split = split_setting(cfg, data, parts, seed)
        for part, r in zip((split.train, split.val, split.test), rows, strict=True):
            np.testing.assert_array_equal(part.feature_matrix(), X[r])
        np.testing.assert_array_equal(split.fit.feature_matrix(), X[parts.fit])
        assert [t.name for t in split.tasks] == ["FDA_APPROVED", "CT_TOX"]


def test_scaffold_split_standardises_with_training_rows(tmp_path: Path) -> None:
    raw = _scaffold_raw(_clintox_csv(tmp_path, _SMILES))
    raw["dataset"]["standardize"] = True
    cfg = parse_config(raw)
    data, parts = load_setting(cfg, cfg.settings[0], 0)
    assert isinstance(parts, RowParts)
    split = split_setting(cfg, data, parts, 0)
    X = data.feature_matrix()
    mean, std = X[parts.fit].mean(axis=0), X[parts.fit].std(axis=0)
    scaled = (X - mean) / np.where(std > 0, std, 1.0)
    np.testing.assert_allclose(split.test.feature_matrix(), scaled[parts.test])
    np.testing.assert_allclose(split.train.feature_matrix(), scaled[parts.train])
    np.testing.assert_allclose(split.fit.feature_matrix().mean(axis=0), 0.0, atol=1e-12)


def test_scaffold_without_smiles_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^split\.method: 'scaffold' needs molecules .* "
                                          r"synthetic data have none"):
        cfg = parse_config(_raw({"method": "scaffold"}))
        load_setting(cfg, cfg.settings[0], 0)
    (tmp_path / "enb.arff").write_text(
        "@relation enb\n@attribute x numeric\n@attribute Y1 numeric\n@attribute Y2 numeric\n"
        "@data\n" + "".join(f"{i},{i},{-i}\n" for i in range(6)))
    cfg = parse_config(_raw({"method": "scaffold"}, dataset={
        "name": "enb", "params": {"path": str(tmp_path / "enb.arff")}}))
    with pytest.raises(ConfigError, match=r"^split\.method: 'scaffold' needs molecules given "
                                          r"as SMILES, but dataset 'enb' has none"):
        load_setting(cfg, cfg.settings[0], 0)


def test_scaffold_needs_a_featurizer(tmp_path: Path) -> None:
    raw = _scaffold_raw(_clintox_csv(tmp_path, _SMILES))
    del raw["dataset"]["featurizer"]
    cfg = parse_config(raw)
    with pytest.raises(ConfigError, match=r"^dataset\.featurizer: dataset 'clintox' holds raw "
                                          r"inputs \(SMILES\); choose a featurizer"):
        load_setting(cfg, cfg.settings[0], 0)


def test_scaffold_with_an_empty_part_is_a_config_error(tmp_path: Path) -> None:
    same = ["c1ccccc1C", "c1ccccc1O", "c1ccccc1N", "c1ccccc1CC", "c1ccccc1Cl"]
    cfg = parse_config(_scaffold_raw(_clintox_csv(tmp_path, same)))
    with pytest.raises(ConfigError, match=r"^split\.method: the scaffold split of the 5 "
                                          r"molecules of 'clintox' leaves the training part empty"):
        load_setting(cfg, cfg.settings[0], 0)


def test_scaffold_part_without_labels_names_the_task(tmp_path: Path) -> None:
    from polytask.data import scaffold_split

    test_rows = set(scaffold_split(_SMILES, (0.6, 0.2, 0.2))[2].tolist())
    tox = ["" if i in test_rows else str(i % 2) for i in range(len(_SMILES))]
    cfg = parse_config(_scaffold_raw(_clintox_csv(tmp_path, _SMILES, tox)))
    data, parts = load_setting(cfg, cfg.settings[0], 0)
    with pytest.raises(ConfigError, match=r"^split\.method: the scaffold test part: task "
                                          r"'CT_TOX' has no observed label"):
        split_setting(cfg, data, parts, 0)


def test_scaffold_needs_the_preset_rows(tmp_path: Path) -> None:
    cfg = parse_config(_scaffold_raw(_clintox_csv(tmp_path, _SMILES)))
    data, _ = load_setting(cfg, cfg.settings[0], 0)
    with pytest.raises(ConfigError, match=r"^split\.method: 'scaffold' needs the rows"):
        split_setting(cfg, data, None, 0)


def test_original_split_config_stays_valid() -> None:
    raw = _raw({"test": 0.3, "val": 0.25})
    cfg = parse_config(copy.deepcopy(raw))
    assert (cfg.split.test, cfg.split.val, cfg.split.method) == (0.3, 0.25, "random")
    data, preset = load_setting(cfg, cfg.settings[0], 0)
    split = split_setting(cfg, data, preset, 0)
    assert split.fit.n_samples + split.test.n_samples == 40
    assert split.test.n_samples == 12


# ---------------------------------------------------------------------- target scaling
def test_standardize_targets_uses_the_training_labels_of_each_regression_task() -> None:
    raw = _raw({"method": "kfold", "folds": 4})
    raw["dataset"]["standardize_targets"] = True
    cfg = parse_config(raw)
    data, preset = load_setting(cfg, cfg.settings[0], 0)
    plain_cfg = parse_config(_raw({"method": "kfold", "folds": 4}))
    for seed in (0, 2):
        scaled = split_setting(cfg, data, preset, seed)
        plain = split_setting(plain_cfg, data, preset, seed)
        for t in scaled.tasks.names:
            y_fit = plain.fit.task(t)[1]
            mean, std = y_fit.mean(), y_fit.std()
            for a, b in ((scaled.fit, plain.fit), (scaled.test, plain.test),
                         (scaled.train, plain.train), (scaled.val, plain.val)):
                np.testing.assert_array_equal(a.task(t)[0], b.task(t)[0])  # same rows
                np.testing.assert_allclose(a.task(t)[1], (b.task(t)[1] - mean) / std)
            assert abs(scaled.fit.task(t)[1].mean()) < 1e-12
            assert scaled.fit.task(t)[1].std() == pytest.approx(1.0)


def test_target_scaler_keeps_missing_labels_and_other_kinds() -> None:
    from polytask._experiment_data import target_scaler

    Y = np.array([[1.0, 0.0, 5.0], [3.0, 1.0, 5.0], [np.nan, 1.0, 5.0], [5.0, np.nan, 5.0]])
    data = MultiTaskData(np.arange(8.0).reshape(4, 2), Y, task_names=["r", "b", "const"],
                         kinds={"r": "regression", "b": "binary", "const": "regression"})
    out = target_scaler(data)(data).label_matrix()
    np.testing.assert_allclose(out[[0, 1, 3], 0], (np.array([1.0, 3.0, 5.0]) - 3.0)
                               / np.std([1.0, 3.0, 5.0]))
    assert np.isnan(out[2, 0]) and np.isnan(out[3, 1])
    np.testing.assert_array_equal(out[:3, 1], Y[:3, 1])  # binary labels untouched
    np.testing.assert_array_equal(out[:, 2], 0.0)  # a constant target: centred, std 1
    per_task = MultiTaskData.from_tasks({"r": (np.ones((3, 1)), np.array([2.0, 4.0, 6.0]))})
    np.testing.assert_allclose(target_scaler(per_task)(per_task).task("r")[1],
                               [-1.224744871, 0.0, 1.224744871])


def test_standardize_targets_must_be_a_boolean() -> None:
    raw = _raw()
    raw["dataset"]["standardize_targets"] = "yes"
    with pytest.raises(ConfigError, match=r"dataset\.standardize_targets"):
        parse_config(raw)


def test_standardize_targets_enters_the_unit_keys_only_when_set() -> None:
    def key(**dataset: Any) -> str:
        raw = _raw()
        raw["dataset"].update(dataset)
        cfg = parse_config(raw)
        return unit_key(data_spec(cfg, cfg.settings[0]))

    assert key() == key(standardize_targets=False)  # units made before the key existed
    assert key() != key(standardize_targets=True)
