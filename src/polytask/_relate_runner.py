"""``polytask relate``: measure task relatedness, group the tasks, check the grouping.

For every setting, and every seed of ``relate.seeds`` (identical splits to the
benchmark):

1. the configured measures — gradient cosine and conflict frequency, and TAG's
   lookahead affinity from a short multi-task training; the cosine of a linear model's
   task weights; optionally pairwise transfer (Standley et al., 2020) within a budget
   of pairs — averaged over seeds;
2. the grouping recommended for a budget of ``k`` models
   (:func:`~polytask.relate.partition_tasks`, or TAG's overlapping
   :func:`~polytask.relate.select_task_groups`);
3. the recommended groups, one model on all tasks and the single-task models are
   trained and scored on the test part: Δm% of the grouping and of the all-task model
   against STL, and per-task negative-transfer tests of the all-task model.

Everything goes to ``relatedness/<setting>/``: one CSV per matrix, ``grouping.json``,
``results.csv``, ``delta_m.csv``, ``per_task.csv``, ``negative_transfer.csv`` and
``summary.json``.  Every training is a resumable unit, as in the benchmark.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polytask._config import ExperimentConfig, Setting, load_config, quick_config
from polytask._config_checks import ConfigError
from polytask._config_models import RelateConfig
from polytask._report_data import MATRIX_FILES
from polytask._runner import SplitCache, UnitLoop, data_spec, model_spec, write_config
from polytask._units import Unit, UnitStore, slug, unit_key, write_atomic
from polytask.experiment import tidy_frame

_MEASURE_MATRIX = {"gradient": "gradient_cosine", "affinity": "affinity",
                   "linear": "linear_cosine", "transfer": "transfer_gain"}
GROUPS_METHOD = "groups"
ALL_METHOD = "all tasks"
STL_METHOD = "STL"


class _BudgetSpent(Exception):
    """The budget stopped the run before this step."""


@dataclass(frozen=True)
class RelateResult:
    """What :func:`run_relatedness` produced (also written to ``relatedness/``).

    Attributes
    ----------
    run_dir : Path
    summaries : dict of str to dict
        Per setting: the grouping, Δm% of the groups and of the all-task model, whether
        the groups beat each, and the tasks with negative transfer.
    matrices : dict of str to dict of str to pandas.DataFrame
        Per setting, every measured matrix (rows: affected task, columns: other task).
    complete : bool
        False when the budget stopped the run (rerun to continue).
    n_trained, n_reused : int
        Units trained now, and units found finished.

    Examples
    --------
    >>> import tempfile
    >>> from polytask._config import parse_config
    >>> small = {"arch_params": {"hidden": [4]}, "epochs": 1}
    >>> cfg = parse_config({"seeds": 1, "dataset": {"synthetic": "clustered",
    ...     "params": {"n_samples": 40, "n_features": 4, "n_tasks": 3}},
    ...     "models": [{"type": "deep", "stl": True, **small}],
    ...     "relate": {"model": {"method": "mean", **small}, "affinity": False,
    ...                "grouping": {"k": 2, "measure": "gradient"}}})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = run_relatedness(cfg, tmp, progress=False)
    >>> res.matrices["default"]["gradient_cosine"].shape
    (3, 3)
    >>> len(res.summaries["default"]["grouping"]["groups"])
    2
    """

    run_dir: Path
    summaries: dict[str, dict[str, Any]]
    matrices: dict[str, dict[str, pd.DataFrame]]
    complete: bool
    n_trained: int
    n_reused: int


class _Context:
    """One setting's relate run: config, loop, splits and the unit naming."""

    def __init__(self, cfg: ExperimentConfig, rel: RelateConfig, setting: Setting,
                 loop: UnitLoop, cache: SplitCache) -> None:
        self.cfg, self.rel, self.setting, self.loop, self.cache = cfg, rel, setting, loop, cache
        self.data = data_spec(cfg, setting)

    def run(self, what: tuple[str, ...], seed: int, spec: dict[str, Any], train: Any
            ) -> dict[str, Any]:
        key = unit_key({**self.data, "relate": what, "spec": spec, "seed": seed})
        label = f"{self.setting.name}/relate {' '.join(what)}/seed {seed}"
        unit = Unit(("relate", self.setting.name, *what), seed, key, label)
        record = self.loop.run(unit, lambda: train(self.cache.get(self.setting, seed)))
        if record is None:
            raise _BudgetSpent
        return record


