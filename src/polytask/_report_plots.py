"""The report's figures, drawn with matplotlib's Agg canvas and returned as PNG bytes.

Figures are built from :class:`matplotlib.figure.Figure` directly (no pyplot state), so
drawing them changes no global setting.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

_DPI = 90


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def pareto_front(points: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Mask of the non-dominated rows of ``points`` (n_points, 2).

    A point is dominated when another one is at least as good on both coordinates and
    strictly better on one.

    Parameters
    ----------
    points : ndarray of shape (n_points, 2)
    higher_is_better : bool
        Direction of both coordinates.

    Returns
    -------
    ndarray of bool, shape (n_points,)

    Examples
    --------
    >>> pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 3.0], [1.5, 1.0]])
    >>> pareto_front(pts, higher_is_better=False).tolist()
    [True, False, False, True]
    """
    P = np.asarray(points, dtype=float) * (1.0 if higher_is_better else -1.0)
    n = P.shape[0]
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        better_eq = np.all(P >= P[i], axis=1)
        strictly = np.any(P > P[i], axis=1)
        keep[i] = not np.any(better_eq & strictly)
    return keep


def delta_m_bars(delta: pd.DataFrame) -> bytes:
    """Horizontal bars of Δm% (± std over seeds) per method, one panel per setting."""
    settings = list(dict.fromkeys(delta["setting"]))
    n_methods = delta.groupby("setting").size().max()
    fig = Figure(figsize=(4.2 * len(settings), 0.45 * n_methods + 1.4))
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    for ax, setting in zip(axes, settings, strict=True):
        d = delta[delta["setting"] == setting].iloc[::-1]
        values = d["delta_m"].to_numpy(dtype=float)
        colors = ["#3a7d44" if v > 0 else "#b5443b" if v < 0 else "#888888" for v in values]
        y = np.arange(len(d))
        ax.barh(y, values, xerr=d["delta_m_std"].to_numpy(dtype=float), color=colors,
                capsize=3, alpha=0.85)
        ax.set_yticks(y, [f"{m}  (vs {b})" if m != b else str(m)
                          for m, b in zip(d["method"], d["baseline"], strict=True)])
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_xlabel("Δm% (higher = better than baseline)")
        ax.set_title(str(setting))
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def tradeoff(means: pd.DataFrame, tasks: Sequence[str], metric: str,
             higher_is_better: bool, title: str) -> bytes:
    """Each method's (task A, task B) metric pair, with the Pareto front highlighted.

    Parameters
    ----------
    means : pandas.DataFrame
        Index: methods; columns: the two tasks; values: mean metric over seeds.
    tasks : sequence of str
        The two tasks (x, y).
    metric : str
        Metric name, for the axes.
    higher_is_better : bool
        Direction of the metric.
    title : str
        Panel title.
    """
    a, b = tasks
    pts = means[[a, b]].to_numpy(dtype=float)
    front = pareto_front(pts, higher_is_better)
    fig = Figure(figsize=(5.2, 4.2))
    ax = fig.subplots()
    ax.scatter(pts[~front, 0], pts[~front, 1], color="#7a7a7a", zorder=2, label="dominated")
    ax.scatter(pts[front, 0], pts[front, 1], color="#c0392b", s=60, zorder=3,
               label="Pareto front")
    order = np.argsort(pts[front, 0])
    ax.plot(pts[front, 0][order], pts[front, 1][order], color="#c0392b", lw=1.2, zorder=2)
    for (x, y), name in zip(pts, means.index, strict=True):
        ax.annotate(str(name), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    arrow = "higher" if higher_is_better else "lower"
    ax.set_xlabel(f"{a}: {metric} ({arrow} is better)")
    ax.set_ylabel(f"{b}: {metric} ({arrow} is better)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def learning_curves(curves: pd.DataFrame, metric: str, tasks: Sequence[str],
                    title: str) -> bytes:
    """One panel per task: ``metric`` over epochs, one line per method.

    Parameters
    ----------
    curves : pandas.DataFrame
        Rows of ``metrics.jsonl`` with a ``method`` column (one setting, one seed).
    metric : str
        The metric to draw (its ``split="val"`` rows, else ``split="train"``).
    tasks : sequence of str
        Tasks to draw, one panel each.
    title : str
        Figure title.
    """
    n = len(tasks)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(4.0 * cols, 3.0 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, task in zip(axes, tasks, strict=False):
        d = curves[(curves["task"] == task) & (curves["metric"] == metric)]
        for method, g in d.groupby("method", sort=False):
            g = g.sort_values("epoch")
            ax.plot(g["epoch"], g["value"], marker="o", ms=2.5, lw=1.2, label=str(method))
        ax.set_title(str(task), fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=7,
                   bbox_to_anchor=(0.5, -0.02 - 0.03 * (len(labels) > 4)))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _png(fig)


def heatmap(matrix: pd.DataFrame, title: str, *, diverging: bool = True,
            vmax: float | None = None) -> bytes:
    """A task × task matrix with its values written in the cells.

    Parameters
    ----------
    matrix : pandas.DataFrame
        Square, rows = affected task, columns = other task; NaN cells stay blank.
    title : str
        Figure title.
    diverging : bool, default=True
        Red-blue colours centred on 0 (else a sequential map from 0).
    vmax : float, optional
        Colour limit; default the largest absolute off-diagonal value.
    """
    A = matrix.to_numpy(dtype=float).copy()
    n = A.shape[0]
    if n > 1:
        np.fill_diagonal(A, np.nan)  # a task's relation to itself is not shown
    finite = A[np.isfinite(A)]
    top = vmax if vmax is not None else (float(np.max(np.abs(finite))) if finite.size else 1.0)
    top = top or 1.0
    size = min(0.42 * n + 2.0, 8.0)
    fig = Figure(figsize=(size + 0.9, size))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["RdBu_r" if diverging else "viridis"].with_extremes(
        bad="#e6e6e6")
    im = ax.imshow(np.ma.masked_invalid(A), cmap=cmap, vmin=-top if diverging else 0.0,
                   vmax=top)
    labels = [str(c) for c in matrix.columns]
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), [str(i) for i in matrix.index], fontsize=7)
    ax.set_xlabel("other task j")
    ax.set_ylabel("affected task i")
    if n <= 14:
        for i in range(n):
            for j in range(n):
                if np.isfinite(A[i, j]):
                    dark = (abs(A[i, j]) / top > 0.6) if diverging else A[i, j] / top < 0.4
                    ax.text(j, i, f"{A[i, j]:.2g}", ha="center", va="center", fontsize=6,
                            color="white" if dark else "black")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


__all__ = ["delta_m_bars", "heatmap", "learning_curves", "pareto_front", "tradeoff"]
