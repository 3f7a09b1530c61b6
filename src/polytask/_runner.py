"""The experiment runner: every model × seed × setting on identical splits, resumable.

For every setting and seed the data are drawn (or loaded) and split once; every model
configured — the single-task baselines first — is trained on those parts and scored
on the same test part.  Each finished (setting, model, seed) unit is written to
``units/`` at once (see :mod:`polytask._units`), so an interrupted run resumes where it
stopped and a finished one is not redone.  The run directory then holds::

    config.yaml        the configuration (as read)
    run.json           status: models, baselines, counts, completeness
    units/...json      one record per finished unit
    logs/...           the deep trainers' run directories (metrics.jsonl)
    results.csv        tidy table: setting, task, method, seed, metric, value
    per_task.csv       mean ± std per task and method, gain over the baseline (%)
    delta_m.csv        Δm% per method (mean ± std over seeds) against its baseline
    negative_transfer.csv   per task: is the method reliably worse than its baseline?
    undefined.csv      main-task scores left out: the metric is undefined on that seed's
                       test labels (e.g. ROC-AUC of a part holding one class); the
                       means, Δm% and tests above use the tasks that remain
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from polytask._config import BudgetConfig, ExperimentConfig, Setting, load_config, quick_config
from polytask._config_checks import ConfigError
from polytask._config_models import ModelConfig
from polytask._experiment_data import SplitData, load_setting, split_setting
from polytask._units import Unit, UnitStore, slug, unit_key, write_atomic
from polytask.experiment import tidy_frame

_RESULT_FILES = ("results.csv", "per_task.csv", "delta_m.csv", "negative_transfer.csv",
                 "undefined.csv")
UNDEFINED_COLUMNS = ("setting", "method", "seed", "task", "metric")


class UnitError(ValueError):
    """A unit failed; the message names the unit and the cause."""


class UnitLoop:
    """Runs units once: reuses finished records, enforces the budget, shows progress.

    Parameters
    ----------
    store : UnitStore
        The run directory's finished units.
    budget : BudgetConfig
        Stop starting new units after ``max_units`` or ``time_limit`` seconds.
    total : int
        Number of units, for the progress bar.
    progress : bool
        Show a tqdm progress bar on stderr.
    desc : str
        Its label.
    """

    def __init__(self, store: UnitStore, budget: BudgetConfig, total: int, progress: bool,
                 desc: str) -> None:
        from tqdm.auto import tqdm

        self.store, self.budget = store, budget
        self.n_trained = self.n_reused = 0
        self.stopped = False
        self._start = time.monotonic()
        self._bar = tqdm(total=total, desc=desc, unit="run", disable=not progress,
                         leave=False)

    def _exhausted(self) -> bool:
        b = self.budget
        if b.max_units is not None and self.n_trained >= b.max_units:
            return True
        return b.time_limit is not None and time.monotonic() - self._start >= b.time_limit

    def run(self, unit: Unit, train: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """The record of ``unit``: reused, or trained now; None once the budget is spent."""
        record = self.store.load(unit)
        if record is not None:
            self.n_reused += 1
            self._bar.update()
            return record
        if self.stopped or self._exhausted():
            self.stopped = True
            return None
        self._bar.set_postfix_str(unit.label[:40])
        start = time.monotonic()
        try:
            record = train()
        except ConfigError:
            raise
        except (ValueError, TypeError, RuntimeError) as err:
            raise UnitError(f"{unit.label}: {err}") from err
        record["seconds"] = round(time.monotonic() - start, 3)
        saved = self.store.save(unit, record)
        self.n_trained += 1
        self._bar.update()
        return saved

    def close(self) -> None:
        """Close the progress bar."""
        self._bar.close()


def prepare_log_dir(path: Path, key: str) -> Path:
    """``path`` emptied unless it belongs to the unit ``key`` (so a trainer may resume)."""
    marker = path / "unit.key"
    if path.exists() and (not marker.is_file() or marker.read_text() != key):
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    marker.write_text(key)
    return path


def _without_defaults(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """``asdict(obj)`` without the named fields left at their defaults.

    Fields added to a section after runs were made are listed here, so that the keys of
    units that do not use them stay what they were (finished runs are reused).
    """
    out = dataclasses.asdict(obj)
    defaults = type(obj)()
    for name in fields:
        if getattr(obj, name) == getattr(defaults, name):
            out.pop(name, None)
    return out


def data_spec(cfg: ExperimentConfig, setting: Setting) -> dict[str, Any]:
    """What a unit's data depend on (for its key)."""
    return {"dataset": _without_defaults(cfg.dataset, ("standardize_targets",)),
            "setting": setting.params,
            "tasks": _without_defaults(cfg.tasks, ("task_metrics",)),
            "split": dataclasses.asdict(cfg.split)}


