"""Per-task metrics as pure functions, multi-task summaries, and the gain over STL.

All metrics take NumPy array-likes ``(y_true, y_pred)``, validate them (1-D unless
stated, same length, finite) and return a Python ``float``. A metric that is undefined
on its input (ROC-AUC with one class present, a normalised error of a constant target,
…) raises :class:`UndefinedMetricError` (a ``ValueError``) saying so; none returns a
silent NaN. Callers that may leave such a score out (a rare task whose small test part
holds one class) catch that class alone; :meth:`Task.evaluate
<polytask.tasks.Task.evaluate>` does so with ``undefined="skip"`` and warns with
:class:`UndefinedMetricWarning`, naming the task.

- Regression: :func:`mse`, :func:`rmse`, :func:`mae`, :func:`explained_variance`
  (scikit-learn's definition, bias-blind), :func:`explained_variance_mse` (School's
  definition, ``1 - MSE / Var``), :func:`r2`, :func:`rrmse` (the relative RMSE of the
  multi-target regression benchmarks).
- Several regression tasks at once: :func:`pooled_mse`, :func:`nmse`, :func:`amse`,
  :func:`pooled_explained_variance`.
- Classification: :func:`accuracy`, :func:`roc_auc`, :func:`average_precision`,
  :func:`f1_micro`, :func:`f1_macro`, :func:`hamming_loss`, :func:`log_loss`.
  Label metrics take *hard* labels in ``y_pred``; ranking metrics take scores.
- Confusion counts of binary labels, to be summed over tasks (set-level micro-F1,
  Hamming loss): :func:`n_tp`, :func:`n_fp`, :func:`n_fn`.
- Sequence labelling: :func:`chunk_f1` (conlleval's chunk-level F1), :func:`chunk_scores`,
  :func:`chunk_spans`; on integer-coded chunk tags (``O`` = 0, ``B-X`` = 2k+1,
  ``I-X`` = 2k+2): :func:`chunk_f1_ids`, :func:`chunk_scores_ids`, :func:`decode_chunk_ids`.
- MTL versus STL: :func:`delta_m` and :func:`relative_gain`.
- Registry: :data:`METRICS`, :class:`MetricSpec`, :func:`get_metric`,
  :data:`DEFAULT_METRICS` (per task kind).
"""

from polytask.metrics._classification import (
    accuracy,
    average_precision,
    f1_macro,
    f1_micro,
    hamming_loss,
    log_loss,
    roc_auc,
)
from polytask.metrics._counts import n_fn, n_fp, n_tp
from polytask.metrics._gain import delta_m, relative_gain
from polytask.metrics._multitask import amse, nmse, pooled_explained_variance, pooled_mse
from polytask.metrics._registry import (
    DEFAULT_METRICS,
    METRICS,
    MetricFn,
    MetricSpec,
    get_metric,
)
from polytask.metrics._regression import (
    explained_variance,
    explained_variance_mse,
    mae,
    mse,
    r2,
    rmse,
    rrmse,
)
from polytask.metrics._sequence import (
    ChunkScores,
    chunk_f1,
    chunk_f1_ids,
    chunk_scores,
    chunk_scores_ids,
    chunk_spans,
    decode_chunk_ids,
)
from polytask.metrics._validation import UndefinedMetricError, UndefinedMetricWarning

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "ChunkScores",
    "MetricFn",
    "MetricSpec",
    "UndefinedMetricError",
    "UndefinedMetricWarning",
    "accuracy",
    "amse",
    "average_precision",
    "chunk_f1",
    "chunk_f1_ids",
    "chunk_scores",
    "chunk_scores_ids",
    "chunk_spans",
    "decode_chunk_ids",
    "delta_m",
    "explained_variance",
    "explained_variance_mse",
    "f1_macro",
    "f1_micro",
    "get_metric",
    "hamming_loss",
    "log_loss",
    "mae",
    "mse",
    "n_fn",
    "n_fp",
    "n_tp",
    "nmse",
    "pooled_explained_variance",
    "pooled_mse",
    "r2",
    "relative_gain",
    "rmse",
    "roc_auc",
    "rrmse",
]
