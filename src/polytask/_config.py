"""Experiment configuration: the YAML schema, its validation, and the quick mode.

A configuration names the dataset (a synthetic generator with its parameters, or a
registered dataset with a featuriser where needed), optional *settings* (variants of
the dataset parameters, e.g. task correlations), the tasks (selection, auxiliary roles,
weights, metrics), the split, the seeds, the models (linear estimators with fixed
parameters or cross-validation grids; deep architectures × methods with sizes, epochs
and learning rate), a budget, and an optional ``relate`` section.  Every error names
the key path, e.g. ``models[2].method: unknown 'mgdaa' (did you mean 'mgda'?); known:
[...]``.  See ``examples/*.yaml`` for complete files.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polytask import _config_checks as c
from polytask import _registry as reg
from polytask._config_checks import ConfigError
from polytask._config_models import (
    DeepModelConfig,
    LinearModelConfig,
    ModelConfig,
    RelateConfig,
    parse_model,
    parse_relate,
)
from polytask._config_sections import (
    BudgetConfig,
    DatasetConfig,
    Setting,
    SplitConfig,
    TasksConfig,
    loader_params,
    parse_budget,
    parse_dataset,
    parse_seeds,
    parse_settings,
    parse_split,
    parse_tasks,
)

_TOP_KEYS = ("name", "description", "seeds", "metric", "baseline", "dataset", "settings",
             "tasks", "split", "models", "budget", "relate")
QUICK_MAX_SAMPLES = 400
"""``--quick`` caps a synthetic generator's ``n_samples`` (per task) at this value."""
QUICK_MAX_EPOCHS = 2
"""``--quick`` caps every deep model's epochs at this value."""


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment configuration (see :func:`load_config`).

    Attributes
    ----------
    name : str
        Name of the experiment (default run directory ``runs/<name>``).
    seeds : tuple of int
        Seeds: one split (and, for synthetic data, one draw) per seed.
    dataset : DatasetConfig
    settings : tuple of Setting
    tasks : TasksConfig
    split : SplitConfig
    models : tuple of ModelConfig
    metric : str or None
        Metric of the Δm comparison (default: the first main task's primary metric).
    baseline : str
        The default baseline method.
    budget : BudgetConfig
    relate : RelateConfig or None
    raw : dict
        The configuration as read (written to the run directory).
    base_dir : str
        Folder that relative paths are resolved against.
    quick : bool
        Whether :func:`quick_config` shrank it.

    Examples
    --------
    >>> cfg = parse_config({"seeds": [4, 7], "dataset": {"synthetic": "low_rank"},
    ...                     "models": [{"type": "deep", "stl": True, "name": "STL"},
    ...                                {"type": "deep", "method": "upgrad", "name": "MTL"}]})
    >>> cfg.seeds, cfg.model("MTL").baseline, cfg.settings[0].name
    ((4, 7), 'STL', 'default')
    """

    name: str
    seeds: tuple[int, ...]
    dataset: DatasetConfig
    settings: tuple[Setting, ...]
    tasks: TasksConfig
    split: SplitConfig
    models: tuple[ModelConfig, ...]
    metric: str | None
    baseline: str
    budget: BudgetConfig
    relate: RelateConfig | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    base_dir: str = "."
    quick: bool = False

    def model(self, name: str) -> ModelConfig:
        """The model called ``name``."""
        for m in self.models:
            if m.name == name:
                return m
        raise c.unknown("models", name, [m.name for m in self.models], "model")


def _models(value: object) -> tuple[ModelConfig, ...]:
    if value is None:
        raise ConfigError("models: required; list the STL baseline and the MTL models")
    items = c.sequence(value, "models")
    if not items:
        raise ConfigError("models: expected at least one model")
    models = [parse_model(v, c.join("models", i)) for i, v in enumerate(items)]
    seen: dict[str, int] = {}
    for i, m in enumerate(models):
        if m.name in seen:
            raise ConfigError(f"models[{i}].name: {m.name!r} is already the name of "
                              f"models[{seen[m.name]}]; names must be unique")
        seen[m.name] = i
    return tuple(models)


def _resolve_baselines(models: tuple[ModelConfig, ...], top: object
                       ) -> tuple[str, tuple[ModelConfig, ...]]:
    names = [m.name for m in models]
    explicit = c.optional(c.string, top, "baseline")
    if explicit is not None and explicit not in names:
        raise c.unknown("baseline", explicit, names, "model")
    single = [m for m in models if m.single_task]
    if explicit is None and not single:
        raise ConfigError("baseline: no single-task model to compare with; add one "
                          "(type: deep with stl: true, or type: linear with fit: per_task) "
                          "or name a baseline model")
    default = explicit or single[0].name
    out = []
    for i, m in enumerate(models):
        own = m.baseline
        if own and own not in names:
            raise c.unknown(f"models[{i}].baseline", own, names, "model")
        if not own and explicit is not None:
            own = explicit
        elif not own and m.single_task:
            own = m.name
        elif not own:
            same_type = [s.name for s in single if s.type == m.type]
            own = same_type[0] if same_type else default
        out.append(dataclasses.replace(m, baseline=own))
    return default, tuple(out)


def parse_config(raw: Mapping[str, Any], base_dir: str | os.PathLike[str] = ".",
                 name: str = "experiment") -> ExperimentConfig:
    """Validate a configuration mapping (as read from YAML).

    Parameters
    ----------
    raw : mapping
        The configuration.
    base_dir : path-like, default="."
        Folder that relative paths (``dataset.data_home``) are resolved against.
    name : str, default="experiment"
        Name used when the configuration has none.

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    ConfigError
        On the first invalid entry; the message starts with its key path.

    Examples
    --------
    >>> cfg = parse_config({"dataset": {"synthetic": "mmoe", "params": {"n_samples": 100}},
    ...                     "models": [{"type": "linear", "model": "ridge",
    ...                                 "fit": "per_task", "name": "STL ridge"}]})
    >>> cfg.baseline, cfg.seeds
    ('STL ridge', (0, 1, 2))

    Top-level keys starting with ``x-`` are ignored: they hold YAML anchors that the
    model entries merge (``<<: *anchor``).


    >>> parse_config({"models": [{"type": "deep", "method": "mgdaa"}],
    ...               "dataset": {"synthetic": "mmoe"}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    polytask._config_checks.ConfigError: models[0].method: unknown 'mgdaa' (did you mean 'mgda'?)...
    """
    from polytask.metrics import METRICS

    m = {k: v for k, v in c.mapping(raw, "").items()
         if not (isinstance(k, str) and k.startswith("x-"))}  # YAML anchors, not settings
    c.check_keys(m, "", _TOP_KEYS)
    if "dataset" not in m:
        raise ConfigError("dataset: required (a synthetic generator or a registered dataset)")
    dataset = parse_dataset(m["dataset"])
    allowed = (reg.synthetic_generators()[dataset.synthetic].params if dataset.synthetic
               else loader_params(dataset))
    seeds = parse_seeds(m.get("seeds", 3), "seeds")
    models = _models(m.get("models"))
    baseline, models = _resolve_baselines(models, m.get("baseline"))
    relate = (parse_relate(m["relate"], seeds, parse_seeds) if m.get("relate") is not None
              else None)
    return ExperimentConfig(
        name=c.optional(c.string, m.get("name"), "name") or name, seeds=seeds,
        dataset=dataset, settings=parse_settings(m.get("settings"), allowed),
        tasks=parse_tasks(m.get("tasks")), split=parse_split(m.get("split")), models=models,
        metric=c.optional(c.choice, m.get("metric"), "metric", METRICS), baseline=baseline,
        budget=parse_budget(m.get("budget")), relate=relate, raw=dict(m), base_dir=str(base_dir))


def load_config(path: str | os.PathLike[str]) -> ExperimentConfig:
    """Read and validate a YAML experiment configuration.

    Parameters
    ----------
    path : path-like
        The YAML file.

    Returns
    -------
    ExperimentConfig
        Named after the file when the configuration has no ``name``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ConfigError
        If the YAML is malformed or an entry is invalid (the key path is named).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = pathlib.Path(tmp) / "tiny.yaml"
    ...     _ = p.write_text("dataset: {synthetic: mmoe}\\n"
    ...                      "models: [{type: deep, stl: true, epochs: 1}]\\n")
    ...     cfg = load_config(p)
    >>> cfg.name, cfg.models[0].name
    ('tiny', 'STL shared_bottom')
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"configuration file {str(file)!r} does not exist")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"{file.name}: invalid YAML{line}: {problem}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{file.name}: expected a mapping at the top level, got "
                          f"{type(raw).__name__}")
    return parse_config(raw, base_dir=file.resolve().parent, name=file.stem)


def _cap_samples(params: dict[str, Any]) -> dict[str, Any]:
    n = params.get("n_samples")
    if isinstance(n, int) and not isinstance(n, bool):
        return {**params, "n_samples": min(n, QUICK_MAX_SAMPLES)}
    if isinstance(n, list):
        return {**params, "n_samples": [min(int(v), QUICK_MAX_SAMPLES) for v in n]}
    return params


def _quick_deep(m: DeepModelConfig) -> DeepModelConfig:
    return dataclasses.replace(m, epochs=min(m.epochs, QUICK_MAX_EPOCHS))


def _quick_linear(m: LinearModelConfig) -> LinearModelConfig:
    thin = {k: tuple(v[:: max(1, -(-len(v) // 3))]) for k, v in m.cv.items()}
    return dataclasses.replace(m, cv=thin, cv_folds=2)


def _quick_model(m: ModelConfig) -> ModelConfig:
    return _quick_deep(m) if isinstance(m, DeepModelConfig) else _quick_linear(m)


def quick_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """A small version of ``cfg`` for smoke runs (``--quick``).

    Two seeds, at most :data:`QUICK_MAX_SAMPLES` synthetic samples, at most
    :data:`QUICK_MAX_EPOCHS` epochs, at most three values per cross-validation grid and
    two folds, and pairwise transfer limited to one pair.

    Parameters
    ----------
    cfg : ExperimentConfig

    Returns
    -------
    ExperimentConfig
        With ``quick=True``.

    Examples
    --------
    >>> cfg = parse_config({"dataset": {"synthetic": "mmoe", "params": {"n_samples": 5000}},
    ...                     "seeds": 5, "models": [{"type": "deep", "stl": True}]})
    >>> q = quick_config(cfg)
    >>> q.seeds, q.dataset.params["n_samples"], q.models[0].epochs
    ((0, 1), 400, 2)
    """
    if cfg.quick:
        return cfg
    dataset = cfg.dataset
    settings = cfg.settings
    if dataset.synthetic is not None:
        dataset = dataclasses.replace(dataset, params=_cap_samples(dataset.params))
        settings = tuple(dataclasses.replace(s, params=_cap_samples(s.params))
                         for s in settings)
    relate = cfg.relate
    if relate is not None:
        relate = dataclasses.replace(
            relate, seeds=relate.seeds[:2], model=_quick_deep(relate.model),
            train=_quick_deep(relate.train),
            linear=None if relate.linear is None else _quick_linear(relate.linear),
            transfer_pairs=None if relate.transfer_pairs is None else 1)
    return dataclasses.replace(
        cfg, seeds=cfg.seeds[:2], dataset=dataset, settings=settings,
        models=tuple(_quick_model(m) for m in cfg.models), relate=relate, quick=True)


__all__ = [
    "BudgetConfig",
    "ConfigError",
    "DatasetConfig",
    "DeepModelConfig",
    "ExperimentConfig",
    "LinearModelConfig",
    "RelateConfig",
    "Setting",
    "SplitConfig",
    "TasksConfig",
    "load_config",
    "parse_config",
    "quick_config",
]