def model_spec(model: ModelConfig) -> dict[str, Any]:
    """What a unit's training depends on (the baseline it is compared with does not)."""
    spec = dataclasses.asdict(model)
    spec.pop("baseline")
    return {"type": model.type, **spec}


class SplitCache:
    """Loads and splits the data of a (setting, seed) once, when a unit first needs it.

    The splits of the current setting are kept; moving to another setting frees them.
    """

    def __init__(self, cfg: ExperimentConfig) -> None:
        self.cfg = cfg
        self._raw: dict[tuple[str, int | None], Any] = {}
        self._splits: dict[tuple[str, int], SplitData] = {}

    def get(self, setting: Setting, seed: int) -> SplitData:
        """The split of ``setting`` for ``seed``."""
        key = (setting.name, seed)
        if key not in self._splits:
            synthetic = self.cfg.dataset.synthetic is not None and self.cfg.dataset.seed is None
            raw_key = (setting.name, seed if synthetic else None)
            if raw_key not in self._raw:
                self._raw = {raw_key: load_setting(self.cfg, setting, seed)}
            data, test = self._raw[raw_key]
            kept = {k: v for k, v in self._splits.items() if k[0] == setting.name}
            self._splits = {**kept, key: split_setting(self.cfg, data, test, seed)}
        return self._splits[key]


def _units(cfg: ExperimentConfig) -> Iterator[tuple[Setting, int, ModelConfig, Unit]]:
    ordered = sorted(cfg.models, key=lambda m: not m.single_task)
    for setting in cfg.settings:
        data = data_spec(cfg, setting)
        for seed in cfg.seeds:
            for model in ordered:
                key = unit_key({**data, "model": model_spec(model), "seed": seed})
                label = f"{setting.name}/{model.name}/seed {seed}"
                yield setting, seed, model, Unit((setting.name, model.name), seed, key, label)


def train_unit(model: ModelConfig, split: SplitData, seed: int, log_dir: Path | None,
               run_dir: Path) -> dict[str, Any]:
    """Train one model on one split; its record (rows, info, primary metrics, logs)."""
    from polytask._config_models import LinearModelConfig

    if isinstance(model, LinearModelConfig):
        from polytask._fit_linear import fit_linear_unit

        rows, info = fit_linear_unit(model, split, seed)
    else:
        from polytask._fit_deep import fit_deep_unit

        rows, info = fit_deep_unit(model, split, seed, log_dir)
    logs = [os.path.relpath(p, run_dir) for p in info.pop("logs", [])]
    return {"rows": rows, "info": info, "logs": logs,
            "primary": {t.name: t.primary_metric for t in split.tasks},
            "main": [t.name for t in split.tasks if t.is_main],
            "undefined": undefined_metrics(split.tasks, rows)}