def _measures(ctx: _Context) -> dict[str, np.ndarray]:
    from polytask._relate_measure import measure_linear, measure_training

    rel = ctx.rel
    sums: dict[str, np.ndarray] = {}
    names: list[str] = []
    counts: dict[str, int] = {}

    def add(record: dict[str, Any], keys: tuple[str, ...]) -> None:
        nonlocal names
        names = record["task_names"]
        for k in keys:
            if k in record:
                value = np.asarray(record[k], dtype=float)
                sums[k] = sums[k] + value if k in sums else value
                counts[k] = counts.get(k, 0) + 1

    for seed in rel.seeds:
        if rel.gradient or rel.affinity_every:
            spec = {"model": model_spec(rel.model), "gradient": rel.gradient,
                    "every": rel.affinity_every}
            rec = ctx.run(("measure",), seed, spec, lambda s, seed=seed: measure_training(
                rel.model, s, seed, gradient=rel.gradient, affinity_every=rel.affinity_every))
            add(rec, ("gradient_cosine", "gradient_conflict", "affinity"))
        if rel.linear is not None:
            rec = ctx.run(("linear",), seed, {"model": model_spec(rel.linear)},
                          lambda s, seed=seed, lin=rel.linear: measure_linear(lin, s, seed))
            add(rec, ("linear_cosine",))
    out = {k: v / counts[k] for k, v in sums.items()}
    out["_names"] = np.asarray(names, dtype=object)
    return out


