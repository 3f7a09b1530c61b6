"""Sections of an experiment configuration: dataset, settings, tasks, split, budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from polytask import _config_checks as c
from polytask import _registry as reg
from polytask._config_checks import ConfigError


@dataclass(frozen=True)
class DatasetConfig:
    """Where the data come from.

    Attributes
    ----------
    synthetic : str or None
        Key of :func:`polytask._registry.synthetic_generators`.
    name : str or None
        A registered real dataset (:data:`polytask.data.DATASETS`).
    params : dict
        Generator or loader parameters.
    featurizer : str or None
        Key of :func:`polytask._registry.featurizers` (for SMILES datasets).
    featurizer_params : dict
        Its parameters.
    data_home : str or None
        Folder of the real datasets (relative to the configuration file).
    seed : int or None
        Fixed seed of a synthetic generator; None draws new data for every run seed.
    standardize : bool
        Standardise the features with the statistics of the training part.
    standardize_targets : bool
        Standardise every regression target with the mean and standard deviation of its
        training labels (joint penalties and shared networks then see targets of one
        scale); scores are computed on that scale, which leaves scale-free metrics
        (``rrmse``, ``r2``, ``explained_variance``) unchanged and expresses ``mse`` and
        ``mae`` in training standard deviations.
    """

    synthetic: str | None = None
    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    featurizer: str | None = None
    featurizer_params: dict[str, Any] = field(default_factory=dict)
    data_home: str | None = None
    seed: int | None = None
    standardize: bool = True
    standardize_targets: bool = False


@dataclass(frozen=True)
class Setting:
    """A variant of the dataset: ``params`` override ``dataset.params``."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TasksConfig:
    """Task selection, roles, weights and metrics (names checked once data are loaded).

    Attributes
    ----------
    select : tuple of str or None
        The tasks kept (all when None).
    auxiliary : tuple of str
        Tasks trained but left out of model selection and the comparison.
    weights : dict of str to float
        Static loss weights (1 when absent).
    metrics : tuple of str or None
        Metrics of every task, primary first (``tasks.metrics`` given as a list); None
        gives each task the defaults of its kind.
    task_metrics : dict of str to tuple of str
        Metrics of the tasks named (``tasks.metrics`` given as a mapping), primary
        first; the tasks not named get ``metrics`` (so the defaults of their kind).
    """

    select: tuple[str, ...] | None = None
    auxiliary: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)
    metrics: tuple[str, ...] | None = None
    task_metrics: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def metrics_of(self, task: str) -> tuple[str, ...] | None:
        """The configured metrics of ``task`` (None: the defaults of its kind)."""
        return self.task_metrics.get(task, self.metrics)


SPLIT_METHODS: tuple[str, ...] = ("random", "scaffold", "kfold")
"""The values of ``split.method``."""


@dataclass(frozen=True)
class SplitConfig:
    """How every seed's data are divided into training, validation and test parts.

    Attributes
    ----------
    test : float
        Test fraction (per task for per-task data); ``1 / folds`` under ``kfold``, where
        it is informative only.
    val : float
        Fraction of the training part held out for validation (deep epoch selection).
    published : bool
        Use the dataset's published train/test split (``random`` method only).
    method : {"random", "scaffold", "kfold"}
        ``random``: a new random split for every seed. ``scaffold``: the deterministic
        Bemis-Murcko scaffold split of a molecule set, the same for every seed.
        ``kfold``: seed ``s`` tests on fold ``s % folds`` of a fixed partition.
    folds : int or None
        Number of folds (``kfold`` only, at least 2).
    fold_seed : int
        Seed of the fixed permutation cut into folds (``kfold`` only).
    """

    test: float = 0.25
    val: float = 0.2
    published: bool = False
    method: str = "random"
    folds: int | None = None
    fold_seed: int = 0


@dataclass(frozen=True)
class BudgetConfig:
    """Stop launching units after ``max_units`` trainings or ``time_limit`` seconds."""

    max_units: int | None = None
    time_limit: float | None = None


