"""What a training run records: the :class:`History`, and the run directory's logs.

A run directory holds ``config.json`` (the trainer's hyperparameters),
``metrics.jsonl`` (one JSON object per line: ``epoch``, ``step``, ``split``, ``task``,
``metric``, ``value``; the training losses and task weights are rows with
``metric="loss"`` and ``metric="weight"``), ``checkpoint.pt``, and TensorBoard events
under ``tensorboard/`` when ``torch.utils.tensorboard`` and ``tensorboard`` are
installed (otherwise they are skipped with a debug message).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._checkpoint import write_text_atomic

logger = logging.getLogger("polytask.deep.trainer")

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
_RECORD_KEYS = ("epoch", "step", "split", "task", "metric", "value")


@dataclass
class History:
    """The record of a training run, per epoch, split, task and metric.

    Attributes
    ----------
    records : list of dict
        One dict per measurement with the keys ``epoch`` (1-based), ``step`` (optimizer
        steps so far), ``split`` (``"train"`` or ``"val"``), ``task``, ``metric`` and
        ``value``. Training rows are the mean loss (``metric="loss"``) and the mean task
        weight of the method (``metric="weight"``); validation rows are the tasks'
        metrics and losses.
    scores : list of float or None
        Per epoch, the model-selection score on the validation data: the mean over the
        *main* tasks of their primary metric, each signed so that higher is better
        (``-mse``, ``+roc_auc``). ``None`` without validation data.
    best_epoch : int or None
        Epoch with the highest score (the last epoch without validation data).
    stopped_early : bool
        Whether early stopping ended the run.

    Examples
    --------
    >>> h = History()
    >>> h.add(1, 10, "val", "a", "mse", 0.5)
    >>> h.add(2, 20, "val", "a", "mse", 0.25)
    >>> h.metric("a", "mse")
    [0.5, 0.25]
    >>> History.from_json(h.to_json()) == h
    True
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def add(self, epoch: int, step: int, split: str, task: str, metric: str,
            value: float) -> None:
        """Append one measurement."""
        self.records.append({"epoch": int(epoch), "step": int(step), "split": split,
                             "task": task, "metric": metric, "value": float(value)})

    @property
    def n_epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.scores)

    @property
    def best_score(self) -> float | None:
        """Score of :attr:`best_epoch` (``None`` without validation data)."""
        if self.best_epoch is None or self.best_epoch > len(self.scores):
            return None
        return self.scores[self.best_epoch - 1]

    def metric(self, task: str, metric: str, split: str = "val") -> list[float]:
        """Values of one metric of one task over the epochs, in order.

        Parameters
        ----------
        task, metric : str
            Which series.
        split : {"train", "val"}, default="val"
            Which data.

        Returns
        -------
        list of float
            One value per epoch where it was measured.
        """
        return [r["value"] for r in self.records
                if r["task"] == task and r["metric"] == metric and r["split"] == split]

    def metrics_at(self, epoch: int, split: str = "val") -> dict[str, dict[str, float]]:
        """``{task: {metric: value}}`` of one epoch and split (weights excluded)."""
        out: dict[str, dict[str, float]] = {}
        for r in self.records:
            if r["epoch"] == epoch and r["split"] == split and r["metric"] != "weight":
                out.setdefault(r["task"], {})[r["metric"]] = r["value"]
        return out

    @property
    def best_metrics(self) -> dict[str, dict[str, float]]:
        """Validation metrics at :attr:`best_epoch` (training losses without validation)."""
        if self.best_epoch is None:
            return {}
        val = self.metrics_at(self.best_epoch, "val")
        return val if val else self.metrics_at(self.best_epoch, "train")

    def to_json(self) -> str:
        """The history as JSON text (non-finite values become ``null``)."""
        data = asdict(self)
        data["records"] = [{**r, "value": _finite_or_none(r["value"])} for r in self.records]
        data["scores"] = [_finite_or_none(s) for s in self.scores]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> History:
        """Rebuild a history from :meth:`to_json`."""
        data = json.loads(text)
        records = [{**r, "value": float("nan") if r["value"] is None else r["value"]}
                   for r in data["records"]]
        return cls(records=records, scores=list(data["scores"]),
                   best_epoch=data["best_epoch"], stopped_early=bool(data["stopped_early"]))

    def to_frame(self) -> Any:
        """The records as a pandas ``DataFrame`` with the columns of ``metrics.jsonl``."""
        import pandas as pd

        return pd.DataFrame.from_records(self.records, columns=list(_RECORD_KEYS))


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _json_value(value: object) -> object:
    """A JSON-friendly description of a hyperparameter value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    name = getattr(value, "__qualname__", None) or type(value).__qualname__
    return f"<{getattr(value, '__module__', '?')}.{name}>" if callable(value) else repr(value)


def config_json(config: Mapping[str, Any]) -> str:
    """Pretty, sorted JSON text of a configuration (objects are described by name)."""
    return json.dumps(_json_value(dict(config)), indent=2, sort_keys=True) + "\n"


class RunLogger:
    """Write a run's ``config.json``, ``metrics.jsonl`` and optional TensorBoard events.

    Parameters
    ----------
    run_dir : path-like or None
        The run directory; ``None`` logs nothing to disk.
    tensorboard : bool
        Write TensorBoard events when the packages are installed.
    enabled : bool
        ``False`` on DDP ranks other than 0 (only rank 0 writes).
    """

    def __init__(self, run_dir: Path | None, *, tensorboard: bool, enabled: bool) -> None:
        self.run_dir = run_dir if enabled else None
        self._want_tensorboard = tensorboard
        self._writer: Any = None

    def start(self, config: Mapping[str, Any], history: History) -> None:
        """Write ``config.json``; rewrite ``metrics.jsonl`` from ``history`` (resume)."""
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.run_dir / CONFIG_FILE, config_json(config))
        # Lines written after the checkpoint being resumed are dropped: the file always
        # matches the history of the checkpoint.
        write_text_atomic(self.run_dir / METRICS_FILE,
                          "".join(_line(r) for r in history.records))
        if self._want_tensorboard:
            self._writer = _summary_writer(self.run_dir / "tensorboard")

    def log(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records to ``metrics.jsonl`` and TensorBoard."""
        if self.run_dir is None:
            return
        rows = list(records)
        with open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write("".join(_line(r) for r in rows))
        if self._writer is not None:
            for r in rows:
                self._writer.add_scalar(f"{r['split']}/{r['task']}/{r['metric']}",
                                        r["value"], r["epoch"])
            self._writer.flush()

    def close(self) -> None:
        """Close the TensorBoard writer, if any."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _line(record: Mapping[str, Any]) -> str:
    row = {k: record[k] for k in _RECORD_KEYS}
    row["value"] = _finite_or_none(row["value"])
    return json.dumps(row) + "\n"


def _summary_writer(log_dir: Path) -> Any:
    """A TensorBoard ``SummaryWriter``, or ``None`` (debug message) when not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        logger.debug("TensorBoard logging skipped (not installed): %s", exc)
        return None
    return SummaryWriter(log_dir=str(log_dir))


def progress_bar(total: int | None, desc: str, enabled: bool) -> Any:
    """A ``tqdm`` progress bar over the steps of an epoch (disabled: a no-op bar)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


__all__ = ["CONFIG_FILE", "METRICS_FILE", "History", "RunLogger", "config_json",
           "progress_bar"]
