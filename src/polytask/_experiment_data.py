"""Data of an experiment: load a setting, define its tasks, split it for a seed.

Every model of a (setting, seed) pair sees the same :class:`SplitData`: the test part
(held out for scoring), the training part (``fit``: linear models choose their
regularisation on it by cross-validation) and its division into ``train`` and ``val``
(deep models train on the first and select their epoch on the second). How the parts
are drawn is ``split.method``: random, k-fold or scaffold (see
:mod:`polytask._experiment_splits`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polytask import _registry as reg
from polytask._config import ExperimentConfig, Setting
from polytask._config_checks import ConfigError
from polytask._experiment_splits import RowParts, kfold_fit_test, scaffold_setting, take_rows
from polytask.data import MultiTaskData
from polytask.tasks import Task, TaskSet


@dataclass(frozen=True)
class SplitData:
    """The parts of one (setting, seed).

    Attributes
    ----------
    tasks : TaskSet
        The tasks, with roles, weights and metrics.
    fit : MultiTaskData
        The whole training part.
    train, val : MultiTaskData
        ``fit`` divided for deep training and model selection.
    test : MultiTaskData
        The held-out part every model is scored on.
    """

    tasks: TaskSet
    fit: MultiTaskData
    train: MultiTaskData
    val: MultiTaskData
    test: MultiTaskData

    @property
    def n_features(self) -> int:
        """Input dimension."""
        return self.fit.n_features

    def subset(self, names: Sequence[str]) -> SplitData:
        """The same parts restricted to the tasks ``names`` (in that order)."""
        keep = list(names)
        return SplitData(tasks=TaskSet([self.tasks[n] for n in keep]),
                         fit=self.fit.subset(keep), train=self.train.subset(keep),
                         val=self.val.subset(keep), test=self.test.subset(keep))


def _data_home(cfg: ExperimentConfig) -> Path | None:
    home = cfg.dataset.data_home
    if home is None:
        return None
    p = Path(home).expanduser()
    return p if p.is_absolute() else Path(cfg.base_dir) / p


def load_setting(cfg: ExperimentConfig, setting: Setting, seed: int
                 ) -> tuple[MultiTaskData, MultiTaskData | RowParts | None]:
    """The data of ``setting``: all of it, or its published ``(train, test)`` parts.

    Parameters
    ----------
    cfg : ExperimentConfig
    setting : Setting
    seed : int
        Seeds a synthetic draw unless ``dataset.seed`` is fixed.

    Returns
    -------
    data : MultiTaskData
        All the data, or the published training part.
    preset : MultiTaskData, RowParts or None
        The published test part (``split.published``); the scaffold split of ``data``
        (``split.method: scaffold``, the same for every seed); else None.

    Raises
    ------
    ConfigError
        If a real dataset needs a featuriser or has no published split, or a scaffold
        split is asked of data without SMILES.
    """
    ds = cfg.dataset
    params = {**ds.params, **setting.params}
    if ds.synthetic is not None:
        if cfg.split.method == "scaffold":
            raise ConfigError("split.method: 'scaffold' needs molecules given as SMILES; "
                              "synthetic data have none")
        gen = reg.synthetic_generators()[ds.synthetic].fn
        draw = gen(**params, random_state=ds.seed if ds.seed is not None else seed)
        if cfg.split.published:
            raise ConfigError("split.published: synthetic data have no published split")
        return draw.to_data(), None
    from polytask.data import DATASETS, load_dataset

    assert ds.name is not None
    kwargs: dict[str, Any] = dict(params)
    featurize = None
    if ds.featurizer is not None:
        featurize = functools.partial(reg.featurizers()[ds.featurizer].fn,
                                      **ds.featurizer_params)
    if cfg.split.method == "scaffold":
        # the loaders drop the SMILES once featurised: split the raw molecules first
        raw = load_dataset(ds.name, data_home=_data_home(cfg), **kwargs)
        return scaffold_setting(raw, featurize, cfg.split, ds.name)
    if featurize is not None:
        kwargs["featurize"] = featurize
    loader_params = reg.signature_params(DATASETS[ds.name].loader)
    if cfg.split.published:
        if "split" not in loader_params:
            raise ConfigError(f"split.published: dataset {ds.name!r} has no published split")
        kwargs["split"] = "both"
    out = load_dataset(ds.name, data_home=_data_home(cfg), **kwargs)
    parts = out if isinstance(out, tuple) else (out, None)
    if not isinstance(parts[0], MultiTaskData):
        raise ConfigError(f"dataset.featurizer: dataset {ds.name!r} holds raw inputs "
                          f"({type(parts[0]).__name__}); choose a featurizer, known: "
                          f"{sorted(reg.featurizers())}")
    return parts[0], parts[1]


def _check_metric_kinds(path: str, metrics: Sequence[str], task: str, kind: str) -> None:
    """A regression task takes regression metrics; the other kinds classification ones."""
    from polytask.metrics import METRICS

    family = "regression" if kind == "regression" else "classification"
    for i, name in enumerate(metrics):
        if METRICS[name].kind != family:
            raise ConfigError(f"{path}[{i}]: metric {name!r} scores {METRICS[name].kind} "
                              f"tasks, but task {task!r} is {kind}")


def task_set(cfg: ExperimentConfig, data: MultiTaskData) -> TaskSet:
    """The tasks of ``data`` as configured (selection, auxiliary roles, weights, metrics).

    ``tasks.metrics`` gives every task the same metrics (a list) or some tasks their own
    (a mapping; the tasks not named get the defaults of their kind).  The first metric
    of a task is its primary one (model selection, Δm%).

    Raises
    ------
    ConfigError
        If ``tasks`` names a task the data do not have (the message lists the known
        tasks), or a metric does not suit its task's kind (e.g. ``mse`` for a binary
        task).
    """
    names = list(data.task_names)
    tc = cfg.tasks
    known = f"{names[:20]}{' ...' if len(names) > 20 else ''}"
    for key, listed in (("select", tc.select or ()), ("auxiliary", tc.auxiliary),
                        ("weights", tuple(tc.weights)), ("metrics", tuple(tc.task_metrics))):
        for t in listed:
            if t not in names:
                raise ConfigError(f"tasks.{key}: unknown task {t!r}; the data have {known}")
    chosen = list(tc.select) if tc.select is not None else names
    aux = [t for t in tc.auxiliary if t not in chosen]
    if aux:
        raise ConfigError(f"tasks.auxiliary: {aux[0]!r} is not among the selected tasks")
    if all(t in tc.auxiliary for t in chosen):
        raise ConfigError("tasks.auxiliary: at least one task must stay a main task")
    kinds = data.kinds
    tasks = []
    for t in chosen:
        metrics = tc.metrics_of(t)
        if metrics is not None:
            path = f"tasks.metrics.{t}" if t in tc.task_metrics else "tasks.metrics"
            _check_metric_kinds(path, metrics, t, kinds[t])
        n_out = None
        if kinds[t] == "multiclass":
            n_out = int(np.nanmax(data.task(t)[1])) + 1
        tasks.append(Task(t, kind=kinds[t], metrics=metrics,
                          role="auxiliary" if t in tc.auxiliary else "main",
                          weight=tc.weights.get(t, 1.0), n_outputs=n_out))
    return TaskSet(tasks)


def _rebuild(data: MultiTaskData, transform: Any) -> MultiTaskData:
    kinds = data.kinds
    if data.form == "shared":
        return MultiTaskData(transform(data.feature_matrix()), data.label_matrix(),
                             task_names=list(data.task_names), kinds=kinds,
                             feature_names=list(data.feature_names))
    return MultiTaskData.from_tasks({t: (transform(x), y) for t, x, y in data.iter_tasks()},
                                    kinds=kinds, feature_names=list(data.feature_names))


def standardizer(data: MultiTaskData) -> Any:
    """``X -> (X - mean) / std`` with the statistics of ``data`` (constant columns kept)."""
    X = data.stacked()[0] if data.form == "per_task" else data.feature_matrix()
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return lambda Z: (np.asarray(Z, dtype=float) - mean) / std


def target_scaler(data: MultiTaskData) -> Any:
    """``data -> data`` with every regression target standardised by ``data``'s labels.

    Each regression task's labels become ``(y - mean) / std`` with the mean and standard
    deviation of its observed labels here (std 1 when they are constant); missing labels
    stay NaN and the other kinds are untouched.
    """
    stats: dict[str, tuple[float, float]] = {}
    kinds = data.kinds
    for t, _, y in data.iter_tasks():
        if kinds[t] == "regression":
            seen = np.asarray(y, dtype=float)
            seen = seen[np.isfinite(seen)]
            std = float(seen.std()) if seen.size else 1.0
            stats[t] = (float(seen.mean()) if seen.size else 0.0, std if std > 0 else 1.0)

    def scale(part: MultiTaskData) -> MultiTaskData:
        kinds = part.kinds
        if part.form == "shared":
            labels = part.label_matrix().copy()
            for j, t in enumerate(part.task_names):
                if t in stats:
                    labels[:, j] = (labels[:, j] - stats[t][0]) / stats[t][1]
            return MultiTaskData(part.feature_matrix(), labels, task_names=list(part.task_names),
                                 kinds=kinds, feature_names=list(part.feature_names))
        return MultiTaskData.from_tasks(
            {t: (x, (np.asarray(y, dtype=float) - stats[t][0]) / stats[t][1] if t in stats
                 else y) for t, x, y in part.iter_tasks()},
            kinds=kinds, feature_names=list(part.feature_names))

    return scale


def _standardized(cfg: ExperimentConfig, fit: MultiTaskData,
                  *parts: MultiTaskData) -> list[MultiTaskData]:
    """``fit`` and ``parts`` standardised with ``fit``'s statistics, as configured."""
    out = [fit, *parts]
    if cfg.dataset.standardize:
        scale = standardizer(fit)
        out = [_rebuild(p, scale) for p in out]
    if cfg.dataset.standardize_targets:
        scale_y = target_scaler(fit)
        out = [scale_y(p) for p in out]
    return out