def parse_seeds(value: object, path: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return tuple(range(c.integer(value, path, minimum=1)))
    items = c.sequence(value, path)
    if not items:
        raise ConfigError(f"{path}: expected a positive count or a non-empty list of seeds")
    seeds = tuple(c.integer(v, c.join(path, i), minimum=0) for i, v in enumerate(items))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: seeds must be distinct, got {list(seeds)}")
    return seeds


def parse_dataset(value: object) -> DatasetConfig:
    from polytask.data import DATASETS

    path = "dataset"
    m = c.mapping(value, path)
    c.check_keys(m, path, ("synthetic", "name", "params", "featurizer", "data_home", "seed",
                           "standardize", "standardize_targets"))
    if ("synthetic" in m) == ("name" in m):
        raise ConfigError("dataset: give exactly one of 'synthetic' (a generator: "
                          f"{sorted(reg.synthetic_generators())}) or 'name' (a registered "
                          f"dataset: {sorted(DATASETS)})")
    synthetic = name = None
    if "synthetic" in m:
        synthetic = c.choice(m["synthetic"], "dataset.synthetic", reg.synthetic_generators())
        allowed: tuple[str, ...] = reg.synthetic_generators()[synthetic].params
    else:
        name = c.choice(m["name"], "dataset.name", DATASETS)
        allowed = reg.signature_params(DATASETS[name].loader,
                                       ("data_home", "download", "featurize"))
    params = c.plain(c.params(m.get("params"), "dataset.params", allowed), "dataset.params")
    feat, feat_params = None, {}
    if m.get("featurizer") is not None:
        f = m["featurizer"]
        fm = {"name": f} if isinstance(f, str) else c.mapping(f, "dataset.featurizer")
        c.check_keys(fm, "dataset.featurizer", ("name", "params"))
        feat = c.choice(fm.get("name"), "dataset.featurizer.name", reg.featurizers())
        feat_params = c.plain(c.params(fm.get("params"), "dataset.featurizer.params",
                                       reg.featurizers()[feat].params),
                              "dataset.featurizer.params")
    return DatasetConfig(
        synthetic=synthetic, name=name, params=params, featurizer=feat,
        featurizer_params=feat_params,
        data_home=c.optional(c.string, m.get("data_home"), "dataset.data_home"),
        seed=c.optional(c.integer, m.get("seed"), "dataset.seed", minimum=0),
        standardize=c.boolean(m.get("standardize", True), "dataset.standardize"),
        standardize_targets=c.boolean(m.get("standardize_targets", False),
                                      "dataset.standardize_targets"))


def parse_settings(value: object, allowed: tuple[str, ...]) -> tuple[Setting, ...]:
    if value is None:
        return (Setting("default"),)
    items = c.sequence(value, "settings")
    if not items:
        raise ConfigError("settings: expected a non-empty list (or leave it out)")
    out = []
    for i, item in enumerate(items):
        path = c.join("settings", i)
        m = c.mapping(item, path)
        c.check_keys(m, path, ("name", "params"))
        params = c.plain(c.params(m.get("params"), c.join(path, "params"), allowed),
                         c.join(path, "params"))
        default = ",".join(f"{k}={v}" for k, v in params.items()) or f"setting_{i}"
        out.append(Setting(c.optional(c.string, m.get("name"), c.join(path, "name")) or default,
                           params))
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"settings: duplicate setting names {dupes}")
    return tuple(out)


def _metric_list(value: object, path: str) -> tuple[str, ...]:
    """A non-empty list of registered metric names whose first one is a score."""
    from polytask.metrics import METRICS

    metrics = c.names(value, path)
    for i, name in enumerate(metrics):
        c.choice(name, c.join(path, i), METRICS)
    if not metrics:
        raise ConfigError(f"{path}: expected at least one metric")
    if METRICS[metrics[0]].is_count:
        raise ConfigError(f"{path}[0]: {metrics[0]!r} is a count (summed over tasks), not a "
                          "score; it cannot be the primary metric (model selection, Δm%): "
                          "list a score such as roc_auc first")
    return metrics


