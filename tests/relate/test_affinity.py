"""Lookahead inter-task affinity (TAG, Fifty et al., 2021) and its tracker."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from polytask.deep.architectures import SharedBottom
from polytask.relate import AffinityTracker, lookahead_affinity
from polytask.tasks import TaskSet


def closed_form_affinity(X: np.ndarray, Y: np.ndarray, w: np.ndarray, lr: float) -> np.ndarray:
    """A[i, j] for y_t = X w with squared loss, everything written out in NumPy."""
    n, m = Y.shape

    def loss(v: np.ndarray, i: int) -> float:
        return float(np.mean((X @ v - Y[:, i]) ** 2))

    A = np.zeros((m, m))
    for j in range(m):
        grad_j = 2.0 / n * X.T @ (X @ w - Y[:, j])
        stepped = w - lr * grad_j
        for i in range(m):
            A[i, j] = 1.0 - loss(stepped, i) / loss(w, i)
    return A


def _problem(seed: int, n: int = 40, d: int = 3, m: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = X @ rng.normal(size=(d, m)) + 0.1 * rng.normal(size=(n, m))
    return X, Y


@pytest.mark.parametrize(("seed", "lr"), [(0, 0.01), (1, 0.1), (2, 0.3)])
def test_matches_the_closed_form_of_a_linear_model(
    linear_model: Callable[..., SharedBottom], seed: int, lr: float
) -> None:
    X, Y = _problem(seed)
    w = np.asarray(np.random.default_rng(seed + 10).normal(size=(X.shape[1],)))
    names = ["a", "b", "c"]
    model = linear_model(X.shape[1], names, torch.from_numpy(w))
    targets = {t: torch.from_numpy(Y[:, [i]]) for i, t in enumerate(names)}
    A = lookahead_affinity(model, names, torch.from_numpy(X), targets, lr=lr)
    np.testing.assert_allclose(A, closed_form_affinity(X, Y, w, lr), rtol=1e-9, atol=1e-12)


def test_identical_tasks_have_equal_positive_affinity(
    linear_model: Callable[..., SharedBottom],
) -> None:
    X, Y = _problem(3, m=1)
    model = linear_model(X.shape[1], ["a", "b"])
    y = torch.from_numpy(Y)
    A = lookahead_affinity(model, ["a", "b"], torch.from_numpy(X), {"a": y, "b": y}, lr=0.05)
    assert A[0, 0] > 0
    np.testing.assert_allclose(A, np.full((2, 2), A[0, 0]), rtol=1e-12)


def test_opposite_targets_have_negative_affinity(
    linear_model: Callable[..., SharedBottom],
) -> None:
    X, Y = _problem(4, m=1)
    model = linear_model(X.shape[1], ["a", "b"])
    y = torch.from_numpy(Y)
    A = lookahead_affinity(model, ["a", "b"], torch.from_numpy(X), {"a": y, "b": -y}, lr=0.05)
    assert A[0, 0] > 0 and A[1, 1] > 0
    assert A[0, 1] < 0 and A[1, 0] < 0


def _deep_model(dropout: float = 0.0, batchnorm: bool = False) -> SharedBottom:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(4, 8)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(8))
    layers += [nn.Tanh(), nn.Dropout(dropout), nn.Linear(8, 5), nn.Tanh()]
    heads = {t: nn.Linear(5, 1) for t in ("a", "b", "c")}
    return SharedBottom(nn.Sequential(*layers), heads).double()


def _batch(seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 4, generator=gen, dtype=torch.float64)
    targets = {t: torch.randn(16, 1, generator=gen, dtype=torch.float64) for t in "abc"}
    return x, targets


@pytest.mark.parametrize("lr", [0.01, 0.2])
def test_matches_copying_the_model_and_stepping(lr: float) -> None:
    model = _deep_model()
    x, targets = _batch()
    tasks = TaskSet(["a", "b", "c"])
    A = lookahead_affinity(model, tasks, x, targets, lr=lr)
    with torch.no_grad():
        before = tasks.losses(model(x), targets)
    for j, name in enumerate(tasks.names):
        clone = copy.deepcopy(model)
        optimizer = torch.optim.SGD(clone.shared_parameters(), lr=lr)
        loss_j = ((clone(x)[name] - targets[name]) ** 2).mean()
        loss_j.backward()
        optimizer.step()  # heads have gradients too but are not in the optimizer
        with torch.no_grad():
            after = tasks.losses(clone(x), targets)
        assert isinstance(after, torch.Tensor) and isinstance(before, torch.Tensor)
        expected = 1.0 - (after / before).numpy()
        np.testing.assert_allclose(A[:, j], expected, rtol=1e-9, atol=1e-12)


def test_model_parameters_buffers_grads_and_rng_are_unchanged() -> None:
    model = _deep_model(dropout=0.3, batchnorm=True)
    model.train()
    x, targets = _batch(1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng_state = torch.get_rng_state()
    lookahead_affinity(model, ["a", "b", "c"], x, targets, lr=0.1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert model.training


def test_dropout_masks_are_shared_so_a_vanishing_step_gives_zero_affinity() -> None:
    model = _deep_model(dropout=0.5)
    model.train()
    x, targets = _batch(2)
    A = lookahead_affinity(model, ["a", "b", "c"], x, targets, lr=1e-9)
    assert np.abs(A).max() < 1e-6


def test_task_without_labels_is_flagged_and_zero(
    linear_model: Callable[..., SharedBottom],
) -> None:
    X, Y = _problem(5, m=2)
    model = linear_model(X.shape[1], ["a", "b"])
    y_b = torch.full((X.shape[0], 1), float("nan"), dtype=torch.float64)
    A, zero = lookahead_affinity(
        model, ["a", "b"], torch.from_numpy(X),
        {"a": torch.from_numpy(Y[:, [0]]), "b": y_b}, lr=0.05, return_mask=True,
    )
    assert zero.tolist() == [False, True]
    assert (A[1] == 0).all() and np.isfinite(A).all()
    assert A[0, 1] == 0.0  # a step on a task with no gradient changes nothing
    assert A[0, 0] > 0


def test_errors(linear_model: Callable[..., SharedBottom]) -> None:
    X, Y = _problem(6, m=1)
    model = linear_model(X.shape[1], ["a"], torch.ones(X.shape[1]))
    x, targets = torch.from_numpy(X), {"a": torch.from_numpy(Y)}
    with pytest.raises(ValueError, match="lr"):
        lookahead_affinity(model, ["a"], x, targets, lr=0.0)
    with pytest.raises(ValueError, match="not a parameter of model"):
        lookahead_affinity(model, ["a"], x, targets, lr=0.1, params=[nn.Parameter(torch.ones(2))])
    with pytest.raises(ValueError, match="lower lr"):
        lookahead_affinity(model, ["a"], x, targets, lr=1e200)
    with pytest.raises(TypeError, match="shared_parameters"):
        lookahead_affinity(nn.Linear(3, 1), ["a"], x, targets, lr=0.1)  # type: ignore[arg-type]

    def negative(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -((pred - target) ** 2)

    from polytask.tasks import Task

    with pytest.raises(ValueError, match=r"task 'a'.*non-negative"):
        lookahead_affinity(model, [Task("a", loss=negative)], x, targets, lr=0.1)


def test_tracker_running_mean_skips_zero_loss_rows() -> None:
    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(3, 3)) for _ in range(4)]
    masks = [
        [False, False, False], [False, True, False], [False, False, False], [True, True, False]
    ]
    tracker = AffinityTracker(["a", "b", "c"])
    for A, z in zip(mats, masks, strict=True):
        tracker.update(A, zero_loss=z)
    s = tracker.summary()
    for i in range(3):
        rows = [A[i] for A, z in zip(mats, masks, strict=True) if not z[i]]
        np.testing.assert_allclose(s.mean_affinity[i], np.mean(rows, axis=0))
        assert (s.n_defined[i] == len(rows)).all()
    assert s.n_steps == 4


def test_tracker_observe_equals_lookahead_and_resumes(
    linear_model: Callable[..., SharedBottom],
) -> None:
    X, Y = _problem(7, m=2)
    model = linear_model(X.shape[1], ["a", "b"])
    x = torch.from_numpy(X)
    targets = {"a": torch.from_numpy(Y[:, [0]]), "b": torch.from_numpy(Y[:, [1]])}
    tracker = AffinityTracker(["a", "b"], every=3)
    got = tracker.observe(model, ["a", "b"], x, targets, lr=0.05)
    np.testing.assert_allclose(got, lookahead_affinity(model, ["a", "b"], x, targets, lr=0.05))
    other = AffinityTracker(["a", "b"])
    other.load_state_dict(json.loads(json.dumps(tracker.state_dict())))
    assert other.every == 3 and other.n_steps == 1
    np.testing.assert_array_equal(other.summary().matrix, tracker.summary().matrix)
    with pytest.raises(ValueError, match="differ"):
        tracker.observe(model, ["b", "a"], x, targets, lr=0.05)


@pytest.mark.parametrize(("every", "due"), [(1, [0, 1, 2, 3]), (2, [0, 2]), (4, [0])])
def test_is_due(every: int, due: list[int]) -> None:
    tracker = AffinityTracker(["a"], every=every)
    assert [s for s in range(4) if tracker.is_due(s)] == due


def test_tracker_errors() -> None:
    tracker = AffinityTracker(["a", "b"])
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        tracker.update(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        tracker.update(np.array([[0.0, np.inf], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="zero_loss"):
        tracker.update(np.zeros((2, 2)), zero_loss=[True])
    with pytest.raises(ValueError, match="every"):
        AffinityTracker(["a"], every=0)
    with pytest.raises(ValueError, match="for tasks"):
        AffinityTracker(["x", "y"]).load_state_dict(tracker.state_dict())
