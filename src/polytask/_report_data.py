"""Read what a run directory holds, for the report; every piece is optional."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

MATRIX_FILES = {"gradient_cosine": "gradient_cosine.csv",
                "gradient_conflict": "gradient_conflict.csv", "affinity": "affinity.csv",
                "linear_cosine": "linear_cosine.csv", "transfer_gain": "transfer_gain.csv"}
"""The relatedness matrices ``polytask relate`` writes, and their file names."""


def _csv(path: Path, index_col: int | None = None) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, index_col=index_col)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError):
        return None
    return frame


def _json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


@dataclass
class RelatedData:
    """One setting's ``relatedness/<setting>/`` folder."""

    setting: str
    matrices: dict[str, pd.DataFrame] = field(default_factory=dict)
    grouping: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    delta_m: pd.DataFrame | None = None
    per_task: pd.DataFrame | None = None
    negative: pd.DataFrame | None = None


@dataclass
class RunData:
    """Everything the report can show; ``None`` where a piece is absent."""

    run_dir: Path
    name: str
    config_text: str | None = None
    status: dict[str, Any] | None = None
    results: pd.DataFrame | None = None
    per_task: pd.DataFrame | None = None
    delta_m: pd.DataFrame | None = None
    negative: pd.DataFrame | None = None
    curves: pd.DataFrame | None = None
    related: list[RelatedData] = field(default_factory=list)


def _curves(run_dir: Path) -> pd.DataFrame | None:
    """Validation (else training) curves of the first seed of every deep unit."""
    units = run_dir / "units"
    if not units.is_dir():
        return None
    frames = []
    seen: set[tuple[str, str]] = set()
    for path in sorted(units.rglob("seed-*.json"), key=lambda p: (len(p.parts), str(p))):
        record = _json(path)
        if not isinstance(record, dict) or not record.get("logs") or "method" not in record:
            continue
        key = (str(record.get("setting")), str(record["method"]))
        if key in seen:
            continue
        seen.add(key)
        for log in record["logs"]:
            metrics = run_dir / log / "metrics.jsonl"
            if not metrics.is_file():
                continue
            try:
                rows = [json.loads(line) for line in
                        metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
            except (OSError, json.JSONDecodeError):
                continue
            if rows:
                frames.append(pd.DataFrame(rows).assign(setting=key[0], method=key[1],
                                                        seed=record.get("seed")))
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)


def _related(run_dir: Path) -> list[RelatedData]:
    root = run_dir / "relatedness"
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        summary = _json(folder / "summary.json")
        rd = RelatedData(setting=summary.get("setting", folder.name) if isinstance(
            summary, dict) else folder.name, summary=summary if isinstance(summary, dict)
            else None)
        for key, name in MATRIX_FILES.items():
            frame = _csv(folder / name, index_col=0)
            if frame is not None and not frame.empty:
                rd.matrices[key] = frame
        grouping = _json(folder / "grouping.json")
        rd.grouping = grouping if isinstance(grouping, dict) else None
        rd.delta_m = _csv(folder / "delta_m.csv")
        rd.per_task = _csv(folder / "per_task.csv")
        rd.negative = _csv(folder / "negative_transfer.csv")
        out.append(rd)
    return out


def read_run(run_dir: Path) -> RunData:
    """Read every piece of ``run_dir`` the report can use.

    Parameters
    ----------
    run_dir : Path
        A run directory written by ``polytask bench`` and/or ``polytask relate``.

    Returns
    -------
    RunData
    """
    config = run_dir / "config.yaml"
    text = config.read_text(encoding="utf-8") if config.is_file() else None
    status = _json(run_dir / "run.json")
    name = run_dir.resolve().name
    if isinstance(status, dict) and status.get("name"):
        name = str(status["name"])
    elif text is not None:
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError:
            raw = None
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            name = raw["name"]
    return RunData(
        run_dir=run_dir, name=name, config_text=text,
        status=status if isinstance(status, dict) else None,
        results=_csv(run_dir / "results.csv"), per_task=_csv(run_dir / "per_task.csv"),
        delta_m=_csv(run_dir / "delta_m.csv"), negative=_csv(run_dir / "negative_transfer.csv"),
        curves=_curves(run_dir), related=_related(run_dir))


__all__ = ["MATRIX_FILES", "RelatedData", "RunData", "read_run"]
