"""Tests for polytask.tasks: Task validation, TaskSet order and masked losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polytask.tasks import Task, TaskSet

NAN = float("nan")


def test_task_defaults_follow_kind() -> None:
    reg, binary = Task("r"), Task("b", kind="binary")
    assert reg.primary_metric == "mse"
    assert binary.primary_metric == "roc_auc"
    p, t = torch.tensor([0.5, -1.0]), torch.tensor([1.0, 0.0])
    assert torch.allclose(reg.loss_fn()(p, t), (p - t) ** 2)
    expected = -(t * torch.log(torch.sigmoid(p)) + (1 - t) * torch.log(1 - torch.sigmoid(p)))
    assert torch.allclose(binary.loss_fn()(p, t), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": ""}, "non-empty"),
        ({"name": "t", "kind": "ordinal"}, "kind must be one of"),
        ({"name": "t", "role": "helper"}, "role must be"),
        ({"name": "t", "weight": -1.0}, "'t': weight must be finite and >= 0"),
        ({"name": "t", "weight": math.inf}, "weight must be finite"),
        ({"name": "t", "lr_scale": 0.0}, "lr_scale must be finite and > 0"),
        ({"name": "t", "period": 0}, "period must be an integer >= 1"),
        ({"name": "t", "period": 1.5}, "period must be an integer"),
        ({"name": "t", "n_outputs": 0}, "n_outputs must be a positive integer"),
        ({"name": "t", "metrics": ["nope"]}, "unknown metric"),
        ({"name": "t", "metrics": "mse"}, "wrap it in a list"),
        ({"name": "t", "loss": 3}, "loss must be callable"),
    ],
)
def test_task_rejects_bad_fields(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Task(**kwargs)


def test_taskset_order_lookup_and_errors() -> None:
    ts = TaskSet([Task("b"), "a", Task("c", role="auxiliary")])
    assert ts.names == ("b", "a", "c")
    assert ts.main_names == ("b", "a")
    assert ts["a"].name == "a" and ts[2].name == "c"
    assert ts.index("c") == 2
    np.testing.assert_array_equal(ts.weights(), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"Unknown task 'z'; known tasks: \['b', 'a', 'c'\]"):
        ts.index("z")
    with pytest.raises(ValueError, match="duplicate task names"):
        TaskSet(["a", Task("a")])
    with pytest.raises(ValueError, match="at least one task"):
        TaskSet([])
    with pytest.raises(ValueError, match="item 1 must be a Task"):
        TaskSet(["a", 3])  # type: ignore[list-item]


def test_losses_mask_missing_labels_like_a_manual_mean() -> None:
    torch.manual_seed(0)
    ts = TaskSet([Task("r"), Task("b", kind="binary")])
    pr, pb = torch.randn(6), torch.randn(6)
    yr = torch.tensor([1.0, NAN, 0.5, NAN, -2.0, 3.0])
    yb = torch.tensor([1.0, 0.0, NAN, 1.0, NAN, NAN])
    losses = ts.losses({"r": pr, "b": pb}, {"r": yr, "b": yb})
    keep_r, keep_b = ~torch.isnan(yr), ~torch.isnan(yb)
    manual_r = ((pr[keep_r] - yr[keep_r]) ** 2).mean()
    manual_b = torch.nn.functional.binary_cross_entropy_with_logits(pb[keep_b], yb[keep_b])
    assert torch.allclose(losses, torch.stack([manual_r, manual_b]))


def test_task_without_labels_contributes_zero_and_no_nan() -> None:
    ts = TaskSet([Task("r"), Task("b", kind="binary")])
    pr = torch.randn(4, requires_grad=True)
    pb = torch.randn(4, requires_grad=True)
    losses, counts = ts.losses(
        {"r": pr, "b": pb},
        {"r": torch.full((4,), NAN), "b": torch.tensor([1.0, 0.0, 1.0, 1.0])},
        return_counts=True,
    )
    assert losses[0].item() == 0.0 and torch.isfinite(losses).all()
    assert counts.tolist() == [0, 4]
    losses.sum().backward()
    assert pr.grad is not None and torch.equal(pr.grad, torch.zeros(4))
    assert pb.grad is not None and pb.grad.abs().sum() > 0


def test_absent_target_means_no_labels_for_that_task() -> None:
    ts = TaskSet(["a", "b"])
    losses = ts.losses({"a": torch.ones(3), "b": torch.ones(3)}, {"a": torch.zeros(3)})
    assert losses.tolist() == [1.0, 0.0]


def test_masked_labels_get_zero_gradient() -> None:
    ts = TaskSet(["a"])
    p = torch.randn(5, requires_grad=True)
    y = torch.tensor([0.0, NAN, 1.0, NAN, 2.0])
    ts.losses({"a": p}, {"a": y}).sum().backward()
    assert p.grad is not None
    assert p.grad[1].item() == 0.0 and p.grad[3].item() == 0.0
    assert torch.allclose(p.grad[[0, 2, 4]], 2 * (p[[0, 2, 4]] - y[[0, 2, 4]]).detach() / 3)


def test_extra_mask_combines_with_nan_mask() -> None:
    ts = TaskSet(["a"])
    p, y = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, NAN, 0.0])
    mask = torch.tensor([False, True, True])
    assert ts.losses({"a": p}, {"a": y}, {"a": mask}).item() == pytest.approx(9.0)
    with pytest.raises(ValueError, match="'a': mask of shape"):
        ts.losses({"a": p}, {"a": y}, {"a": torch.ones(2, dtype=torch.bool)})


def test_multiclass_and_multilabel_missing_labels() -> None:
    torch.manual_seed(1)
    ts = TaskSet([Task("m", kind="multiclass", n_outputs=3), Task("l", kind="multilabel")])
    logits, ml = torch.randn(4, 3), torch.randn(4, 2)
    y_int = torch.tensor([2, -1, 0, 1])
    y_ml = torch.tensor([[1.0, NAN], [0.0, 1.0], [NAN, NAN], [1.0, 0.0]])
    losses = ts.losses({"m": logits, "l": ml}, {"m": y_int, "l": y_ml})
    keep = y_int >= 0
    ce = torch.nn.functional.cross_entropy(logits[keep], y_int[keep])
    obs = ~torch.isnan(y_ml)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(ml[obs], y_ml[obs])
    assert torch.allclose(losses, torch.stack([ce, bce]))
    # float class targets with NaN are accepted too
    y_float = torch.tensor([2.0, NAN, 0.0, 1.0])
    again = ts.losses({"m": logits, "l": ml}, {"m": y_float, "l": y_ml})
    assert torch.allclose(again, losses)


def test_column_vector_predictions_are_accepted() -> None:
    ts = TaskSet(["a"])
    loss = ts.losses({"a": torch.ones(3, 1)}, {"a": torch.zeros(3)})
    assert loss.item() == 1.0


@pytest.mark.parametrize(
    ("preds", "targets", "match"),
    [
        ({"a": torch.ones(3)}, {"a": torch.ones(4)}, "Task 'a': prediction of shape"),
        (
            {"a": torch.ones(3), "zz": torch.ones(3)},
            {},
            r"Unknown task\(s\) \['zz'\] in predictions",
        ),
        ({"a": torch.ones(3)}, {"q": torch.ones(3)}, r"Unknown task\(s\) \['q'\] in targets"),
        ({}, {"a": torch.ones(3)}, "Task 'a': no prediction"),
    ],
)
def test_losses_bad_input_names_the_task(preds: dict, targets: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TaskSet(["a"]).losses(preds, targets)


def test_multiclass_shape_error_names_task() -> None:
    ts = TaskSet([Task("m", kind="multiclass")])
    with pytest.raises(ValueError, match="'m': multiclass prediction must be"):
        ts.losses({"m": torch.ones(3)}, {"m": torch.zeros(3)})


def test_evaluate_matches_metric_functions() -> None:
    from sklearn.metrics import accuracy_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50).astype(float)
    logits = rng.normal(size=50) + y
    y_gap = y.copy()
    y_gap[:5] = np.nan
    scores = Task("b", kind="binary").evaluate(y_gap, logits)
    assert scores["roc_auc"] == pytest.approx(roc_auc_score(y[5:], logits[5:]))
    assert scores["accuracy"] == pytest.approx(accuracy_score(y[5:], logits[5:] > 0))
    multi = Task("m", kind="multiclass").evaluate([0, 1, 2, -1], np.eye(4, 3) * 5)
    assert multi["accuracy"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="'b': no observed labels"):
        Task("b", kind="binary").evaluate([NAN, NAN], [0.1, 0.2])
    with pytest.raises(ValueError, match="'r': predictions of shape"):
        Task("r").evaluate([1.0, 2.0], [1.0, 2.0, 3.0])