def parse_tasks(value: object) -> TasksConfig:
    """The ``tasks`` section: ``select``, ``auxiliary``, ``weights`` and ``metrics``.

    ``metrics`` is either a list (every task's metrics, primary first) or a mapping
    ``{task: [metrics]}`` (the tasks named get theirs, the others the defaults of their
    kind).  Task names are checked against the data once they are loaded
    (:func:`polytask._experiment_data.task_set`).

    Parameters
    ----------
    value : object
        The parsed YAML of the section (None when absent).

    Returns
    -------
    TasksConfig

    Raises
    ------
    ConfigError
        If a key is unknown, a metric is not registered, a list is empty or its first
        metric is a count; the message gives the key path (``tasks.metrics.chunk[0]``).

    Examples
    --------
    >>> tc = parse_tasks({"metrics": {"chunk": ["chunk_f1_ids", "accuracy"]}})
    >>> tc.metrics_of("chunk"), tc.metrics_of("pos") is None
    (('chunk_f1_ids', 'accuracy'), True)
    """
    path = "tasks"
    m = c.mapping(value, path)
    c.check_keys(m, path, ("select", "auxiliary", "weights", "metrics"))
    weights = {k: c.number(v, c.join("tasks.weights", k), low=0.0)
               for k, v in c.mapping(m.get("weights"), "tasks.weights").items()}
    metrics, per_task = None, {}
    raw = m.get("metrics")
    if isinstance(raw, Mapping):
        per_task = {task: _metric_list(names, c.join("tasks.metrics", task))
                    for task, names in c.mapping(raw, "tasks.metrics").items()}
        if not per_task:
            raise ConfigError("tasks.metrics: expected a list of metrics or a mapping "
                              "{task: [metrics]} naming at least one task")
    elif raw is not None:
        metrics = _metric_list(raw, "tasks.metrics")
    return TasksConfig(
        select=c.optional(c.names, m.get("select"), "tasks.select"),
        auxiliary=c.names(m.get("auxiliary", []), "tasks.auxiliary"),
        weights=weights, metrics=metrics, task_metrics=per_task)


def parse_split(value: object) -> SplitConfig:
    m = c.mapping(value, "split")
    c.check_keys(m, "split", ("test", "val", "published", "method", "folds", "fold_seed"))
    method = c.choice(m.get("method", "random"), "split.method", SPLIT_METHODS)
    published = c.boolean(m.get("published", False), "split.published")
    if published and method != "random":
        raise ConfigError(f"split.published: a published split cannot be combined with "
                          f"split.method {method!r}; remove one of them")
    if method == "kfold":
        if "test" in m:
            raise ConfigError("split.test: not used by split.method 'kfold' (the test part "
                              "of each seed is one of split.folds folds); remove it")
        if m.get("folds") is None:
            raise ConfigError("split.folds: required by split.method 'kfold' (an integer "
                              ">= 2, e.g. 10)")
        folds = c.integer(m["folds"], "split.folds", minimum=2)
        fold_seed = c.integer(m.get("fold_seed", 0), "split.fold_seed", minimum=0)
        return SplitConfig(test=1.0 / folds,
                           val=c.number(m.get("val", 0.2), "split.val", 0.0, 1.0, strict=True),
                           method=method, folds=folds, fold_seed=fold_seed)
    for key in ("folds", "fold_seed"):
        if key in m:
            raise ConfigError(f"split.{key}: only used by split.method 'kfold', not "
                              f"{method!r}; remove it or set split.method: kfold")
    return SplitConfig(test=c.number(m.get("test", 0.25), "split.test", 0.0, 1.0, strict=True),
                       val=c.number(m.get("val", 0.2), "split.val", 0.0, 1.0, strict=True),
                       published=published, method=method)


def parse_budget(value: object) -> BudgetConfig:
    m = c.mapping(value, "budget")
    c.check_keys(m, "budget", ("max_units", "time_limit"))
    return BudgetConfig(
        max_units=c.optional(c.integer, m.get("max_units"), "budget.max_units", minimum=1),
        time_limit=c.optional(c.number, m.get("time_limit"), "budget.time_limit", low=0.0,
                              strict=True))


def loader_params(dataset: DatasetConfig) -> tuple[str, ...]:
    from polytask.data import DATASETS

    assert dataset.name is not None
    return reg.signature_params(DATASETS[dataset.name].loader,
                                ("data_home", "download", "featurize"))


__all__ = [
    "SPLIT_METHODS",
    "BudgetConfig",
    "DatasetConfig",
    "Setting",
    "SplitConfig",
    "TasksConfig",
    "loader_params",
    "parse_budget",
    "parse_dataset",
    "parse_seeds",
    "parse_settings",
    "parse_split",
    "parse_tasks",
]
