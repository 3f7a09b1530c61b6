"""School: how far do non-linear effects go beyond mean-regularisation? (issue #3 probe).

The linear formulations of ``school_accuracy.py`` stop near 37.6 % explained variance,
below the 38.5 % goal. This probe asks whether the missing part is non-linear, by adding
two pooled (shared by all schools) non-linear components in front of the
mean-regularised model:

* *interactions*: VR band × cubic splines of %FSM and %VR1, and gender × VR band, as
  extra columns scaled by 0.1 after z-scoring, so that mean-regularisation pulls their
  per-school weights together 100 times harder than the others' (nearly pooled);
* *boosting first*: scikit-learn's ``HistGradientBoostingRegressor`` fitted on all
  students (pooled), then mean-regularisation on its residuals, per school.

Exploratory, *not* the protocol: the hyperparameters are fixed (mean-regularisation at
alpha = 316, beta = 1e-3, the point the protocol's cross-validation picked most often;
the scale 0.1 and the boosting settings were chosen by looking at repetitions 0-3), so
the figures are optimistic. Same splits and coding (z-scores) as ``school_accuracy.py``.

Run::

    python benchmarks/school_probes.py            # 10 repetitions, ~2 min
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.preprocessing import SplineTransformer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _school_common import Split, load, paired_rows, repetitions_main, scores, split

from polytask.linear import MeanRegularizedRegressor

FSM, VR1, GIRL, VR_BANDS = 3, 4, 5, slice(7, 10)  # columns of the 27 School attributes
SCALE = 0.1


def _mean_reg() -> MeanRegularizedRegressor:
    # the objective of school_accuracy.py (summed loss, free intercepts): alpha = 316 is
    # the point its cross-validation picks there
    return MeanRegularizedRegressor(alpha=316.0, beta=1e-3, normalization="sum", fit_intercept=True)


def _ev(s: Split, pred: np.ndarray) -> float:
    return scores(s.y_test, pred, s.task_test)[0]


def interactions(raw: np.ndarray, spline: SplineTransformer) -> np.ndarray:
    """VR band × splines of (%FSM, %VR1), and gender × VR band, from the raw coding."""
    basis = spline.transform(raw[:, [FSM, VR1]])
    bands = raw[:, VR_BANDS]
    parts = [bands[:, [k]] * basis for k in range(bands.shape[1])]
    parts.append(raw[:, [GIRL]] * bands)
    return np.hstack(parts)


def probe(rep: int) -> dict[str, float]:
    """Explained variance of the three models on repetition ``rep``."""
    data = load()
    s: Split = split(data, rep, "standardized")
    raw: Split = split(data, rep, "raw")
    out: dict[str, float] = {}
    base = _mean_reg().fit(s.X, s.y, task=s.task)
    out["mean-regularised"] = _ev(s, base.predict(s.X_test, task=s.task_test))

    spline = SplineTransformer(n_knots=5, degree=3).fit(raw.X[:, [FSM, VR1]])
    Z, Z_test = interactions(raw.X, spline), interactions(raw.X_test, spline)
    keep = Z.std(axis=0) > 1e-9
    mu, sd = Z[:, keep].mean(axis=0), Z[:, keep].std(axis=0)
    A = np.hstack([s.X, SCALE * (Z[:, keep] - mu) / sd])
    A_test = np.hstack([s.X_test, SCALE * (Z_test[:, keep] - mu) / sd])
    model = _mean_reg().fit(A, s.y, task=s.task)
    out["+ pooled interactions"] = _ev(s, model.predict(A_test, task=s.task_test))

    boost = HistGradientBoostingRegressor(
        learning_rate=0.05, max_iter=100, max_leaf_nodes=15, min_samples_leaf=40, random_state=0
    ).fit(s.X, s.y)
    resid = _mean_reg().fit(s.X, s.y - boost.predict(s.X), task=s.task)
    pred = boost.predict(s.X_test) + resid.predict(s.X_test, task=s.task_test)
    out["boosting (pooled), then mean-regularised"] = _ev(s, pred)
    return out


def render(rows: list[dict[str, float]], machine: str, wall: float) -> str:
    table, ev = paired_rows(rows, base="mean-regularised")
    names, base = list(ev), ev["mean-regularised"]
    lines = [
        "## School: probes beyond the linear formulations (exploratory)",
        "",
        __doc__.split("\n\n")[1].replace("\n", " ").strip(),
        "",
        "Fixed hyperparameters (mean-regularisation alpha = 316, beta = 1e-3; interaction "
        f"scale {SCALE}; boosting: learning rate 0.05, 100 iterations with scikit-learn's "
        "early stopping, 15 leaves, 40 students per leaf), partly chosen on test scores of "
        "repetitions 0-3: optimistic figures, not the protocol's.",
        "",
        "Command: `python benchmarks/school_probes.py`  ",
        f"Machine: {machine}; whole run {wall / 60:.1f} min wall.",
        "",
        f"| model | explained variance (%), {len(rows)} repetitions "
        "| Δ vs mean-regularised, paired (points) |",
        "|---|---|---|",
        *table,
    ]
    best = max(names, key=lambda n: ev[n].mean())
    gain, high = float((ev[best] - base).mean()), float(ev[best].mean())
    lines += [
        "",
        f"Best: {best}, {ev[best].mean():.2f} %, {gain:+.2f} points over the same "
        f"mean-regularised model ({high:.2f} % against 38.5 %). Pooled non-linear effects "
        "exist (the VR band interacts with %FSM and %VR1) but are worth a fraction of a "
        "point once the mean-regularised model has its free school intercepts (an earlier "
        "version of this probe left them out, which made the gain look like half a point).",
    ]
    return "\n".join(lines)


def main() -> None:
    repetitions_main(__doc__, probe, render, "school_probes")


if __name__ == "__main__":
    main()