def undefined_metrics(tasks: Any, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Main-task metrics that ``rows`` lack: undefined on that task's test labels.

    A rare task's test part may hold one class, where ROC-AUC is undefined; the unit
    leaves such a score out (``Task.evaluate(..., undefined="skip")``) and records it
    here, so tables can report how many (task, seed) scores their means exclude.

    Examples
    --------
    >>> from polytask.tasks import Task, TaskSet
    >>> ts = TaskSet([Task("a", kind="binary", metrics=["roc_auc", "accuracy"])])
    >>> undefined_metrics(ts, [{"task": "a", "metric": "accuracy", "value": 1.0}])
    [{'task': 'a', 'metric': 'roc_auc'}]
    """
    have = {(r["task"], r["metric"]) for r in rows}
    return [{"task": t.name, "metric": m} for t in tasks if t.is_main
            for m in t.metric_names if (t.name, m) not in have]


@dataclass(frozen=True)
class ExperimentResult:
    """What :func:`run_experiment` produced (also written to the run directory).

    Attributes
    ----------
    results : pandas.DataFrame
        Tidy table: setting, task, method, seed, metric, value.
    per_task : pandas.DataFrame
        Per (setting, task, method): mean, std, gain_pct over the baseline, baseline.
    delta_m : pandas.DataFrame
        Per (setting, method): delta_m, delta_m_std, n_seeds, baseline, metric.
    negative_transfer : pandas.DataFrame
        Per (setting, method, task): the paired test against the baseline.
    metric : str
        The metric of the comparison.
    run_dir : Path
    complete : bool
        False when the budget stopped the run (rerun to continue).
    n_trained, n_reused : int
        Units trained now, and units found finished.

    Examples
    --------
    >>> import tempfile
    >>> from polytask._config import parse_config
    >>> cfg = parse_config({"seeds": 2, "dataset": {"synthetic": "group_sparse",
    ...     "params": {"n_samples": 50, "n_features": 6, "n_tasks": 2, "n_active": 2}},
    ...     "models": [{"type": "linear", "model": "ridge", "fit": "per_task", "name": "STL",
    ...                 "params": {"beta": 1.0}},
    ...                {"type": "linear", "model": "l21", "name": "L21",
    ...                 "params": {"alpha": 0.05}}]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = run_experiment(cfg, tmp, progress=False)
    >>> res.complete, res.metric, sorted(set(res.results["task"]))
    (True, 'mse', ['task_0', 'task_1'])
    >>> res.delta_m[["method", "baseline", "n_seeds"]].values.tolist()
    [['STL', 'STL', 2], ['L21', 'STL', 2]]
    """

    results: pd.DataFrame
    per_task: pd.DataFrame
    delta_m: pd.DataFrame
    negative_transfer: pd.DataFrame
    metric: str
    run_dir: Path
    complete: bool
    n_trained: int
    n_reused: int


def write_config(cfg: ExperimentConfig, run_dir: Path) -> None:
    """Write the configuration as read to ``run_dir/config.yaml``."""
    import yaml

    head = f"# polytask configuration{' (run with --quick)' if cfg.quick else ''}\n"
    write_atomic(run_dir / "config.yaml", head + yaml.safe_dump(cfg.raw, sort_keys=False))


def _shard_worker(cfg: ExperimentConfig, run_dir: Path, shard: tuple[int, int],
                  threads: int) -> None:
    """Train one shard of the units in a fresh process (see ``jobs``)."""
    import torch

    torch.set_num_threads(threads)
    run_experiment(cfg, run_dir, shard=shard, progress=False)


def _run_shards(cfg: ExperimentConfig, out: Path, jobs: int) -> None:
    """Train the units in ``jobs`` spawned processes, unit ``i`` in process ``i % jobs``."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch

    threads = max(1, torch.get_num_threads() // jobs)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        futures = [pool.submit(_shard_worker, cfg, out, (i, jobs), threads)
                   for i in range(jobs)]
        for f in futures:
            f.result()


def run_experiment(config: ExperimentConfig | str | os.PathLike[str],
                   run_dir: str | os.PathLike[str] | None = None, *, quick: bool = False,
                   progress: bool = True, jobs: int = 1,
                   shard: tuple[int, int] | None = None) -> ExperimentResult:
    """Train every configured model on every setting and seed; compare with the baselines.

    Parameters
    ----------
    config : ExperimentConfig or path-like
        A configuration or its YAML file.
    run_dir : path-like, optional
        Output folder (created); default ``runs/<name>`` (``runs/<name>-quick`` with
        ``quick``).  Rerunning into the same folder reuses every finished unit.
    quick : bool, default=False
        Shrink the run (see :func:`polytask._config.quick_config`).
    progress : bool, default=True
        Show a progress bar.
    jobs : int, default=1
        Train the units in this many processes at once (spawned; each gets
        ``torch.get_num_threads() // jobs`` threads), then collect them here.  Every
        unit is trained exactly as with ``jobs=1`` (same splits and seeds), so the
        results are the same.
    shard : (int, int), optional
        ``(i, n)``: train only the units whose position is ``i`` modulo ``n``; the
        others are reused when finished and otherwise left for another shard (the
        result is then incomplete).  Used by ``jobs``.

    Returns
    -------
    ExperimentResult

    Raises
    ------
    ConfigError
        If the configuration is invalid or does not fit the data.
    UnitError
        If a unit fails to train; the message names it.

    Examples
    --------
    >>> import tempfile
    >>> from polytask._config import parse_config
    >>> cfg = parse_config({"seeds": 2, "dataset": {"synthetic": "low_rank",
    ...     "params": {"n_samples": 60, "n_features": 5, "n_tasks": 3, "rank": 1}},
    ...     "models": [{"type": "linear", "model": "ridge", "fit": "per_task", "name": "STL",
    ...                 "params": {"beta": 0.1}},
    ...                {"type": "linear", "model": "trace_norm", "name": "trace",
    ...                 "params": {"alpha": 0.1}}]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = run_experiment(cfg, tmp, progress=False)
    ...     again = run_experiment(cfg, tmp, progress=False)
    >>> sorted(res.delta_m["method"]), res.n_trained, again.n_trained, again.n_reused
    (['STL', 'trace'], 4, 0, 4)
    """
    cfg = load_config(config) if not isinstance(config, ExperimentConfig) else config
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if shard is not None and not (len(shard) == 2 and 0 <= shard[0] < shard[1]):
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
    if quick:
        cfg = quick_config(cfg)
    out = Path(run_dir) if run_dir is not None else Path("runs") / (
        cfg.name + ("-quick" if cfg.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    write_config(cfg, out)
    if jobs > 1 and shard is None:
        _run_shards(cfg, out, jobs)
    units = list(_units(cfg))
    loop = UnitLoop(UnitStore(out / "units"), cfg.budget, len(units), progress, cfg.name)
    cache = SplitCache(cfg)
    records: list[dict[str, Any]] = []
    partial = False
    try:
        for position, (setting, seed, model, unit) in enumerate(units):
            if shard is not None and position % shard[1] != shard[0]:
                record = loop.store.load(unit)
                if record is not None:
                    records.append(record)
                else:
                    partial = True  # another shard's unit, not finished yet
                continue
            log_dir = out / "logs" / slug(setting.name) / slug(model.name) / f"seed-{seed}"

            def train(setting: Setting = setting, seed: int = seed, model: ModelConfig = model,
                      unit: Unit = unit, log_dir: Path = log_dir) -> dict[str, Any]:
                split = cache.get(setting, seed)
                logs = prepare_log_dir(log_dir, unit.key) if model.type == "deep" else None
                record = train_unit(model, split, seed, logs, out)
                if logs is not None:  # finished: the mid-training checkpoints are not needed
                    for ckpt in logs.rglob("checkpoint.pt"):
                        ckpt.unlink()
                return {"setting": setting.name, "method": model.name, **record}

            record = loop.run(unit, train)
            if record is not None:
                records.append(record)
    finally:
        loop.close()
    return _finish(cfg, out, records, loop, len(units), partial)


def _finish(cfg: ExperimentConfig, out: Path, records: list[dict[str, Any]],
            loop: UnitLoop, total: int, partial: bool = False) -> ExperimentResult:
    from polytask._summaries import comparisons, main_metric

    rows = [{"setting": r["setting"], "method": r["method"], "seed": r["seed"], **row}
            for r in records for row in r["rows"]]
    table = tidy_frame(rows)
    main = sorted({t for r in records for t in r.get("main", [])})
    metric = main_metric(cfg, records)
    baselines = {m.name: m.baseline for m in cfg.models}
    per_task, delta, negative = comparisons(table, baselines, metric, main,
                                            cfg.relate.alpha if cfg.relate else 0.05)
    for name in _RESULT_FILES:
        (out / name).unlink(missing_ok=True)
    table.to_csv(out / "results.csv", index=False)
    per_task.to_csv(out / "per_task.csv", index=False)
    delta.to_csv(out / "delta_m.csv", index=False)
    negative.to_csv(out / "negative_transfer.csv", index=False)
    pd.DataFrame([{"setting": r["setting"], "method": r["method"], "seed": r["seed"], **u}
                  for r in records for u in r.get("undefined", [])],
                 columns=list(UNDEFINED_COLUMNS)).to_csv(out / "undefined.csv", index=False)
    status = {
        "name": cfg.name, "quick": cfg.quick, "complete": not (loop.stopped or partial),
        "metric": metric, "seeds": list(cfg.seeds),
        "settings": [s.name for s in cfg.settings], "main_tasks": main,
        "models": [{"name": m.name, "type": m.type, "baseline": m.baseline,
                    "single_task": m.single_task} for m in cfg.models],
        "n_units": total,
        "n_trained": loop.n_trained, "n_reused": loop.n_reused,
    }
    write_atomic(out / "run.json", json.dumps(status, indent=1))
    return ExperimentResult(results=table, per_task=per_task, delta_m=delta,
                            negative_transfer=negative, metric=metric, run_dir=out,
                            complete=not (loop.stopped or partial),
                            n_trained=loop.n_trained,
                            n_reused=loop.n_reused)


__all__ = ["ExperimentResult", "UnitError", "UnitLoop", "run_experiment",
           "undefined_metrics"]