def _fixed_split(cfg: ExperimentConfig, tasks: TaskSet, data: MultiTaskData,
                 parts: RowParts) -> SplitData:
    fit = take_rows(data, parts.fit, "training")
    data = _standardized(cfg, fit, data)[1]
    fit = take_rows(data, parts.fit, "training")
    return SplitData(tasks=tasks, fit=fit, train=take_rows(data, parts.train, "training"),
                     val=take_rows(data, parts.val, "validation"),
                     test=take_rows(data, parts.test, "test"))


def split_setting(cfg: ExperimentConfig, data: MultiTaskData,
                  preset: MultiTaskData | RowParts | None, seed: int) -> SplitData:
    """Select the tasks, split for ``seed`` and standardise with training statistics.

    ``split.method`` decides the test part: ``random`` draws it with ``seed``;
    ``kfold`` takes fold ``seed % split.folds`` of a partition fixed by
    ``split.fold_seed`` (:func:`~polytask._experiment_splits.kfold_fit_test`). The
    validation part is then drawn from the rest with ``seed``. A preset from
    :func:`load_setting` overrides both: a published test part, or the scaffold split
    (all three parts fixed, whatever the seed).

    Parameters
    ----------
    cfg : ExperimentConfig
    data : MultiTaskData
        From :func:`load_setting`.
    preset : MultiTaskData, RowParts or None
        From :func:`load_setting`: the published test part, or the scaffold split's
        rows of ``data``; None otherwise.
    seed : int
        Seeds the split: the same for every model.

    Returns
    -------
    SplitData

    Raises
    ------
    ConfigError
        If a task selected does not exist, has fewer samples than ``split.folds``, or is
        left without labels in a part of a fixed split.
    """
    tasks = task_set(cfg, data)
    data = data.subset(list(tasks.names))
    if isinstance(preset, RowParts):
        return _fixed_split(cfg, tasks, data, preset)
    if cfg.split.method == "scaffold":
        raise ConfigError("split.method: 'scaffold' needs the rows of the scaffold split, "
                          "which load_setting computes; pass its second value as preset")
    if preset is not None:
        fit, test = data, preset.subset(list(tasks.names))
    elif cfg.split.method == "kfold":
        fit, test = kfold_fit_test(data, cfg.split, seed)
    else:
        fit, test = data.train_test_split(1.0 - cfg.split.test, random_state=seed)
    fit, test = _standardized(cfg, fit, test)
    train, val = fit.train_test_split(1.0 - cfg.split.val,
                                      random_state=np.random.default_rng([seed, 1]))
    return SplitData(tasks=tasks, fit=fit, train=train, val=val, test=test)


__all__ = ["RowParts", "SplitData", "load_setting", "split_setting", "standardizer",
           "target_scaler", "task_set"]