def _transfer(ctx: _Context, names: list[str]) -> Any:
    from polytask._relate_measure import validation_scores
    from polytask.metrics import get_metric
    from polytask.relate import pairwise_transfer

    rel = ctx.rel
    spec = dataclasses.replace(rel.train, stl=False)

    def fit_score(tasks: tuple[str, ...], seed: int) -> dict[str, float]:
        rec = ctx.run(("transfer", "+".join(tasks)), seed, {"model": model_spec(spec)},
                      lambda s: {"scores": validation_scores(spec, s.subset(tasks), seed)})
        return {t: float(v) for t, v in rec["scores"].items()}

    tasks = ctx.cache.get(ctx.setting, rel.seeds[0]).tasks
    higher = {t.name: get_metric(t.primary_metric).higher_is_better for t in tasks}
    assert rel.transfer_pairs is not None
    pairs: Any = rel.transfer_pairs
    if pairs != "all":
        pairs = min(int(pairs), len(names) * (len(names) - 1) // 2)
    return pairwise_transfer(fit_score, names, pairs, higher_is_better=higher,
                             seeds=list(rel.seeds), random_state=rel.seeds[0])


def _group(rel: RelateConfig, matrix: np.ndarray, names: list[str]) -> Any:
    from polytask.relate import partition_tasks, select_task_groups

    A = np.where(np.isfinite(matrix), matrix, 0.0)
    k = min(rel.k, len(names))
    fn = select_task_groups if rel.overlapping else partition_tasks
    return fn(A, k, task_names=names, random_state=rel.seeds[0])


def _train_groups(ctx: _Context, grouping: Any, names: list[str]) -> pd.DataFrame:
    rel = ctx.rel
    mtl = dataclasses.replace(rel.train, stl=False)
    stl = dataclasses.replace(rel.train, stl=True)
    from polytask._runner import train_unit

    def group_rows(group: tuple[str, ...], seed: int) -> list[dict[str, Any]]:
        rec = ctx.run(("train", "+".join(group)), seed, {"model": model_spec(mtl)},
                      lambda s: train_unit(mtl, s.subset(list(group)), seed, None, Path(".")))
        return list(rec["rows"])

    rows: list[dict[str, Any]] = []
    for seed in rel.seeds:
        rec = ctx.run(("train", "STL"), seed, {"model": model_spec(stl)},
                      lambda s, seed=seed: train_unit(stl, s, seed, None, Path(".")))
        rows += [{**r, "method": STL_METHOD, "seed": seed} for r in rec["rows"]]
        rows += [{**r, "method": ALL_METHOD, "seed": seed}
                 for r in group_rows(tuple(names), seed)]
        for g, group in enumerate(grouping.groups):
            served = {t for t in group if grouping.served_by[t] == g}
            rows += [{**r, "method": GROUPS_METHOD, "seed": seed}
                     for r in group_rows(tuple(group), seed) if r["task"] in served]
    return tidy_frame([{**r, "setting": ctx.setting.name} for r in rows])


def _square(matrix: np.ndarray, names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(matrix, dtype=float), index=pd.Index(names, name="task"),
                        columns=names)


def _relate_setting(ctx: _Context, out: Path) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    from polytask._summaries import comparisons
    from polytask.relate import rank_agreement

    rel = ctx.rel
    measured = _measures(ctx)
    names = [str(n) for n in measured.pop("_names")] or list(
        ctx.cache.get(ctx.setting, rel.seeds[0]).tasks.names)
    notes: list[str] = []
    if rel.transfer_pairs is not None:
        tm = _transfer(ctx, names)
        measured["transfer_gain"] = tm.gain
        if not tm.evaluated[~np.eye(len(names), dtype=bool)].all():
            notes.append("pairwise transfer within a budget: untrained pairs count as 0 in "
                         "the grouping")
    matrices = {k: _square(v, names) for k, v in measured.items()}
    out.mkdir(parents=True, exist_ok=True)
    for k, frame in matrices.items():
        frame.to_csv(out / MATRIX_FILES[k])
    measure = rel.measure
    grouping = _group(rel, measured[_MEASURE_MATRIX[measure]], names)
    group_info = {"measure": measure, "matrix": _MEASURE_MATRIX[measure], "k": rel.k,
                  "overlapping": rel.overlapping, "groups": [list(g) for g in grouping.groups],
                  "served_by": grouping.served_by, "task_scores": grouping.task_scores,
                  "score": grouping.score, "method": grouping.method}
    write_atomic(out / "grouping.json", json.dumps(group_info, indent=1))
    table = _train_groups(ctx, grouping, names)
    split = ctx.cache.get(ctx.setting, rel.seeds[0])
    main = [t.name for t in split.tasks if t.is_main]
    metric = ctx.cfg.metric or split.tasks[main[0]].primary_metric
    baselines = {STL_METHOD: STL_METHOD, ALL_METHOD: STL_METHOD, GROUPS_METHOD: STL_METHOD}
    per, dm, neg = comparisons(table, baselines, metric, main, rel.alpha)
    table.to_csv(out / "results.csv", index=False)
    per.to_csv(out / "per_task.csv", index=False)
    dm.to_csv(out / "delta_m.csv", index=False)
    neg.to_csv(out / "negative_transfer.csv", index=False)
    delta = dict(zip(dm["method"], dm["delta_m"].astype(float), strict=True))
    agreement: dict[str, float | None] = {}
    if "transfer_gain" in measured:
        for k, v in measured.items():
            if k not in ("transfer_gain", "gradient_conflict"):
                try:
                    agreement[k] = rank_agreement(v, measured["transfer_gain"])
                except ValueError:
                    agreement[k] = None
    negative = neg[(neg["method"] == ALL_METHOD) & neg["negative"].astype(bool)]
    if len(rel.seeds) < 2:
        notes.append("negative-transfer tests need at least 2 seeds")
    summary = {
        "setting": ctx.setting.name, "metric": metric, "seeds": list(rel.seeds),
        "measures": sorted(matrices), "grouping": group_info,
        "delta_m": {"groups": delta.get(GROUPS_METHOD), "all tasks": delta.get(ALL_METHOD)},
        "groups_beat_all_tasks": bool(delta.get(GROUPS_METHOD, np.nan)
                                      > delta.get(ALL_METHOD, np.nan)),
        "groups_beat_stl": bool(delta.get(GROUPS_METHOD, np.nan) > 0.0),
        "negative_transfer_tasks": sorted(negative["task"].astype(str)),
        "rank_agreement_with_transfer": agreement, "notes": notes,
    }
    write_atomic(out / "summary.json", json.dumps(summary, indent=1))
    return summary, matrices


def run_relatedness(config: ExperimentConfig | str | os.PathLike[str],
                    run_dir: str | os.PathLike[str] | None = None, *, quick: bool = False,
                    progress: bool = True) -> RelateResult:
    """Measure relatedness, recommend a grouping of the tasks and check it by training.

    Parameters
    ----------
    config : ExperimentConfig or path-like
        A configuration with a ``relate`` section, or its YAML file.
    run_dir : path-like, optional
        Output folder; default ``runs/<name>`` (``-quick`` appended with ``quick``), the
        same as the benchmark's so that one report shows both.
    quick : bool, default=False
        Shrink the run (see :func:`polytask._config.quick_config`).
    progress : bool, default=True
        Show a progress bar.

    Returns
    -------
    RelateResult

    Raises
    ------
    ConfigError
        If the configuration has no ``relate`` section or does not fit the data.
    UnitError
        If a training fails; the message names it.

    Examples
    --------
    >>> from polytask._config import parse_config
    >>> cfg = parse_config({"dataset": {"synthetic": "mmoe"},
    ...                     "models": [{"type": "deep", "stl": True}]})
    >>> run_relatedness(cfg, "unused")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    polytask._config_checks.ConfigError: relate: the configuration has no relate section...
    """
    cfg = load_config(config) if not isinstance(config, ExperimentConfig) else config
    if cfg.relate is None:
        raise ConfigError("relate: the configuration has no relate section; add one "
                          "(see examples/synthetic_clusters.yaml)")
    if quick:
        cfg = quick_config(cfg)
    assert cfg.relate is not None
    out = Path(run_dir) if run_dir is not None else Path("runs") / (
        cfg.name + ("-quick" if cfg.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    write_config(cfg, out)
    cache = SplitCache(cfg)
    n_seeds = len(cfg.relate.seeds)
    estimate = len(cfg.settings) * n_seeds * (4 + cfg.relate.k)
    loop = UnitLoop(UnitStore(out / "units"), cfg.budget, estimate, progress,
                    f"{cfg.name} relate")
    summaries: dict[str, dict[str, Any]] = {}
    matrices: dict[str, dict[str, pd.DataFrame]] = {}
    try:
        for setting in cfg.settings:
            ctx = _Context(cfg, cfg.relate, setting, loop, cache)
            target = out / "relatedness" / slug(setting.name)
            try:
                summaries[setting.name], matrices[setting.name] = _relate_setting(ctx, target)
            except _BudgetSpent:
                break
    finally:
        loop.close()
    return RelateResult(run_dir=out, summaries=summaries, matrices=matrices,
                        complete=not loop.stopped, n_trained=loop.n_trained,
                        n_reused=loop.n_reused)


__all__ = ["RelateResult", "run_relatedness"]
