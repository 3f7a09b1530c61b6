"""The relatedness summary at the end of ``polytask demo``.

For the linear experiment's lowest and highest task correlation (one seed), the cosine
of the fitted task weight vectors (:func:`polytask.relate.weight_cosine`) of the
mean-regularised model and of per-task ridge fits is compared with the planted weight
cosine of the generator, and the tasks are split into two groups
(:func:`polytask.relate.partition_tasks` on the mean-regularised cosine matrix).  For the
deep experiment, the cosine of the two tasks' shared-layer gradients of the trained
shared-bottom network is compared with the requested correlation.  The summary goes to
``relatedness.csv`` (one row per setting and measure) and ``relatedness.json`` (with the
full matrices).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Echo = Callable[[str], None]

RIDGE_ALPHAS = np.logspace(-3, 3, 13)


@dataclass(frozen=True)
class LinearRelatedness:
    """Measured and planted weight cosines of one linear setting."""

    setting: str
    planted: np.ndarray
    mean_regularized: np.ndarray
    ridge: np.ndarray
    groups: tuple[tuple[str, ...], ...]


def off_diagonal_mean(matrix: np.ndarray) -> float:
    """Mean of the off-diagonal entries of a square matrix."""
    m = np.asarray(matrix, dtype=float)
    return float(m[~np.eye(len(m), dtype=bool)].mean())


def ridge_weights(train: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(n_features, n_tasks) weights of one ridge per task, penalty by leave-one-out CV."""
    from sklearn.linear_model import RidgeCV

    return np.column_stack([RidgeCV(alphas=RIDGE_ALPHAS).fit(X, y).coef_ for X, y in train])


def linear_relatedness(setting: str, train: list[tuple[np.ndarray, np.ndarray]],
                       truth: dict[str, Any], mean_regularized: Any) -> LinearRelatedness:
    """Weight cosines of a fitted mean-regularised model and per-task ridge; k=2 groups."""
    from polytask.relate import partition_tasks, weight_cosine

    names = [f"task_{t}" for t in range(len(train))]
    cos = weight_cosine(mean_regularized)
    grouping = partition_tasks(cos, 2, task_names=names)
    return LinearRelatedness(
        setting=setting, planted=np.asarray(truth["weight_cosine"], dtype=float),
        mean_regularized=cos, ridge=weight_cosine(ridge_weights(train)),
        groups=tuple(tuple(g) for g in grouping.groups))


def relatedness_frame(linear: list[LinearRelatedness], deep: dict[float, float]
                      ) -> pd.DataFrame:
    """One row per setting and measure: planted and measured mean off-diagonal cosine."""
    rows: list[dict[str, Any]] = []
    for lin in linear:
        groups = " | ".join(",".join(t.removeprefix("task_") for t in g) for g in lin.groups)
        planted = off_diagonal_mean(lin.planted)
        rows += [
            {"setting": lin.setting, "measure": "weight cosine, mean-regularised MTL",
             "planted": planted, "measured": off_diagonal_mean(lin.mean_regularized),
             "groups_k2": groups},
            {"setting": lin.setting, "measure": "weight cosine, per-task ridge",
             "planted": planted, "measured": off_diagonal_mean(lin.ridge), "groups_k2": ""},
        ]
    for rho, cosine in deep.items():
        rows.append({"setting": f"deep, rho={rho:g}",
                     "measure": "gradient cosine, shared-bottom (after training)",
                     "planted": float(rho), "measured": cosine, "groups_k2": ""})
    return pd.DataFrame(rows, columns=["setting", "measure", "planted", "measured",
                                       "groups_k2"])


def write_relatedness(frame: pd.DataFrame, linear: list[LinearRelatedness],
                      run_dir: Path) -> None:
    """``relatedness.csv`` (the frame) and ``relatedness.json`` (frame and matrices)."""
    frame.to_csv(run_dir / "relatedness.csv", index=False)
    payload = {
        "summary": frame.to_dict(orient="records"),
        "matrices": {lin.setting: {"planted_weight_cosine": lin.planted.round(4).tolist(),
                                   "mean_regularized_cosine":
                                       lin.mean_regularized.round(4).tolist(),
                                   "ridge_cosine": lin.ridge.round(4).tolist(),
                                   "groups_k2": [list(g) for g in lin.groups]}
                     for lin in linear},
    }
    (run_dir / "relatedness.json").write_text(json.dumps(payload, indent=1))


def report_relatedness(frame: pd.DataFrame, seed: int, echo: Echo) -> None:
    """Print the summary table."""
    shown = frame.copy()
    shown["planted"] = shown["planted"].map(lambda v: f"{v:.2f}")
    shown["measured"] = shown["measured"].map(lambda v: f"{v:.2f}")
    shown = shown.rename(columns={"groups_k2": "groups (k=2)"})
    echo(f"[relatedness] Mean off-diagonal cosine, measured vs planted (seed {seed}); "
         "groups for k=2 models from the mean-regularised cosine matrix "
         "(polytask.relate.partition_tasks):")
    echo(shown.to_string(index=False))
    echo("")


__all__ = ["LinearRelatedness", "linear_relatedness", "off_diagonal_mean",
           "relatedness_frame", "report_relatedness", "ridge_weights", "write_relatedness"]
