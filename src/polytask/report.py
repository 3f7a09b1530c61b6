"""A self-contained HTML report of a run directory.

``polytask report RUN_DIR`` (or :func:`write_report`) reads what ``polytask bench`` and
``polytask relate`` wrote and renders one HTML page — CSS inline, every plot an
embedded PNG, no script and no external resource — with:

- Δm% per method against its single-task baseline (table and bars, ± std over seeds);
- per-task results (mean ± std and the gain over the baseline);
- for two main tasks, the trade-off plot: each method's per-task metric pair with the
  Pareto front highlighted;
- negative-transfer flags (a paired test per task over seeds);
- per-task learning curves of the deep models (from the trainers' ``metrics.jsonl``);
- the relatedness run: gradient-cosine, gradient-conflict, lookahead-affinity, linear
  and transfer heatmaps, the recommended grouping and whether it beats one all-task
  model and single-task learning.

A piece that is missing (no relatedness run, no deep model, more than two tasks, ...)
is replaced by a note saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from polytask import _report_html as H
from polytask import _report_plots as P
from polytask._report_data import RelatedData, RunData, read_run

_MANY_TASKS = 20
_MATRIX_TITLES = {
    "gradient_cosine": ("Gradient cosine similarity", True),
    "gradient_conflict": ("Gradient conflict frequency (share of steps with cos < 0)", False),
    "affinity": ("Lookahead inter-task affinity (TAG)", True),
    "linear_cosine": ("Cosine of the linear model's task weight vectors", True),
    "transfer_gain": ("Pairwise transfer: gain (%) of task i trained with task j", True),
}


def _metric(run: RunData) -> str | None:
    if run.status and run.status.get("metric") not in (None, "unknown"):
        return str(run.status["metric"])
    if run.delta_m is not None and "metric" in run.delta_m and len(run.delta_m):
        return str(run.delta_m["metric"].iloc[0])
    return None


def _main_tasks(run: RunData) -> list[str]:
    if run.status and run.status.get("main_tasks"):
        return [str(t) for t in run.status["main_tasks"]]
    if run.per_task is not None:
        return [str(t) for t in dict.fromkeys(run.per_task["task"])]
    return []


def _higher(metric: str) -> bool:
    from polytask.metrics import get_metric

    return get_metric(metric).higher_is_better


def _meta(run: RunData) -> str:
    s = run.status
    parts = [f"Run directory: <code>{H.esc(run.run_dir)}</code>"]
    if s:
        state = ("complete" if s.get("complete") else
                 "<span class=\"bad\">incomplete</span> (budget reached; rerun to continue)")
        parts.append(f"{H.esc(s.get('n_units', '?'))} units, {state}")
        parts.append(f"seeds {H.esc(s.get('seeds'))}; settings {H.esc(s.get('settings'))}")
        if s.get("quick"):
            parts.append("<b>quick mode</b> (a smoke run: numbers are not meaningful)")
    metric = _metric(run)
    if metric:
        parts.append(f"comparison metric: <b>{H.esc(metric)}</b> "
                     f"({'higher' if _higher(metric) else 'lower'} is better)")
    return " · ".join(parts)


def _delta_section(run: RunData) -> str:
    d = run.delta_m
    if d is None or d.empty:
        return H.note("No benchmark results in this run directory: run "
                      "`polytask bench CONFIG --run-dir RUN_DIR` to compare the models "
                      "with single-task learning.")
    shown = d.assign(**{"Δm% (mean ± std)": [
        f"{m:+.2f} ± {s:.2f}" for m, s in zip(d["delta_m"], d["delta_m_std"], strict=True)]})
    cols = ["setting", "method", "baseline", "Δm% (mean ± std)", "n_seeds"]
    text = ("Δm% is the mean relative gain over the baseline across the main tasks, sign-"
            "corrected so that positive is better, computed per seed on identical splits "
            "(Maninis et al., 2019) and averaged over seeds.")
    return (f"<p>{H.esc(text)}</p>" + H.table(shown[cols], left=("setting", "method",
                                                                 "baseline"))
            + H.figure(P.delta_m_bars(d), "Δm% bars", "Δm% per method (± std over seeds); "
                       "green: better than the baseline, red: worse."))


def _per_task_section(run: RunData) -> str:
    per = run.per_task
    if per is None or per.empty:
        return H.note("No per-task results (no benchmark run).")
    out = []
    for setting, d in per.groupby("setting", sort=False):
        out.append(f"<h3>{H.esc(setting)}</h3>")
        tasks = list(dict.fromkeys(d["task"]))
        if len(tasks) > _MANY_TASKS:
            rows = []
            for method, g in d.groupby("method", sort=False):
                gain = g["gain_pct"].astype(float)
                rows.append({"method": method, "baseline": g["baseline"].iloc[0],
                             "tasks better": f"{int((gain > 0).sum())}/{len(gain)}",
                             "median gain %": gain.median(), "worst gain %": gain.min(),
                             "best gain %": gain.max()})
            out.append(H.note(f"{len(tasks)} tasks: the table summarises the per-task gains "
                              "(per_task.csv has every task)."))
            out.append(H.table(pd.DataFrame(rows), left=("method", "baseline")))
            continue
        cells = d.assign(cell=[f"{m:.4g} ± {s:.2g} ({g:+.1f}%)" for m, s, g in
                               zip(d["mean"], d["std"], d["gain_pct"], strict=True)])
        wide = cells.pivot_table(index="task", columns="method", values="cell",
                                 aggfunc="first", sort=False)
        out.append(H.table(wide, left=("task",), index=True))
    out.append("<p class=\"meta\">mean ± std over seeds (gain over the method's baseline; "
               "positive = better).</p>")
    return "".join(out)


def _tradeoff_section(run: RunData) -> str:
    per, metric, main = run.per_task, _metric(run), _main_tasks(run)
    if per is None or per.empty or metric is None:
        return H.note("No trade-off plot: no benchmark results.")
    if len(main) != 2:
        return H.note(f"The trade-off (Pareto) plot is drawn for exactly two main tasks; "
                      f"this run has {len(main)}.")
    out = []
    for setting, d in per.groupby("setting", sort=False):
        means = d.pivot_table(index="method", columns="task", values="mean", sort=False)
        if not all(t in means.columns for t in main):
            continue
        out.append(H.figure(P.tradeoff(means, main, metric, _higher(metric), str(setting)),
                            f"trade-off {setting}", f"{setting}: each method's mean {metric} "
                            "on the two tasks; red points form the Pareto front."))
    return "".join(out) or H.note("No method has results on both tasks.")


def _negative_table(neg: pd.DataFrame | None, min_seeds_note: bool) -> str:
    if neg is None or neg.empty:
        msg = ("No negative-transfer test: it needs at least two seeds with the method and "
               "its baseline." if min_seeds_note else "No negative-transfer test.")
        return H.note(msg)
    flagged = neg[neg["negative"].astype(str).str.lower() == "true"]
    cols = ["setting", "method", "baseline", "task", "improvement", "ci_low", "ci_high",
            "p_value", "n_seeds"]
    head = (f"<p>{len(flagged)} of {len(neg)} (method, task) pairs are <b>reliably worse</b> "
            "than the baseline (one-sided paired test over seeds, and the whole confidence "
            "interval of the improvement below 0).</p>")
    if flagged.empty:
        return head + "<p class=\"good\">No negative transfer detected.</p>"
    return head + H.table(flagged[[c for c in cols if c in flagged]],
                          left=("setting", "method", "baseline", "task"))


def _curves_section(run: RunData) -> str:
    c = run.curves
    if c is None or c.empty:
        return H.note("No learning curves: no deep model logged metrics in this run.")
    metric, main = _metric(run), _main_tasks(run)
    out = []
    for setting, d in c.groupby("setting", sort=False):
        val = d[d["split"] == "val"]
        use_metric = metric if metric is not None and (val["metric"] == metric).any() else "loss"
        rows = val if not val.empty else d[d["split"] == "train"]
        tasks = [t for t in (main or list(dict.fromkeys(rows["task"]))) if
                 (rows["task"] == t).any()][:6]
        if not tasks:
            continue
        split = "validation" if not val.empty else "training"
        out.append(H.figure(P.learning_curves(rows, use_metric, tasks, f"{setting}: "
                                              f"{split} {use_metric} (first seed)"),
                            f"learning curves {setting}"))
    return "".join(out) or H.note("No learning curves to draw.")


def _related_one(rd: RelatedData) -> str:
    out = [f"<h3>Setting: {H.esc(rd.setting)}</h3>"]
    if not rd.matrices:
        out.append(H.note("No relatedness matrix was measured."))
    maps = []
    for key, frame in rd.matrices.items():
        title, diverging = _MATRIX_TITLES.get(key, (key, True))
        maps.append(H.figure(P.heatmap(frame, title, diverging=diverging,
                                       vmax=1.0 if not diverging else None), title))
    if maps:
        out.append(H.grid(maps) + "<p class=\"meta\">Row i, column j: effect of task j on "
                   "task i (the diagonal is not shown).</p>")
    g = rd.grouping
    if g:
        items = []
        for i, group in enumerate(g.get("groups", [])):
            served = [t for t in group if g.get("served_by", {}).get(t) == i]
            items.append(f"<li>model {i + 1}: {H.esc(', '.join(group))}"
                         + (f" — serves {H.esc(', '.join(served))}" if served != group else "")
                         + "</li>")
        out.append(f"<p>Recommended grouping for k = {H.esc(g.get('k'))} models, from the "
                   f"<b>{H.esc(g.get('matrix'))}</b> matrix "
                   f"({'overlapping' if g.get('overlapping') else 'partition'}, "
                   f"{H.esc(g.get('method'))} search):</p><ul>{''.join(items)}</ul>")
    else:
        out.append(H.note("No grouping was computed."))
    s = rd.summary or {}
    if rd.delta_m is not None and not rd.delta_m.empty:
        d = rd.delta_m.assign(**{"Δm% (mean ± std)": [
            f"{m:+.2f} ± {v:.2f}" for m, v in zip(rd.delta_m["delta_m"],
                                                  rd.delta_m["delta_m_std"], strict=True)]})
        out.append(H.table(d[["method", "baseline", "Δm% (mean ± std)", "n_seeds"]],
                           left=("method", "baseline")))
        for label, key in (("one model on all tasks", "groups_beat_all_tasks"),
                           ("single-task learning", "groups_beat_stl")):
            if key in s:
                ok = bool(s[key])
                out.append(f"<p class=\"{'good' if ok else 'bad'}\">The recommended groups "
                           f"{'beat' if ok else 'do not beat'} {label}.</p>")
    for n in s.get("notes", []):
        out.append(H.note(str(n)))
    out.append("<h4>Negative transfer of the all-task model</h4>")
    neg = rd.negative
    if neg is not None and not neg.empty:
        neg = neg[neg["method"] == "all tasks"]
    out.append(_negative_table(neg, True))
    return "".join(out)


def _related_section(run: RunData) -> str:
    if not run.related:
        return H.note("No relatedness run in this run directory: run `polytask relate "
                      "CONFIG --run-dir RUN_DIR` (the configuration needs a relate "
                      "section) to measure gradient conflicts, affinities and a grouping.")
    return "".join(_related_one(rd) for rd in run.related)


def build_report(run_dir: str | os.PathLike[str]) -> str:
    """The HTML report of ``run_dir``, as a string.

    Parameters
    ----------
    run_dir : path-like
        A run directory of ``polytask bench`` and/or ``polytask relate``.

    Returns
    -------
    str
        A complete, self-contained HTML page.

    Raises
    ------
    NotADirectoryError
        If ``run_dir`` is not a directory.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     page = build_report(tmp)
    >>> page.startswith("<!DOCTYPE html>"), "No benchmark results" in page
    (True, True)
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"run directory {str(root)!r} does not exist or is not a "
                                 "directory")
    run = read_run(root)
    sections = [
        ("delta", "Δm% against single-task learning", _delta_section(run)),
        ("per-task", "Per-task results", _per_task_section(run)),
        ("tradeoff", "Trade-off between the tasks", _tradeoff_section(run)),
        ("negative", "Negative transfer",
         _negative_table(run.negative, run.delta_m is not None)),
        ("curves", "Learning curves", _curves_section(run)),
        ("relatedness", "Task relatedness and grouping", _related_section(run)),
    ]
    if run.config_text:
        sections.append(("config", "Configuration",
                         H.details("config.yaml", f"<pre>{H.esc(run.config_text)}</pre>")))
    return H.page(f"polytask report: {run.name}", _meta(run), sections)


def write_report(run_dir: str | os.PathLike[str],
                 output: str | os.PathLike[str] | None = None) -> Path:
    """Write the HTML report of ``run_dir``.

    Parameters
    ----------
    run_dir : path-like
        A run directory of ``polytask bench`` and/or ``polytask relate``.
    output : path-like, optional
        Where to write; default ``run_dir/report.html``.

    Returns
    -------
    pathlib.Path
        The report's path.

    Raises
    ------
    NotADirectoryError
        If ``run_dir`` is not a directory.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_report(tmp)
    ...     path.name, path.stat().st_size > 0
    ('report.html', True)
    """
    from polytask._units import write_atomic

    html = build_report(run_dir)
    path = Path(output) if output is not None else Path(run_dir) / "report.html"
    write_atomic(path, html)
    return path


__all__ = ["build_report", "write_report"]
