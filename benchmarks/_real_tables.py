"""Markdown tables of one real-data benchmark run (``benchmarks/real_sets.py``).

Everything is read back from the run directory that ``polytask bench`` wrote
(``results.csv``, ``per_task.csv``, ``delta_m.csv``, ``negative_transfer.csv`` and the
unit records with their training seconds), so a table can be rebuilt from a finished run
without training again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

#: A task counts as negative transfer when the paired test over seeds says "reliably
#: worse" AND the mean loss is at least this share of the baseline's score: on a fixed
#: published split, deterministic fits differ between seeds only through their CV folds,
#: so the test alone flags differences far too small to matter.
MIN_LOSS = 0.01


def flagged(neg: pd.DataFrame, setting: str) -> pd.DataFrame:
    """Rows of ``negative_transfer.csv`` that are reliably AND materially worse."""
    if not len(neg):
        return neg
    rel = neg["improvement"].abs() / neg["stl_mean"].abs().where(neg["stl_mean"] != 0, 1.0)
    keep = (neg["setting"] == setting) & neg["negative"].astype(bool) & (rel >= MIN_LOSS)
    return neg[keep]


def unit_seconds(run_dir: Path) -> pd.DataFrame:
    """Training seconds of every finished unit: setting, method, seed, seconds."""
    rows = []
    for f in sorted((run_dir / "units").rglob("*.json")):
        rec = json.loads(f.read_text())
        rows.append({"setting": rec["setting"], "method": rec["method"], "seed": rec["seed"],
                     "seconds": float(rec.get("seconds", np.nan))})
    return pd.DataFrame(rows, columns=["setting", "method", "seed", "seconds"])


def _pm(mean: float, std: float, digits: int = 3) -> str:
    if not np.isfinite(mean):
        return "–"
    if not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _signed(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:+.2f} ± {std:.2f}" if np.isfinite(std) else f"{mean:+.2f}"


def set_level(results: pd.DataFrame, setting: str) -> pd.DataFrame:
    """Multi-label set metrics per method (mean ± std over seeds), when counts were recorded.

    Hamming loss = mean over tasks of the per-task error rate (1 − accuracy); micro-F1 =
    2Σtp / (2Σtp + Σfp + Σfn) over all labels; macro-F1 = mean over labels of the per-label
    F1 (computed from the same counts; a label never predicted nor present counts as 1).
    """
    sub = results[results["setting"] == setting]
    need = {"n_tp", "n_fp", "n_fn", "accuracy"}
    if not need <= set(sub["metric"]):
        return pd.DataFrame()
    wide = sub[sub["metric"].isin(need)].pivot_table(
        index=["method", "seed", "task"], columns="metric", values="value").reset_index()
    per_seed = []
    for (method, seed), g in wide.groupby(["method", "seed"], sort=False):
        tp, fp, fn = g["n_tp"].to_numpy(), g["n_fp"].to_numpy(), g["n_fn"].to_numpy()
        denom = 2 * tp + fp + fn
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 1.0)
        per_seed.append({"method": method, "seed": seed,
                         "hamming": float(np.mean(1 - g["accuracy"])),
                         "micro_f1": float(2 * tp.sum() / max(denom.sum(), 1)),
                         "macro_f1": float(f1.mean())})
    df = pd.DataFrame(per_seed)
    return df.groupby("method", sort=False).agg(["mean", "std"])


def summary_table(run_dir: Path, setting: str, primary: str) -> str:
    """One row per method: Δm%, mean primary metric over tasks, transfer counts, time."""
    delta = pd.read_csv(run_dir / "delta_m.csv", dtype={"task": str})
    per_task = pd.read_csv(run_dir / "per_task.csv", dtype={"task": str})
    neg = pd.read_csv(run_dir / "negative_transfer.csv", dtype={"task": str})
    results = pd.read_csv(run_dir / "results.csv", dtype={"task": str})
    secs = unit_seconds(run_dir)
    delta = delta[delta["setting"] == setting]
    per_task = per_task[per_task["setting"] == setting]
    neg = flagged(neg, setting)
    secs = secs[secs["setting"] == setting]
    sl = set_level(results, setting)
    res = results[(results["setting"] == setting) & (results["metric"] == primary)]
    head = ["method", "baseline", f"Δm% ({primary})", f"mean {primary} over tasks",
            "tasks better / worse", "reliably worse (≥ 1 %)", "s per run"]
    if len(sl):
        head[4:4] = ["Hamming loss", "micro-F1", "macro-F1"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in delta.iterrows():
        m = row["method"]
        over_tasks = res[res["method"] == m].groupby("seed")["value"].mean()
        pt = per_task[per_task["method"] == m]
        if m == row["baseline"]:
            counts, worse = "–", "–"
        else:
            g = pt["gain_pct"].to_numpy()  # oriented: positive = better than baseline
            counts = f"{int(np.sum(g > 0))} / {int(np.sum(g < 0))}"
            worse = str(int((neg["method"] == m).sum())) if len(neg) else "0"
        s = secs[secs["method"] == m]["seconds"]
        cells = [m, row["baseline"], _signed(row["delta_m"], row["delta_m_std"]),
                 _pm(over_tasks.mean(), over_tasks.std(ddof=1) if len(over_tasks) > 1
                     else np.nan), counts, worse,
                 f"{s.median():.1f}" if len(s) else "–"]
        if len(sl):
            if m in sl.index:
                r = sl.loc[m]
                cells[4:4] = [_pm(r[("hamming", "mean")], r[("hamming", "std")]),
                              _pm(r[("micro_f1", "mean")], r[("micro_f1", "std")]),
                              _pm(r[("macro_f1", "mean")], r[("macro_f1", "std")])]
            else:
                cells[4:4] = ["–"] * 3
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_task_table(run_dir: Path, setting: str, primary: str, max_tasks: int = 16) -> str:
    """Per-task primary metric (mean over seeds) for every method; ▼ = reliably worse.

    With more than ``max_tasks`` tasks, the table lists per method the tasks flagged as
    reliably worse than the baseline (negative transfer) and the five largest losses.
    """
    per_task = pd.read_csv(run_dir / "per_task.csv", dtype={"task": str})
    per_task = per_task[per_task["setting"] == setting]
    neg = pd.read_csv(run_dir / "negative_transfer.csv", dtype={"task": str})
    neg = flagged(neg, setting)
    marked = set(zip(neg["method"], neg["task"], strict=True)) if len(neg) else set()
    tasks = list(dict.fromkeys(per_task["task"]))
    methods = list(dict.fromkeys(per_task["method"]))
    if len(tasks) <= max_tasks:
        lines = ["| method | " + " | ".join(tasks) + " |", "|" + "---|" * (len(tasks) + 1)]
        for m in methods:
            pt = per_task[per_task["method"] == m].set_index("task")
            cells = []
            for t in tasks:
                v = pt["mean"].get(t, np.nan)
                mark = " ▼" if (m, t) in marked else ""
                cells.append(f"{v:.3f}{mark}" if np.isfinite(v) else "–")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        return "\n".join(lines)
    lines = ["| method | tasks reliably worse than baseline | five largest losses (gain %) |",
             "|---|---|---|"]
    for m in methods:
        pt = per_task[per_task["method"] == m]
        if (pt["baseline"] == m).all():
            continue
        worst = pt.nsmallest(5, "gain_pct")
        losses = ", ".join(f"{t} {g:+.1f}" for t, g in zip(worst["task"], worst["gain_pct"],
                                                            strict=True))
        bad = sorted(t for (mm, t) in marked if mm == m)
        shown = ", ".join(bad[:8]) + (f" … ({len(bad)})" if len(bad) > 8 else "")
        lines.append(f"| {m} | {shown or 'none'} | {losses} |")
    return "\n".join(lines)


def task_metric_table(run_dir: Path, setting: str,
                      columns: tuple[tuple[str, str, float], ...]) -> str:
    """One column per ``(task, metric, scale)``: the test score × scale, mean ± std over seeds.

    For the scores a figure to beat is quoted in when they are not the Δm% metric; a
    method that did not record one gets "–".
    """
    results = pd.read_csv(run_dir / "results.csv", dtype={"task": str})
    results = results[results["setting"] == setting]
    methods = list(dict.fromkeys(results["method"]))
    head = [f"{task} {metric}" for task, metric, _ in columns]
    lines = ["| method | " + " | ".join(head) + " |", "|" + "---|" * (len(head) + 1)]
    for m in methods:
        cells = []
        for task, metric, scale in columns:
            v = results[(results["method"] == m) & (results["task"] == task)
                        & (results["metric"] == metric)]["value"].to_numpy() * scale
            std = float(v.std(ddof=1)) if len(v) > 1 else np.nan
            cells.append(_pm(float(v.mean()), std, 2) if len(v) else "–")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def undefined_note(run_dir: Path, setting: str, metric: str) -> str:
    """A sentence on the test scores left out because ``metric`` is undefined there.

    The runner leaves out a task's score on a seed whose test part holds one class
    (MoleculeNet's convention) and lists it in ``undefined.csv``; means over tasks and
    Δm% of that seed use the tasks that remain.  Empty when nothing was left out.
    """
    path = run_dir / "undefined.csv"
    if not path.exists():
        return ""
    und = pd.read_csv(path, dtype={"task": str})
    und = und[(und["setting"] == setting) & (und["metric"] == metric)]
    if und.empty:
        return ""
    pairs = und[["task", "seed"]].drop_duplicates()
    per_task = pairs.groupby("task", sort=True)["seed"].apply(
        lambda s: ", ".join(str(int(v)) for v in sorted(s)))
    listed = "; ".join(f"{t} (seed {seeds})" for t, seeds in per_task.items())
    return (f"{len(pairs)} (task, seed) test score(s) left out, {metric} undefined because "
            f"the test part holds one class (MoleculeNet's convention; means and Δm% of "
            f"those seeds use the other tasks): {listed}.")


__all__ = ["per_task_table", "set_level", "summary_table", "task_metric_table", "undefined_note",
           "unit_seconds"]
