"""Tests of MultiTaskData's pandas input and output (wide and long formats)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from polytask.data import MultiTaskData

if TYPE_CHECKING:
    from conftest import Builders


def test_from_frame_wide_matches_arrays_and_handles_pd_na(mtd: Builders) -> None:
    X, Y = mtd.shared_arrays(12)
    df = pd.DataFrame(X, columns=["id", "u", "v"])
    df["score"] = Y[:, 0]
    df["pass"] = pd.array([None if np.isnan(v) else int(v) for v in Y[:, 1]], dtype="Int64")
    df["grade"] = Y[:, 2]
    data = MultiTaskData.from_frame(df, ["id", "u", "v"], list(mtd.kinds), kinds=mtd.kinds)
    np.testing.assert_array_equal(data.label_matrix(), Y)
    np.testing.assert_array_equal(data.feature_matrix(), X)
    assert data.feature_names == ("id", "u", "v") and data.kinds == mtd.kinds


@pytest.mark.parametrize("form", ["shared", "per_task"])
def test_to_frame_long_format_round_trip(form: str, mtd: Builders) -> None:
    data = mtd.build(form)
    frame = data.to_frame()
    assert list(frame.columns[:2]) == ["task", "label"]
    assert len(frame) == sum(data.task_sizes.values())
    back = MultiTaskData.from_frame(
        frame,
        list(data.feature_names),
        task_column="task",
        label_column="label",
        kinds=data.kinds,
    )
    assert back.form == "per_task" and back.task_names == data.task_names
    assert mtd.pairs(back) == mtd.pairs(data)


FRAME = pd.DataFrame({"x": [1.0, 2.0], "y": [0.0, 1.0], "t": ["a", "b"], "s": ["u", "v"]})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            dict(feature_columns=["x", "zz"], task_columns=["y"]),
            ValueError,
            r"no column\(s\) \['zz'\]",
        ),
        (dict(feature_columns=["x"], task_columns=["x"]), ValueError, "'x' is used twice"),
        (dict(feature_columns=["x"]), ValueError, "either task_columns"),
        (
            dict(feature_columns=["x"], task_columns=["y"], task_column="t", label_column="y"),
            ValueError,
            "not both",
        ),
        (dict(feature_columns=["x"], task_column="t"), ValueError, "both task_column and label"),
        (dict(feature_columns=["s"], task_columns=["y"]), TypeError, "column 's' must be numeric"),
        (dict(feature_columns=[], task_columns=["y"]), ValueError, "feature_columns is empty"),
        (dict(feature_columns=["x"], task_columns=["y"], kinds="multiclass"), None, None),
    ],
)
def test_from_frame_errors(
    kwargs: dict[str, Any], error: type[Exception] | None, match: str
) -> None:
    if error is None:
        assert MultiTaskData.from_frame(FRAME, **kwargs).task_names == ("y",)
        return
    with pytest.raises(error, match=match):
        MultiTaskData.from_frame(FRAME, **kwargs)


def test_frame_errors_on_bad_inputs() -> None:
    with pytest.raises(TypeError, match="df must be a pandas DataFrame"):
        MultiTaskData.from_frame(FRAME.to_numpy(), ["x"], ["y"])  # type: ignore[arg-type]
    missing_task = FRAME.assign(t=pd.Series(["a", None], dtype=object))
    with pytest.raises(ValueError, match=r"task_column 't' has 1 missing value"):
        MultiTaskData.from_frame(missing_task, ["x"], task_column="t", label_column="y")
    clash = MultiTaskData(np.ones((2, 1)), [1.0, 2.0], feature_names=["label"])
    with pytest.raises(ValueError, match="clash with the columns task and label"):
        clash.to_frame()
